"""Liveness decides by this server process's monotonic clock (services/last_heard.py), never by the
wall clock: a clock step on the server (NTP, a resumed VM, `date -s`) changes nothing, and the
wall-clock column (agents' last_heartbeat_time) is only shown. Stepping the real clock needs root, so
the step is simulated where liveness would read it (utcnow in the services) and in the stored column,
while a fake monotonic clock lets time pass. In-process app, agents spoken to by protocol.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from backend.extensions import db
from backend.models import Agent
from backend.services import agents as agent_service
from backend.services import heartbeats, last_heard, liveness, sub_heartbeats
from backend.services.unit_of_work import unit_of_work
from backend.utils.time import utcnow
from task_common import protocol as p

LEASE_S, OFFLINE_AFTER_S, LOST_AFTER_S = 5.0, 3.0, 60.0


@pytest.fixture
def app(tmp_path):
    from backend.factory import create_app

    application = create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), "RUN_BACKGROUND_JOBS": False,
                              "RESTART_GRACE_S": 1e-6, "SUB_AGENT_LEASE_S": LEASE_S,
                              "AGENT_OFFLINE_AFTER_S": OFFLINE_AFTER_S, "AGENT_LOST_AFTER_S": LOST_AFTER_S})
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def clock(monkeypatch):
    """The monotonic clock liveness reads; `clock[0] += s` lets s seconds pass."""
    now = [last_heard.clock()]
    monkeypatch.setattr(last_heard, "clock", lambda: now[0])
    return now


def post(client, path: str, message: p.Message) -> dict:
    resp = client.post(path, json=message.to_dict())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def main_beat(client, main_id: str, running: list[int]) -> dict:
    return post(client, p.MAIN_HEARTBEAT_PATH, p.MainHeartbeat(agent_id=main_id, cpu_cores=4, wait_s=0,
                                                                running_task_ids=running))


def sub_beat(client, task_id: int, **fields) -> dict:
    beat = p.SubHeartbeat(sub_agent_id=f"sub-{task_id}", task_id=task_id, offset=0, **fields)
    resp = client.post(p.SUB_HEARTBEAT_PATH, query_string=beat.to_dict(), data=b"", content_type=p.OUTPUT_CONTENT_TYPE)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def running_task(client) -> tuple[str, int]:
    """(main agent id, task id): a task handed over and started by its sub-agent `sub-<task id>`."""
    main_id = post(client, p.REGISTER_MAIN_PATH, p.RegisterMain(name="box", hostname="h", cpu_cores=4,
                                                                memory_total_mib=1024))["agent_id"]
    created = client.post("/api/tasks", json={"name": "t", "template_type": "x", "script_content": "sleep 60"})
    assert created.status_code == 201
    task_id = main_beat(client, main_id, [])["start"][0]["task_id"]
    post(client, p.REGISTER_SUB_PATH, p.RegisterSub(sub_agent_id=f"sub-{task_id}", main_agent_id=main_id,
                                                    task_id=task_id, pid=1, hostname="h"))
    main_beat(client, main_id, [task_id])
    sub_beat(client, task_id)
    return main_id, task_id


def shown(client, task_id: int) -> dict:
    return client.get(f"/api/tasks/{task_id}").get_json()


def agent_status(client, agent_id: str) -> str:
    return client.get(f"/api/agents/{agent_id}").get_json()["status"]


@pytest.mark.parametrize("step", [timedelta(seconds=40), timedelta(seconds=-40), timedelta(hours=-1)],
                         ids=["forward-40s", "back-40s", "back-1h"])
def test_a_wall_clock_step_on_the_server_changes_nothing(app, monkeypatch, step):
    """A task and agents heard a moment ago (monotonic) stay running and online, whatever the wall
    clock and the stored times say: the server's clock jumps by `step`, and the stored times are
    `step` off too (an hour old for back-1h)."""
    client = app.test_client()
    main_id, task_id = running_task(client)
    stepped = utcnow() + step
    for module in (agent_service, heartbeats, liveness, sub_heartbeats):
        monkeypatch.setattr(module, "utcnow", lambda: stepped)
    with unit_of_work():
        for agent_id in (main_id, f"sub-{task_id}"):
            db.session.get(Agent, agent_id).last_heartbeat_time = utcnow() - abs(step)
    liveness.check_agents_status()
    assert shown(client, task_id)["status"] == "running"
    assert shown(client, task_id)["agent_unreachable_since"] is None
    assert agent_status(client, main_id) == "online" and agent_status(client, f"sub-{task_id}") == "online"


def test_fresh_wall_clock_times_do_not_keep_a_task_its_agent_stopped_reporting(app, clock):
    """The other way round: the stored times say "just now", but by the monotonic clock the task is
    silent past the lease and its main agent, heard since, does not report it: it fails."""
    client = app.test_client()
    main_id, task_id = running_task(client)
    clock[0] += LEASE_S + 1
    main_beat(client, main_id, [])
    with unit_of_work():
        db.session.get(Agent, f"sub-{task_id}").last_heartbeat_time = utcnow()
    liveness.check_agents_status()
    task = shown(client, task_id)
    assert task["status"] == "failed" and "does not report it running" in task["status_reason"]


def test_an_unreachable_box_keeps_its_task_until_agent_lost_after(app, clock):
    """Main agent and sub-agent both silent past the lease: running, noted unreachable since the last
    sign (the note is kept, not recomputed), the agent offline; failed only past AGENT_LOST_AFTER_S."""
    client = app.test_client()
    main_id, task_id = running_task(client)
    clock[0] += LEASE_S + 1
    liveness.check_agents_status()
    noted = shown(client, task_id)["agent_unreachable_since"]
    assert shown(client, task_id)["status"] == "running" and noted is not None
    silent_since = utcnow() - timedelta(seconds=LEASE_S + 1)  # the fake clock moved, the wall clock not
    assert abs(datetime.fromisoformat(noted) - silent_since) < timedelta(seconds=1)
    assert agent_status(client, main_id) == "offline"
    clock[0] += LOST_AFTER_S - LEASE_S - 2
    liveness.check_agents_status()
    assert shown(client, task_id)["status"] == "running"
    assert shown(client, task_id)["agent_unreachable_since"] == noted
    clock[0] += 2
    liveness.check_agents_status()
    task = shown(client, task_id)
    assert task["status"] == "failed" and task["agent_unreachable_since"] is None
    assert f"main agent box ({main_id}) unreachable for {LOST_AFTER_S + 1:.0f} s" in task["status_reason"]


def test_an_unreachable_box_that_comes_back_keeps_its_task_and_loses_the_note(app, clock):
    client = app.test_client()
    main_id, task_id = running_task(client)
    clock[0] += LEASE_S + 1
    liveness.check_agents_status()
    assert shown(client, task_id)["agent_unreachable_since"] is not None
    main_beat(client, main_id, [task_id])  # back, and vouching for it
    liveness.check_agents_status()
    assert shown(client, task_id)["status"] == "running" and shown(client, task_id)["agent_unreachable_since"] is None
    assert agent_status(client, main_id) == "online"


def test_stamps_go_when_tasks_finish_and_agents_are_forgotten(app, clock):
    """Nothing grows for ever: a finished task's and an offline sub-agent's stamps are dropped on the
    next check, a forgotten main agent's too."""
    client = app.test_client()
    main_id, task_id = running_task(client)
    stamps = app.extensions[last_heard._EXTENSION_KEY]
    assert set(stamps.tasks) == {task_id} and set(stamps.agents) == {main_id, f"sub-{task_id}"}
    assert sub_beat(client, task_id, returncode=0, final_size=0)["finished"]
    liveness.check_agents_status()
    assert stamps.tasks == {} and set(stamps.agents) == {main_id}
    clock[0] += OFFLINE_AFTER_S + 1
    liveness.check_agents_status()
    assert agent_status(client, main_id) == "offline"
    assert client.delete(f"/api/agents/{main_id}").status_code in (200, 204)
    liveness.check_agents_status()
    assert stamps.tasks == {} and stamps.agents == {} and stamps.unreachable_since == {}
