"""A sub-agent is killed (kill -9) while its task runs: the main agent notices, kills what is left
of the task, and the server fails the task with a reason and frees its resources."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.helpers import wait_for

from .conftest import is_gone, kill_pids, main_agent_record, read_pids

CORES = 2


@pytest.mark.timeout(90)
def test_sub_agent_kill_9_fails_task_within_5s_and_frees_everything(client, start_agent, evidence_dir):
    """kill -9 of the sub-agent running a task (bash + a background child): the task is failed with
    a status_reason within 5 s, bash and its child are gone, and available_cpu_cores is back to 2."""
    start_agent(name="box", cpu_cores=CORES)
    script = (f'echo $$ > "{evidence_dir}/bash.pid"; echo $PPID > "{evidence_dir}/sub_agent.pid"\n'
              f'sleep 600 & echo $! > "{evidence_dir}/child.pid"\n'
              'echo started; wait')
    task_id = client.create_task(script, name="victim", cpu_cores=2)["id"]
    wait_for(lambda: len(read_pids(evidence_dir)) == 3, 30, message="the task to write its pid files")
    pids = read_pids(evidence_dir)
    try:
        wait_for(lambda: main_agent_record(client, "box")["available_cpu_cores"] == 0, 10,
                 message="the task's 2 cores to be reserved")
        os.kill(pids["sub_agent"], signal.SIGKILL)
        killed_at = time.monotonic()
        task = client.wait_status(task_id, {"failed", "completed", "canceled"}, timeout_s=15)
        took = time.monotonic() - killed_at
        assert task["status"] == "failed" and task["status_reason"], task
        assert took <= 5.0, f"the task was failed {took:.1f} s after its sub-agent died"
        wait_for(lambda: is_gone(pids["bash"]) and is_gone(pids["child"]), 10,
                 message="the task's processes to be killed")
        wait_for(lambda: main_agent_record(client, "box")["available_cpu_cores"] == CORES, 10,
                 message=f"available_cpu_cores back to {CORES}")
        print(f"failed after {took:.1f} s: {task['status_reason']}")
    finally:
        kill_pids(pids.values())
