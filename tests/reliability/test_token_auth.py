"""With a token configured, every API route, the log WebSocket and the agent protocol refuse a
missing or wrong token with 401, and agents given the token run tasks end to end."""
from __future__ import annotations

import json

import pytest
import requests
import websocket

from tests.conftest import ServerProcess
from tests.helpers import Api

from .test_api_fuzz import assert_contract_error_shape

TOKEN = "s3cret-token-for-tests"

ROUTES = [  # every route of /api/openapi.json plus the WebSocket (checked separately)
    ("GET", "/api/health"), ("GET", "/api/openapi.json"),
    ("GET", "/api/tasks"), ("POST", "/api/tasks"), ("GET", "/api/tasks/1"),
    ("POST", "/api/tasks/1/cancel"), ("GET", "/api/tasks/1/log"),
    ("GET", "/api/templates"), ("POST", "/api/templates"), ("GET", "/api/templates/1"),
    ("PUT", "/api/templates/1"), ("DELETE", "/api/templates/1"),
    ("GET", "/api/agents"), ("GET", "/api/agents/x"),
    ("POST", "/api/agent-protocol/main/register"), ("POST", "/api/agent-protocol/main/heartbeat"),
    ("POST", "/api/agent-protocol/sub/register"), ("POST", "/api/agent-protocol/sub/heartbeat"),
    ("GET", "/api/no-such-route"),
]
BAD_CREDENTIALS = {
    "missing": {},
    "wrong": {"Authorization": "Bearer wrong-token"},
    "prefix of the token": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "token plus a character": {"Authorization": f"Bearer {TOKEN}x"},
    "not bearer": {"Authorization": f"Basic {TOKEN}"},
    "empty bearer": {"Authorization": "Bearer "},
}


@pytest.fixture
def server(data_dir):
    """The standard server, started with a token (TASK_SYSTEM_TOKEN)."""
    proc = ServerProcess(data_dir, token=TOKEN).start()
    yield proc
    proc.kill()


def test_every_route_refuses_a_missing_or_wrong_token(server):
    """Each of 19 routes x 6 bad credentials (missing, wrong, prefix, longer, Basic, empty) answers
    401 in the error shape, including the OpenAPI document and unknown routes."""
    session = requests.Session()
    failures = []
    for method, path in ROUTES:
        for label, headers in BAD_CREDENTIALS.items():
            resp = session.request(method, server.url + path, headers=headers, json={}, timeout=10)
            if resp.status_code != 401:
                failures.append(f"{method} {path} with {label} token -> {resp.status_code}")
            else:
                assert_contract_error_shape(resp)
    assert not failures, failures
    ok = session.get(server.url + "/api/tasks", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert ok.status_code == 200


@pytest.mark.parametrize("query,header", [("", None), ("&token=wrong", None), ("", "Bearer wrong")],
                         ids=["missing", "wrong query token", "wrong header"])
def test_log_websocket_refuses_a_missing_or_wrong_token(server, query, header):
    """The log WebSocket handshake is refused with 401 without the right token."""
    task = Api(server.url, TOKEN).create_task("echo hi")
    url = server.url.replace("http", "ws") + f"/api/tasks/{task['id']}/log/ws?offset=0{query}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=10, header=[f"Authorization: {header}"] if header else None)
    assert refused.value.status_code == 401


def test_log_websocket_accepts_the_token(server):
    """With ?token= (what a browser can send) the WebSocket opens and streams the task's status."""
    task = Api(server.url, TOKEN).create_task("echo hi")
    url = server.url.replace("http", "ws") + f"/api/tasks/{task['id']}/log/ws?offset=0&token={TOKEN}"
    ws = websocket.create_connection(url, timeout=10)
    try:
        assert json.loads(ws.recv())["type"] in ("status", "log")
    finally:
        ws.close()


@pytest.mark.timeout(90)
def test_agents_with_the_token_run_a_task_end_to_end(server, client, start_agent):
    """Server and agent both given TASK_SYSTEM_TOKEN: a task runs on the agent and its output
    arrives; an agent with a wrong token is refused (it exits and never registers)."""
    assert client.get("/api/tasks").status_code == 200  # the client fixture carries the token
    start_agent(name="with-token")
    task = client.create_task("echo authorised; echo to-stderr >&2", name="auth-e2e")
    done = client.wait_status(task["id"], {"completed", "failed"}, 40)
    assert done["status"] == "completed", done
    assert client.log(task["id"]) == b"authorised\nto-stderr\n"

    server.token = "wrong"  # the next agent is started with the wrong token
    try:
        intruder = start_agent(name="wrong-token")
    finally:
        server.token = TOKEN
    assert intruder.proc.wait(30) != 0
    assert [a["name"] for a in client.get("/api/agents").json()] == ["with-token"]
