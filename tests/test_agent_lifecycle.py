"""Main agent + sub-agents for real (server, setup_master_agent.py, bash): scheduling order, exit
status, the environment a task sees, and surviving the death or restart of any one process."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, AgentProcess
from tests.test_cancel import started_pids, stubborn_tree_script
from tests.helpers import Api, wait_for

SCRIPTS = ROOT / "tests" / "scripts"


def with_vars(script_name: str, **variables) -> str:
    """A script from tests/scripts/ with shell variables set in front of it."""
    header = "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in variables.items())
    return header + (SCRIPTS / script_name).read_text()


def wait_online(client: Api, name: str) -> dict:
    return wait_for(lambda: next((a for a in client.get("/api/agents").json()
                                  if a["name"] == name and a["status"] == "online"), None),
                    20, message=f"agent {name} to come online")


def sub_agent_pid(agent: AgentProcess, task_id: int) -> int:
    state = json.loads((agent.log_path.parent / "state.json").read_text())
    return state["tasks"][str(task_id)]["pid"]


def is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("args", [
    [],
    ["--server", "not-a-url"],
    ["--server", "http://127.0.0.1:9", "--simulate-gpus", "2xlots"],
    ["--server", "http://127.0.0.1:9", "--cpu-cores", "-1"],
    ["--server", "http://127.0.0.1:9", "--kill-grace-s", "soon"],
])
def test_bad_arguments_give_a_short_error_and_exit_2(args):
    result = subprocess.run([sys.executable, "setup_master_agent.py", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_agent_keeps_its_id_across_restarts_and_prints_where_logs_go(start_agent, client):
    agent = start_agent(name="steady")
    first = wait_online(client, "steady")
    agent.stop()
    assert agent.proc.returncode == 0
    stopped_at = client.get(f"/api/agents/{first['id']}").json()["last_heartbeat_time"]
    agent.start()
    wait_for(lambda: client.get(f"/api/agents/{first['id']}").json()["last_heartbeat_time"] != stopped_at, 20,
             message="the restarted agent to heartbeat")
    mains = [a for a in client.get("/api/agents").json() if a["name"] == "steady"]
    assert [a["id"] for a in mains] == [first["id"]]
    printed = agent.log_path.read_text()
    assert printed.count("logs in") >= 3 and "main-agent.log" in printed  # start, stop, start


def test_dependency_chain_runs_in_order(main_agent, client, tmp_path):
    order = tmp_path / "order.txt"
    first = client.create_task(f"sleep 0.3; echo first >> {order}", name="first")
    second = client.create_task(f"echo second >> {order}", name="second", depends_on=[first["id"]])
    third = client.create_task(f"echo third >> {order}", name="third", depends_on=[second["id"]])
    client.wait_status(third["id"], "completed")
    assert order.read_text() == "first\nsecond\nthird\n"


def test_waiting_tasks_run_in_priority_order_on_a_one_core_agent(start_agent, client, tmp_path):
    order = tmp_path / "order.txt"
    tasks = [client.create_task(f"echo {p} >> {order}", name=f"p{p}", priority=p) for p in (3, 1, 5, 2, 4)]
    start_agent(name="single", cpu_cores=1)
    for task in tasks:
        client.wait_status(task["id"], "completed")
    assert order.read_text().split() == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("script, status, reason", [
    ("echo fine", "completed", None),
    ("exit 3", "failed", "exit code 3"),
    ("kill -9 $$", "failed", "killed by SIGKILL"),
    ("sleep 30 & kill -TERM $$", "failed", "killed by SIGTERM"),
])
def test_exit_status_is_reported(main_agent, client, script, status, reason):
    task = client.wait_status(client.create_task(script)["id"], {"completed", "failed"})
    assert (task["status"], task["status_reason"]) == (status, reason)


def test_task_sees_its_environment_cores_and_working_directory(main_agent, client, tmp_path):
    script = ('echo "id=$TASK_ID name=$TASK_NAME url=$TASK_SERVER_URL"\n'
              'echo "cuda=$CUDA_VISIBLE_DEVICES order=$CUDA_DEVICE_ORDER unbuffered=$PYTHONUNBUFFERED"\n'
              'echo "omp=$OMP_NUM_THREADS mkl=$MKL_NUM_THREADS nice=$(nice)"\n'
              'echo "cwd=$(pwd)"\n'
              'grep Cpus_allowed_list /proc/$$/status\n'
              'read -t 1 line; echo "stdin=$?"\n')
    task = client.create_task(script, name="env check", gpu_count=1, cpu_cores=1)
    done = client.wait_status(task["id"], "completed")
    lines = client.log(task["id"]).decode().splitlines()
    assert lines[0] == f"id={task['id']} name=env check url={client.base_url}"
    assert lines[1] == f"cuda={done['gpu_ids'][0]} order=PCI_BUS_ID unbuffered=1" and len(done["gpu_ids"]) == 1
    assert lines[2] == f"omp=1 mkl=1 nice={min(19, os.nice(0) + 5)}"  # below the agents
    assert lines[3] == f"cwd={tmp_path / 'work' / 'agent-1'}"
    allowed = lines[4].split()[-1]
    assert allowed.isdigit() or len(os.sched_getaffinity(0)) < 2  # pinned to one core of its own
    assert lines[5] == "stdin=1"  # /dev/null: EOF at once


def test_task_without_gpus_gets_an_empty_cuda_visible_devices(main_agent, client):
    task = client.create_task('[ -z "${CUDA_VISIBLE_DEVICES+set}" ] && echo unset || echo "[$CUDA_VISIBLE_DEVICES]"')
    client.wait_status(task["id"], "completed")
    assert client.log(task["id"]) == b"[]\n"


def test_killed_sub_agent_fails_its_task_and_leaves_no_process(main_agent, client, tmp_path):
    pid_dir = tmp_path / "pids"
    task = client.create_task(stubborn_tree_script(pid_dir))
    pids = started_pids(pid_dir)
    os.kill(sub_agent_pid(main_agent, task["id"]), signal.SIGKILL)
    failed = client.wait_status(task["id"], "failed", timeout_s=10)
    assert failed["status_reason"] == "sub-agent exited unexpectedly (killed by SIGKILL)"
    wait_for(lambda: not any(is_alive(pid) for pid in pids), 10, message="every task process to be gone")


def test_main_agent_killed_and_restarted_mid_task_runs_it_once(main_agent, client, tmp_path):
    counter = tmp_path / "runs.txt"
    task = client.create_task(with_vars("counted_run.sh", COUNTER_FILE=counter, SECONDS_TO_RUN=3))
    wait_for(lambda: counter.exists(), 20, message="the task to start")
    main_agent.kill(signal.SIGKILL)
    main_agent.start()
    done = client.wait_status(task["id"], {"completed", "failed"}, timeout_s=30)
    assert done["status"] == "completed", done["status_reason"]
    assert len(counter.read_text().splitlines()) == 1
    assert client.log(task["id"]).decode() == "".join(f"line {i}\n" for i in range(1, 61)) + "done\n"


def test_server_restart_mid_task_loses_and_doubles_no_output(server, main_agent, client, tmp_path):
    counter = tmp_path / "runs.txt"
    progress = Path(f"{counter}.progress")
    task = client.create_task(with_vars("counted_run.sh", COUNTER_FILE=counter, SECONDS_TO_RUN=3))
    wait_for(lambda: b"line 3\n" in client.log(task["id"]), 20, message="output to reach the server")
    server.kill()
    seen = wait_for(lambda: int(progress.read_text() or 0), 5, message="the progress file (rewritten by the task)")
    wait_for(lambda: int(progress.read_text() or 0) >= seen + 10, 10,
             message="the task to go on printing while the server is down")
    server.start()
    done = client.wait_status(task["id"], {"completed", "failed"}, timeout_s=30)
    assert done["status"] == "completed", done["status_reason"]
    assert client.log(task["id"]).decode() == "".join(f"line {i}\n" for i in range(1, 61)) + "done\n"
    assert len(counter.read_text().splitlines()) == 1


def test_stopped_main_agent_leaves_its_running_task_to_finish(main_agent, client, tmp_path):
    counter = tmp_path / "runs.txt"
    task = client.create_task(with_vars("counted_run.sh", COUNTER_FILE=counter, SECONDS_TO_RUN=2))
    wait_for(lambda: counter.exists(), 20, message="the task to start")
    main_agent.stop()
    assert main_agent.proc.returncode == 0
    assert client.task(task["id"])["status"] == "running"
    done = client.wait_status(task["id"], {"completed", "failed"}, timeout_s=20)
    assert done["status"] == "completed", done["status_reason"]
    assert client.log(task["id"]).decode().endswith("line 40\ndone\n")
