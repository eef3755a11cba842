"""Liveness: silent main agents go offline, a running task whose sub-agent and main agent are both
silent past AGENT_LOST_AFTER_S fails with a reason, and a restarted server gives agents a grace period.

Intervals come from tests/conftest.py FAST_SERVER_ENV: offline after 1.5 s, lease 2 s, grace 2 s; this
module's server loses an unreachable box's tasks after LOST_AFTER_S (tests/reliability/test_network_outage.py
shows that a shorter silence of both costs nothing).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import FAST_SERVER_ENV, ServerProcess
from tests.helpers import Api, server_events, wait_for
from tests.protocol_agent import ProtocolAgent

OFFLINE_AFTER_S = float(FAST_SERVER_ENV["TASK_SYSTEM_AGENT_OFFLINE_AFTER_S"])
LEASE_S = float(FAST_SERVER_ENV["TASK_SYSTEM_SUB_AGENT_LEASE_S"])
GRACE_S = float(FAST_SERVER_ENV["TASK_SYSTEM_RESTART_GRACE_S"])
SLACK_S = 0.05  # rounding of stored times
LOST_AFTER_S = 4.0


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """This module's own server with the fast intervals (the session's shared one has a long lease)."""
    proc = ServerProcess(tmp_path_factory.mktemp("liveness-data"),
                         env={"TASK_SYSTEM_AGENT_LOST_AFTER_S": str(LOST_AFTER_S)}).start()
    yield proc
    proc.kill()


def agent_status(client: Api, agent_id: str) -> str:
    return client.get(f"/api/agents/{agent_id}").json()["status"]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def last_server_start(server: ServerProcess) -> datetime:
    """When the server process last started (its system log's server_started event)."""
    started = server_events(server.data_dir, "server_started")
    return datetime.fromisoformat(started[-1]["timestamp"].replace("Z", "+00:00"))


def heartbeat_until(agent: ProtocolAgent, predicate, timeout_s: float, message: str, **heartbeat):
    """Keep heartbeating (each beat long-polls briefly, pacing the loop) until predicate() holds."""
    def beat_and_check():
        agent.heartbeat(wait_s=0.2, **heartbeat)
        return predicate()
    return wait_for(beat_and_check, timeout_s, interval_s=0.05, message=message)


def keep_heartbeating(agent: ProtocolAgent, seconds: float, **heartbeat) -> None:
    end = time.monotonic() + seconds
    heartbeat_until(agent, lambda: time.monotonic() > end, seconds + 10, f"{seconds}s of heartbeats", **heartbeat)


def test_main_agent_that_stops_heartbeating_goes_offline_and_comes_back(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, name="falls-silent").register()
    agent.heartbeat()
    assert agent_status(shared_client, agent.agent_id) == "online"
    silent_since = datetime.now(timezone.utc)
    wait_for(lambda: agent_status(shared_client, agent.agent_id) == "offline", GRACE_S + OFFLINE_AFTER_S + 8,
             message="the silent agent to go offline")
    shown = shared_client.get(f"/api/agents/{agent.agent_id}").json()
    assert parse(shown["last_heartbeat_time"]) <= silent_since
    frozen = shown["running_time"]
    assert shared_client.get(f"/api/agents/{agent.agent_id}").json()["running_time"] == frozen
    agent.heartbeat()
    assert agent_status(shared_client, agent.agent_id) == "online"


def test_running_task_fails_when_sub_agent_and_main_agent_stay_silent_past_agent_lost_after(shared_server,
                                                                                             shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=1).register()
    task = shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    before_last_sign = datetime.now(timezone.utc)
    sub.write(b"last words\n")
    failed = shared_client.wait_status(task["id"], "failed", timeout_s=GRACE_S + LOST_AFTER_S + 8)
    assert "agent lost" in failed["status_reason"] and agent.agent_id in failed["status_reason"]
    assert parse(failed["end_time"]) >= before_last_sign + timedelta(seconds=LOST_AFTER_S - SLACK_S)
    assert failed["exit_code"] is None
    assert shared_client.log(task["id"]) == b"last words\n"  # the system's note is not in the log
    agent.running.clear()
    nxt = shared_client.create_task("echo")
    assert [a.task_id for a in agent.heartbeat().start] == [nxt["id"]]  # its core was freed
    assert sub.heartbeat().cancel is True  # a sub-agent that wakes up again is told to stop


def test_main_agent_heartbeat_not_listing_the_task_does_not_keep_it_alive(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=1).register()
    task = shared_client.create_task("echo")
    agent.start_sub(agent.heartbeat().start[0])
    heartbeat_until(agent, lambda: shared_client.task(task["id"])["status"] == "failed", GRACE_S + LEASE_S + 8,
                    "the unlisted task to fail", running_task_ids=[])
    assert agent_status(shared_client, agent.agent_id) == "online"


def test_main_agent_reporting_the_task_running_keeps_it_and_itself_alive(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=1).register()
    task = shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])  # its sub-agent never heartbeats again
    keep_heartbeating(agent, max(LEASE_S, OFFLINE_AFTER_S) + 1.0)  # reports the task in running_task_ids
    assert shared_client.task(task["id"])["status"] == "running"
    assert agent_status(shared_client, agent.agent_id) == "online"
    sub.finish(0)
    assert shared_client.task(task["id"])["status"] == "completed"


def test_after_a_server_restart_agents_get_the_grace_period_before_anything_is_lost(data_dir):
    grace_s = 3.0  # long enough that the checks right after the restart fall inside it on a busy box
    server = ServerProcess(data_dir, env={"TASK_SYSTEM_RESTART_GRACE_S": str(grace_s)}).start()
    try:
        _restart_grace_scenario(server, Api(server.url), grace_s)
    finally:
        server.kill()


def _restart_grace_scenario(server: ServerProcess, client: Api, grace_s: float) -> None:
    agent = ProtocolAgent(server.url, cpu_cores=2).register()
    silent = ProtocolAgent(server.url, name="never-comes-back").register()
    kept, lost = client.create_task("echo kept"), client.create_task("echo lost")
    for assignment in agent.heartbeat().start:
        agent.start_sub(assignment)
    assert set(agent.running) == {kept["id"], lost["id"]}

    server.kill()
    down_since = time.monotonic()
    wait_for(lambda: time.monotonic() - down_since > max(LEASE_S, OFFLINE_AFTER_S) + 0.5, 10,
             message="the server to stay down past the lease")
    before_restart = datetime.now(timezone.utc)
    server.start()

    # Everything is stale, but nothing is declared lost yet.
    assert client.task(kept["id"])["status"] == "running" and client.task(lost["id"])["status"] == "running"
    assert agent_status(client, silent.agent_id) == "online"
    checked = datetime.now(timezone.utc)
    assert checked - last_server_start(server) < timedelta(seconds=grace_s), "checked too late to be inside the grace"
    # The agent comes back and reports only `kept` alive; `lost` fails once the grace is over.
    heartbeat_until(agent, lambda: client.task(lost["id"])["status"] == "failed", grace_s + LEASE_S + 10,
                    "the unreported task to fail after the grace", running_task_ids=[kept["id"]])
    failed = client.task(lost["id"])
    assert parse(failed["end_time"]) >= before_restart + timedelta(seconds=grace_s - SLACK_S)
    assert "agent lost" in failed["status_reason"]
    assert client.task(kept["id"])["status"] == "running"
    assert agent_status(client, agent.agent_id) == "online"
    wait_for(lambda: agent_status(client, silent.agent_id) == "offline", 10, message="the silent agent to go offline")
