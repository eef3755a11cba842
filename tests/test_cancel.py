"""Canceling a running task kills its whole process tree on the agent, however hard it hides."""
from __future__ import annotations

import json
import os
import shlex
import signal

import psutil

from tests.conftest import ROOT
from tests.helpers import wait_for

KILL_GRACE = ["--kill-grace-s", "1"]


ROLES = {"bash", "child", "grandchild", "setsid", "setsid_child", "orphan", "scrubbed", "python"}


def stubborn_tree_script(pid_dir) -> str:
    """tests/scripts/stubborn_tree.sh: 8 processes that ignore SIGTERM, some setsid'd/double-forked away."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    return f"export PID_DIR={shlex.quote(str(pid_dir))}\nexec bash {ROOT / 'tests/scripts/stubborn_tree.sh'}\n"


def started_pids(pid_dir) -> list[int]:
    """Wait until every process of the stubborn tree wrote its pid file; return the pids."""
    wait_for(lambda: {p.stem for p in pid_dir.glob("*.pid") if p.read_text().strip()} == ROLES, 30,
             message="all 8 processes of the task to start")
    return [int(p.read_text()) for p in pid_dir.glob("*.pid")]


def is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_of_task(server_url: str, task_id: int) -> list[int]:
    """Every live process whose environment says it belongs to this task."""
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if env.get("TASK_SERVER_URL") == server_url and env.get("TASK_ID") == str(task_id) and is_alive(proc.pid):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def start_online_agent(start_agent, client, **kw):
    agent = start_agent(**kw)
    wait_for(lambda: any(a["status"] == "online" for a in client.get("/api/agents").json()), 20,
             message="the agent to come online")
    return agent


def test_cancel_running_task_kills_process_tree(start_agent, server, client, tmp_path):
    start_online_agent(start_agent, client, extra=KILL_GRACE)
    pid_dir = tmp_path / "pids"
    task = client.create_task(stubborn_tree_script(pid_dir))
    pids = started_pids(pid_dir)
    assert all(is_alive(pid) for pid in pids)

    assert client.post(f"/api/tasks/{task['id']}/cancel").status_code == 200
    wait_for(lambda: not any(is_alive(pid) for pid in pids), 10, message="every task process to be gone")
    wait_for(lambda: not processes_of_task(server.url, task["id"]), 5, message="no process of the task left")
    assert client.task(task["id"])["status"] == "canceled"
    sub_agents = [s for a in client.get("/api/agents").json() for s in a["sub_agents"]
                  if s["task_id"] == task["id"]]
    wait_for(lambda: all(s["status"] == "offline" for s in
                         [client.get(f"/api/agents/{x['id']}").json() for x in sub_agents]), 10,
             message="the task's sub-agent to finish")


def test_sigterm_to_a_sub_agent_kills_its_task_and_reports_how_it_ended(start_agent, server, client, tmp_path):
    """What a main agent's second stop signal does to each sub-agent."""
    agent = start_online_agent(start_agent, client, extra=KILL_GRACE)
    pid_dir = tmp_path / "pids"
    task = client.create_task(stubborn_tree_script(pid_dir))
    pids = started_pids(pid_dir)
    state = json.loads((agent.log_path.parent / "state.json").read_text())

    os.kill(state["tasks"][str(task["id"])]["pid"], signal.SIGTERM)
    failed = client.wait_status(task["id"], "failed", timeout_s=15)
    assert failed["status_reason"] == "killed by SIGKILL"  # it ignored SIGTERM for the grace period
    assert client.log(task["id"]) == b"stubborn tree started\n"
    wait_for(lambda: not any(is_alive(pid) for pid in pids), 10, message="every task process to be gone")
    assert not processes_of_task(server.url, task["id"])
