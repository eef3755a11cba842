"""GET /api/tasks/<id>/log/raw?offset=O&wait_s=S: the stored bytes from any offset, and a long poll that
answers as soon as there is output past O or the task has ended (how `tq logs -f` follows a task)."""
from __future__ import annotations

import time

from tests.helpers import Api


def raw(client: Api, task_id: int, **params):
    return client.get(f"/api/tasks/{task_id}/log/raw", params=params, timeout=30)


def test_raw_log_from_an_offset_is_the_rest_of_the_bytes(client: Api, main_agent):
    task = client.create_task("printf 'abc\\xff\\r\\ndef'")
    client.wait_status(task["id"], "completed")
    resp = raw(client, task["id"], offset=3)
    assert resp.content == b"\xff\r\ndef"
    assert resp.headers["X-Log-Size"] == "9" and resp.headers["X-Log-Complete"] == "true"
    end = raw(client, task["id"], offset=9, wait_s=30)  # nothing more will come: answered at once
    assert end.content == b"" and end.headers["X-Log-Complete"] == "true"


def test_raw_log_long_poll_answers_when_output_arrives(client: Api, main_agent):
    task = client.create_task("sleep 1.5; printf late; sleep 1")
    client.wait_status(task["id"], "running")
    started = time.monotonic()
    resp = raw(client, task["id"], offset=0, wait_s=20)
    assert resp.content == b"late" and resp.headers["X-Log-Complete"] == "false"
    assert time.monotonic() - started < 10
    done = raw(client, task["id"], offset=4, wait_s=20)  # held until the task ends
    assert done.content == b"" and done.headers["X-Log-Complete"] == "true"


def test_raw_log_long_poll_gives_up_after_wait_s(client: Api):
    task = client.create_task("echo never runs: no agent")
    started = time.monotonic()
    resp = raw(client, task["id"], offset=0, wait_s=0.5)
    assert resp.status_code == 200 and resp.content == b"" and resp.headers["X-Log-Complete"] == "false"
    assert 0.4 < time.monotonic() - started < 5


def test_raw_log_refuses_an_offset_past_the_end_and_a_bad_wait(client: Api):
    task = client.create_task("echo x")
    past = raw(client, task["id"], offset=5)
    assert past.status_code == 400 and past.json()["error"]["code"] == "offset_out_of_range"
    assert raw(client, task["id"], wait_s=61).status_code == 400
    assert raw(client, 987654, offset=0).status_code == 404
