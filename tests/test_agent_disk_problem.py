"""A main agent's full disk as the server sees it (MainHeartbeat.disk_problem): shown in the agent
JSON, no task handed to the agent while it lasts, and tasks handed again once it clears; and the
server's own full disk answers 507 Insufficient Storage with a message that says so, not a 500."""
from __future__ import annotations

import errno
import logging
import sqlite3

import pytest
import sqlalchemy.exc

from backend.services import tasks as task_service
from task_common import protocol as p
from tests.helpers import Api
from tests.protocol_agent import ProtocolAgent

PROBLEM = "disk full on box: /srv/agent/state"


def beat(agent: ProtocolAgent, disk_problem) -> p.MainHeartbeatReply:
    message = agent.heartbeat_message().model_copy(update={"disk_problem": disk_problem})
    return agent.transport.call(p.MAIN_HEARTBEAT_PATH, message, p.MainHeartbeatReply)


def test_an_agent_with_a_full_disk_is_shown_so_and_gets_no_task_until_it_clears(server, client: Api):
    agent = ProtocolAgent(server.url, name="box").register()
    assert beat(agent, PROBLEM).start == []
    shown = client.get(f"/api/agents/{agent.agent_id}").json()
    assert shown["disk_problem"] == PROBLEM and shown["status"] == "online"

    task = client.create_task("echo hi", name="waits")
    for _ in range(3):
        assert beat(agent, PROBLEM).start == []
    assert client.task(task["id"])["status"] == "waiting"

    assert [a.task_id for a in beat(agent, None).start] == [task["id"]]
    assert client.get(f"/api/agents/{agent.agent_id}").json()["disk_problem"] is None


def _sqlite_full() -> Exception:
    driver_error = sqlite3.OperationalError("database or disk is full")
    driver_error.sqlite_errorcode = sqlite3.SQLITE_FULL
    return sqlalchemy.exc.OperationalError("INSERT INTO tasks ...", {}, driver_error)


@pytest.mark.parametrize("error, says", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/logs/tasks/7.log"), "/data/logs/tasks/7.log"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
    (_sqlite_full(), "database"),
], ids=["enospc", "edquot", "sqlite-full"])
def test_the_servers_full_disk_answers_507_with_a_message_that_says_so(app, monkeypatch, error, says):
    def create_task(**_):
        raise error

    monkeypatch.setattr(task_service, "create_task", create_task)
    resp = app.test_client().post("/api/tasks", json={"name": "t", "template_type": "c", "script_content": "true"})
    assert resp.status_code == 507, resp.get_data(as_text=True)
    body = resp.get_json()["error"]
    assert body["code"] == "insufficient_storage" and "disk" in body["message"] and says in body["message"], body


def test_other_os_errors_stay_a_generic_500(app, monkeypatch):
    def create_task(**_):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(task_service, "create_task", create_task)
    resp = app.test_client().post("/api/tasks", json={"name": "t", "template_type": "c", "script_content": "true"})
    assert resp.status_code == 500 and resp.get_json()["error"]["code"] == "internal_error"


def test_a_log_file_on_a_full_disk_drops_records_without_a_traceback_each(capsys):
    from task_common.logging import TolerantFileHandler

    logger = logging.getLogger("disk-full-test")
    handler = TolerantFileHandler("/dev/full")  # every write: ENOSPC
    logger.addHandler(handler)
    try:
        logger.warning("one")
        logger.warning("two")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert "Logging error" not in capsys.readouterr().err
