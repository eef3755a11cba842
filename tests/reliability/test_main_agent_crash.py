"""The main agent is killed (kill -9) while its tasks run and restarted on the same state dir: its
sub-agents keep running and are adopted, no task is started a second time, the server's count of
free cores is right afterwards, and new tasks still run."""
from __future__ import annotations

import signal
import time

import pytest

from tests.helpers import wait_for

from .conftest import ids_in, main_agent_record, side_effect_script, statuses_of, summary, wait_all_finished

CORES = 4


@pytest.mark.timeout(150)
def test_main_agent_kill_9_and_restart_starts_no_task_twice(client, start_agent, evidence_dir):
    """kill -9 the main agent with 4 tasks running and 8 waiting, restart it 2 s later: every task
    completes, each task's side effect (its id appended to a shared file) happens exactly once,
    available_cpu_cores is back to all 4 cores, and a task submitted afterwards runs."""
    shared = evidence_dir / "ran.txt"
    agent = start_agent(name="box", cpu_cores=CORES)
    ids = [client.create_task(side_effect_script(shared, sleep_s=3), name=f"once-{n}")["id"] for n in range(12)]
    wait_for(lambda: summary(statuses_of(client, ids)).get("running") == CORES and len(ids_in(shared)) == CORES,
             30, message=f"{CORES} tasks running and their side effects written")

    agent.kill(signal.SIGKILL)  # only the main agent: its sub-agents live in their own sessions
    time.sleep(2)  # the fault itself: the box has no main agent for a while
    agent.start()

    tasks = wait_all_finished(client, ids, timeout_s=90)
    assert summary(tasks) == {"completed": len(ids)}, \
        {i: (t["status"], t["status_reason"]) for i, t in tasks.items() if t["status"] != "completed"}
    assert sorted(ids_in(shared)) == sorted(ids), "a task ran twice or never"
    mains = [a for a in client.get("/api/agents").json() if a["name"] == "box"]
    assert [a["status"] for a in mains] == ["online"], "the restarted agent must keep its id"
    wait_for(lambda: main_agent_record(client, "box")["available_cpu_cores"] == CORES, 15,
             message=f"available_cpu_cores back to {CORES}")

    late = client.create_task(side_effect_script(shared), name="after-restart")["id"]
    assert client.wait_status(late, {"completed", "failed"}, 30)["status"] == "completed"
    assert ids_in(shared).count(late) == 1
