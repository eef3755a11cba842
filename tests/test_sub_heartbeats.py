"""services/sub_heartbeats.py in-process: the beat that ends a task notifies each topic once."""
from __future__ import annotations

from collections import Counter

import pytest

from backend.extensions import db
from backend.services import signals
from task_common import protocol as p


@pytest.fixture
def app(tmp_path):
    from backend.factory import create_app

    application = create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), "RUN_BACKGROUND_JOBS": False})
    with application.app_context():
        yield application
        db.session.remove()


def post(client, path: str, message: p.Message) -> dict:
    resp = client.post(path, json=message.to_dict())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def beat(client, message: p.SubHeartbeat, output: bytes = b"") -> dict:
    resp = client.post(p.SUB_HEARTBEAT_PATH, query_string=message.to_dict(), data=output,
                       content_type=p.OUTPUT_CONTENT_TYPE)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def running_task(client) -> tuple[int, str]:
    main_id = post(client, p.REGISTER_MAIN_PATH, p.RegisterMain(name="m", cpu_cores=4))["agent_id"]
    assert client.post("/api/tasks", json={"name": "t", "template_type": "x", "script_content": "x"}).status_code == 201
    task_id = post(client, p.MAIN_HEARTBEAT_PATH, p.MainHeartbeat(agent_id=main_id, cpu_cores=4))["start"][0]["task_id"]
    post(client, p.REGISTER_SUB_PATH, p.RegisterSub(sub_agent_id=f"sub-{task_id}", main_agent_id=main_id,
                                                    task_id=task_id))
    return task_id, f"sub-{task_id}"


@pytest.mark.parametrize("canceled_first", [False, True], ids=["ran to its end", "canceled, then ended"])
def test_the_beat_that_ends_a_task_notifies_each_topic_once(app, monkeypatch, canceled_first):
    client = app.test_client()
    task_id, sub_id = running_task(client)
    if canceled_first:
        assert client.post(f"/api/tasks/{task_id}/cancel").status_code == 200
    notified = Counter()
    monkeypatch.setattr(signals, "notify", lambda topic: notified.update([topic]))
    reply = beat(client, p.SubHeartbeat(sub_agent_id=sub_id, task_id=task_id, offset=0, returncode=0, final_size=0))
    assert reply["finished"] is True
    assert notified == {signals.WORK: 1, signals.task_topic(task_id): 1}
