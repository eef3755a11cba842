"""The server is frozen (SIGSTOP, then SIGCONT), as a network outage looks to agents: connections
hang instead of being refused, and the server's own clocks jump when it wakes. Nothing may be failed
for silence that was the server's own, and no output may be lost or doubled."""
from __future__ import annotations

import time

import pytest

from tests.helpers import wait_for

from .conftest import (
    all_running_with_output, assert_all_completed_with_exact_logs, freeze_server, numbered_lines_script,
    thaw_server,
)


def run_tasks_through_freeze(server, client, start_agent, *, tasks: int, lines: int, freeze_s: float) -> None:
    start_agent(cpu_cores=tasks)
    ids = [client.create_task(numbered_lines_script(lines, 0.25), name=f"lines-{n}")["id"]
           for n in range(tasks)]
    wait_for(lambda: all_running_with_output(client, ids), 60,
             message=f"all {tasks} tasks running with output")
    frozen = freeze_server(server)
    try:
        time.sleep(freeze_s)  # the fault itself: the server answers nothing this long
    finally:
        thaw_server(frozen)
    assert_all_completed_with_exact_logs(client, ids, lines)


@pytest.mark.timeout(150)
def test_server_frozen_5s_fails_no_task_and_loses_no_line(server, client, start_agent):
    """SIGSTOP the server for 5 s (2.5 times the 2 s sub-agent lease) while 10 tasks print, then
    SIGCONT: all complete (none failed as 'agent lost'), every log holds each line once, in order."""
    run_tasks_through_freeze(server, client, start_agent, tasks=10, lines=50, freeze_s=5)


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_server_frozen_30s_fails_no_task_and_loses_no_line(server, client, start_agent):
    """Soak: a 30 s freeze (15 leases) with 20 tasks printing: 20/20 complete, every log exact."""
    run_tasks_through_freeze(server, client, start_agent, tasks=20, lines=200, freeze_s=30)
