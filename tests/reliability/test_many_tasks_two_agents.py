"""Two main agents drain a queue of many trivial tasks: every task runs exactly once."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from .conftest import ids_in, side_effect_script, summary, wait_all_finished


def run_many_tasks_on_two_agents(client, start_agent, evidence_dir, count: int) -> float:
    shared = evidence_dir / "ran.txt"
    start_agent(name="box-a", cpu_cores=4)
    start_agent(name="box-b", cpu_cores=4)
    started = time.monotonic()
    ids = [client.create_task(side_effect_script(shared), name=f"trivial-{n}")["id"] for n in range(count)]
    tasks = wait_all_finished(client, ids, timeout_s=count * 0.5 + 60)
    took = time.monotonic() - started
    assert summary(tasks) == {"completed": count}, \
        Counter((t["status"], t["status_reason"]) for t in tasks.values() if t["status"] != "completed").most_common(5)
    ran = ids_in(shared)
    doubled = sorted(i for i, n in Counter(ran).items() if n > 1)
    assert not doubled, f"tasks that ran more than once: {doubled}"
    assert sorted(ran) == sorted(ids), f"tasks that never ran: {sorted(set(ids) - set(ran))}"
    agents = {t["agent_id"] for t in tasks.values()}
    assert len(agents) == 2, f"both agents should have taken tasks, got {agents}"
    print(f"{count} tasks on 2 agents: {took:.1f} s ({count / took:.1f} tasks/s)")
    return took


@pytest.mark.timeout(400)
def test_two_main_agents_run_each_of_500_tasks_exactly_once(client, start_agent, evidence_dir):
    """Two main agents (4 cores each), 500 trivial tasks that append their id to one file: all 500
    complete, each id is in the file exactly once, and both agents took part."""
    run_many_tasks_on_two_agents(client, start_agent, evidence_dir, 500)


@pytest.mark.soak
@pytest.mark.timeout(1500)
def test_two_main_agents_run_each_of_2000_tasks_exactly_once(client, start_agent, evidence_dir):
    """Soak: the same with 2000 tasks: 2000/2000 complete, each id exactly once in the file."""
    run_many_tasks_on_two_agents(client, start_agent, evidence_dir, 2000)
