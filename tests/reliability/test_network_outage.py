"""The network between an agent and the server fails (a real TCP proxy that freezes like a dead
router), or the agent's box freezes (SIGSTOP of the agent and everything under it): an unreachable
agent is not a dead task. Its tasks stay running, marked `agent_unreachable_since`, carry on when it
is back, and lose no line of output; only a silence longer than AGENT_LOST_AFTER_S fails them.

Intervals come from tests/conftest.py FAST_SERVER_ENV (lease 2 s, offline after 1.5 s).
"""
from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.conftest import FAST_SERVER_ENV, ServerProcess
from tests.helpers import Api, wait_for

from .conftest import (
    all_running_with_output, assert_all_completed_with_exact_logs, is_gone, main_agent_record,
    numbered_lines_script, read_pids,
)
from .tcp_proxy import TcpProxy

LEASE_S = float(FAST_SERVER_ENV["TASK_SYSTEM_SUB_AGENT_LEASE_S"])
OUTAGE_S = 3 * LEASE_S
LOST_AFTER_S = 6.0  # AGENT_LOST_AFTER_S of the test that lets the box be lost


@pytest.fixture
def server(data_dir, request):
    """conftest's server, with the extra settings of an indirect parametrisation, if any."""
    proc = ServerProcess(data_dir, env=getattr(request, "param", None)).start()
    yield proc
    proc.kill()


@pytest.fixture
def proxy(server):
    tcp_proxy = TcpProxy(server.port).start()
    yield tcp_proxy
    tcp_proxy.close()


def start_task_through(client: Api, start_agent, proxy: TcpProxy, lines: int, delay_s: float) -> int:
    """An agent `box` that reaches the server only through the proxy, running one numbered-lines task
    that has printed something already."""
    start_agent(name="box", cpu_cores=2, extra=["--server", proxy.url])
    task_id = client.create_task(numbered_lines_script(lines, delay_s), name="lines")["id"]
    wait_for(lambda: all_running_with_output(client, [task_id]), 60, message="the task running with output")
    return task_id


def is_marked_unreachable(client: Api, task_id: int) -> bool:
    task = client.task(task_id)
    assert task["status"] == "running", (task["status"], task["status_reason"])
    return task["agent_unreachable_since"] is not None and main_agent_record(client, "box")["status"] == "offline"


def stay_running_through(client: Api, task_ids: list[int], outage_s: float, since: float) -> None:
    """Until outage_s after `since`: the tasks are running the whole time, and noted unreachable at its end."""
    seen: list[tuple[int, str, object]] = []

    def outage_over() -> bool:
        seen.extend((t["id"], t["status"], t["status_reason"]) for t in map(client.task, task_ids))
        return time.monotonic() - since >= outage_s

    wait_for(outage_over, outage_s + 30, interval_s=0.2, message=f"{outage_s} s of outage")
    assert [s for s in seen if s[1] != "running"] == []
    assert all(client.task(task_id)["agent_unreachable_since"] for task_id in task_ids)


def box_processes(agent) -> list[psutil.Process]:
    """The main agent and everything under it: sub-agents, bash, the task's children."""
    main = psutil.Process(agent.proc.pid)
    return [main, *main.children(recursive=True)]


def signal_all(processes: list[psutil.Process], sig: int) -> None:
    for proc in processes:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


@pytest.mark.timeout(150)
def test_network_outage_3_leases_long_keeps_the_task_running_and_its_log_exact(client, start_agent, proxy):
    """The proxy freezes for 3x the lease while the task prints: the task stays running, marked
    agent_unreachable_since (its agent shows offline); once the network is back the mark goes, the task
    completes (its sub-agent was never told to cancel) and its log holds every line once, in order."""
    lines = 120
    task_id = start_task_through(client, start_agent, proxy, lines, 0.1)
    proxy.freeze()
    frozen_at = time.monotonic()
    try:
        wait_for(lambda: is_marked_unreachable(client, task_id), LEASE_S + 10,
                 message="the task to be marked agent-unreachable")
        stay_running_through(client, [task_id], OUTAGE_S, since=frozen_at)
    finally:
        proxy.resume()
    wait_for(lambda: client.task(task_id)["agent_unreachable_since"] is None, 30,
             message="the unreachable mark to go once the network is back")
    assert_all_completed_with_exact_logs(client, [task_id], lines)


@pytest.mark.timeout(150)
def test_agent_box_frozen_3_leases_long_keeps_the_task_running_and_its_log_exact(client, start_agent):
    """SIGSTOP of the main agent, its sub-agent and the task for 3x the lease, then SIGCONT: the task
    stays running meanwhile (marked unreachable), then completes with an exact log."""
    lines = 80
    agent = start_agent(name="box", cpu_cores=2)
    task_id = client.create_task(numbered_lines_script(lines, 0.1), name="lines")["id"]
    wait_for(lambda: all_running_with_output(client, [task_id]), 60, message="the task running with output")
    frozen = box_processes(agent)
    assert len(frozen) >= 3, "main agent, sub-agent and bash"
    signal_all(frozen, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        wait_for(lambda: is_marked_unreachable(client, task_id), LEASE_S + 10,
                 message="the task to be marked agent-unreachable")
        stay_running_through(client, [task_id], OUTAGE_S, since=frozen_at)
    finally:
        signal_all(frozen, signal.SIGCONT)
    assert_all_completed_with_exact_logs(client, [task_id], lines)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("server", [{"TASK_SYSTEM_AGENT_LOST_AFTER_S": str(LOST_AFTER_S)}], indirect=True)
def test_network_outage_past_agent_lost_after_fails_the_task_and_the_box_stops_it(client, start_agent, proxy,
                                                                                   evidence_dir):
    """With the proxy frozen for good, the task is running (marked unreachable) until AGENT_LOST_AFTER_S
    (6 s here), then fails naming the agent and how long it was unreachable. When the network comes
    back, the box is told, and the task's still-running process is stopped."""
    script = f'echo $$ > "{evidence_dir}/bash.pid"\n' + numbered_lines_script(600, 0.1)
    start_agent(name="box", cpu_cores=2, extra=["--server", proxy.url])
    task_id = client.create_task(script, name="lost")["id"]
    wait_for(lambda: all_running_with_output(client, [task_id]), 60, message="the task running with output")
    bash_pid = read_pids(evidence_dir)["bash"]
    proxy.freeze()
    frozen_at = time.monotonic()
    try:
        wait_for(lambda: is_marked_unreachable(client, task_id), LEASE_S + 10,
                 message="the task to be marked agent-unreachable")
        failed = client.wait_status(task_id, {"failed", "completed", "canceled"}, timeout_s=LOST_AFTER_S + 15)
        took = time.monotonic() - frozen_at
    finally:
        proxy.resume()
    box_id = main_agent_record(client, "box")["id"]
    reason = failed["status_reason"]
    assert failed["status"] == "failed" and "agent lost" in reason and "unreachable for" in reason, reason
    assert "box" in reason and box_id in reason, reason
    # counted from the box's last beat, which came up to one beat (0.2 s, plus a held long poll) before the freeze
    assert took >= LOST_AFTER_S - 0.5, f"failed {took:.1f} s into the outage, before AGENT_LOST_AFTER_S"
    assert failed["agent_unreachable_since"] is None
    wait_for(lambda: is_gone(bash_pid), 30, message="the lost task's process to be stopped once the box hears")
    assert client.task(task_id)["status"] == "failed"


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak_10_minutes_with_three_30s_network_outages(client, start_agent, proxy):
    """Soak: three tasks print for ~10 minutes through the proxy, which freezes three times for 30 s
    (15 leases each): all three complete, every log exact."""
    lines, delay_s = 5800, 0.1
    start_agent(name="box", cpu_cores=3, extra=["--server", proxy.url])
    ids = [client.create_task(numbered_lines_script(lines, delay_s), name=f"soak-{n}")["id"] for n in range(3)]
    wait_for(lambda: all_running_with_output(client, ids), 60, message="all tasks running with output")
    started = time.monotonic()
    for outage_at_s in (60, 240, 420):
        wait_for(lambda: time.monotonic() - started >= outage_at_s, outage_at_s + 30, interval_s=0.5,
                 message=f"minute {outage_at_s / 60:.0f}")
        proxy.freeze()
        frozen_at = time.monotonic()
        try:
            stay_running_through(client, ids, 30, since=frozen_at)
        finally:
            proxy.resume()
    assert_all_completed_with_exact_logs(client, ids, lines)
