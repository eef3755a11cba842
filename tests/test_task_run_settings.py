"""A task's run settings on a real agent: its `env`, its `work_dir` and its `time_limit_s`."""
from __future__ import annotations

import os
import shlex

import pytest

from agent.task_start import task_environment
from task_common.protocol import TaskAssignment
from tests.helpers import wait_for
from tests.test_cancel import is_alive, processes_of_task, start_online_agent

KILL_GRACE = ["--kill-grace-s", "1"]


def sub_agent_task_ids(client) -> set[int]:
    return {s["task_id"] for a in client.get("/api/agents").json() for s in a["sub_agents"]}


def test_task_env_reaches_the_script_and_system_variables_stay_the_systems(start_agent, client):
    start_online_agent(start_agent, client)
    script = 'echo "LR=$LR"; echo "WORDS=$WORDS"; echo "OMP=$OMP_NUM_THREADS"; echo "ID=$TASK_ID"\n'
    task = client.create_task(script, cpu_cores=2, env={"LR": "3e-4", "WORDS": "a b 'c'", "OMP_NUM_THREADS": "7"})
    done = client.wait_status(task["id"], {"completed", "failed"})
    assert done["status"] == "completed", done["status_reason"]
    assert client.log(task["id"]).decode() == f"LR=3e-4\nWORDS=a b 'c'\nOMP=7\nID={task['id']}\n"


def test_task_env_can_never_override_the_system_variables():
    """The server refuses these keys (400); the agent sets the system's after the task's all the same."""
    task = TaskAssignment(task_id=5, name="t", script_content="", cpu_cores=2, gpu_ids=[1],
                          env={"TASK_ID": "99", "CUDA_VISIBLE_DEVICES": "0,1", "CUDA_DEVICE_ORDER": "FASTEST_FIRST",
                               "TASK_SYSTEM_SUB_AGENT_ID": "other", "MKL_NUM_THREADS": "1", "LR": "0.1"})
    env = task_environment(task, "http://server", "sub-5-abc")
    assert (env["TASK_ID"], env["CUDA_VISIBLE_DEVICES"], env["CUDA_DEVICE_ORDER"]) == ("5", "1", "PCI_BUS_ID")
    assert env["TASK_SYSTEM_SUB_AGENT_ID"] == "sub-5-abc"
    assert (env["MKL_NUM_THREADS"], env["OMP_NUM_THREADS"], env["LR"]) == ("1", "2", "0.1")


def test_relative_absolute_and_default_work_dir_reach_the_script(start_agent, client, tmp_path):
    agent_work_dir = tmp_path / "work" / "agent-1"
    (agent_work_dir / "runs" / "a").mkdir(parents=True)
    absolute = tmp_path / "elsewhere"
    absolute.mkdir()
    start_online_agent(start_agent, client)
    cases = {"runs/a": agent_work_dir / "runs" / "a", str(absolute): absolute, None: agent_work_dir}
    tasks = {work_dir: client.create_task("pwd -P\n", work_dir=work_dir) for work_dir in cases}
    for work_dir, expected in cases.items():
        done = client.wait_status(tasks[work_dir]["id"], {"completed", "failed"})
        assert done["status"] == "completed", done["status_reason"]
        assert done["work_dir"] == work_dir
        assert client.log(done["id"]).decode() == f"{os.path.realpath(expected)}\n"


def test_unusable_work_dir_fails_the_task_with_why_and_the_next_task_runs(start_agent, client, tmp_path):
    agent_work_dir = tmp_path / "work" / "agent-1"
    start_online_agent(start_agent, client, cpu_cores=1)
    (agent_work_dir / "a-file").write_text("")
    marker = tmp_path / "must-not-exist"
    missing = client.create_task(f"touch {shlex.quote(str(marker))}\n", cpu_cores=1, work_dir="no/such/dir")
    not_dir = client.create_task(f"touch {shlex.quote(str(marker))}\n", cpu_cores=1, work_dir="a-file")
    after = client.create_task("echo next\n", cpu_cores=1)

    failed = client.wait_status(missing["id"], {"completed", "failed"})
    assert failed["status"] == "failed"
    assert failed["status_reason"] == f"work_dir {agent_work_dir / 'no/such/dir'} does not exist on agent-1"
    failed = client.wait_status(not_dir["id"], {"completed", "failed"})
    assert failed["status"] == "failed"
    assert failed["status_reason"] == f"work_dir {agent_work_dir / 'a-file'} is not a directory on agent-1"
    assert client.wait_status(after["id"], {"completed", "failed"})["status"] == "completed"
    assert client.log(after["id"]) == b"next\n"
    assert not marker.exists()
    assert not {missing["id"], not_dir["id"]} & sub_agent_task_ids(client)  # no sub-agent was started for them


TIME_LIMITED_SCRIPTS = {
    "plain": "",
    "ignores SIGTERM": "trap '' TERM\n",  # its children inherit that: only the SIGKILL after the grace ends them
    "exits 0 on SIGTERM": "trap 'exit 0' TERM\n",  # a clean exit at the limit is still a failure
}


@pytest.mark.parametrize("prelude", TIME_LIMITED_SCRIPTS.values(), ids=TIME_LIMITED_SCRIPTS.keys())
def test_time_limit_stops_the_whole_tree_and_fails_the_task(start_agent, server, client, tmp_path, prelude):
    start_online_agent(start_agent, client, extra=KILL_GRACE)
    pids = tmp_path / "pids"
    pids.mkdir()
    script = (f"{prelude}echo before\nsleep 60 &\necho $! > {pids}/child\n"
              f"setsid sleep 60 &\necho $! > {pids}/setsid_child\n"
              f"echo $$ > {pids}/bash\necho started\nsleep 60 & wait\necho never\n")
    task = client.create_task(script, time_limit_s=2)
    wait_for(lambda: len([p for p in pids.iterdir() if p.read_text().strip()]) == 3, 15,
             message="the task's processes to start")
    started = [int(p.read_text()) for p in pids.iterdir()]

    failed = client.wait_status(task["id"], {"completed", "failed", "canceled"}, timeout_s=20)
    assert failed["status"] == "failed"
    assert failed["status_reason"] == "time limit of 2s reached"
    assert failed["execution_time"] >= 2
    assert client.log(task["id"]) == b"before\nstarted\n"
    wait_for(lambda: not any(is_alive(pid) for pid in started), 10, message="every process of the task to be gone")
    assert not processes_of_task(server.url, task["id"])
