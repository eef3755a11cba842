"""With TASK_SYSTEM_TOKEN set, every REST route, the WebSocket and the agent protocol require it."""
from __future__ import annotations

import json

import pytest
import requests
import websocket

from task_common import protocol as p
from task_common import protocol_v1 as v1
from tests.conftest import ServerProcess
from tests.helpers import Api
from tests.protocol_agent import ProtocolAgent, ProtocolError

TOKEN = "s3cret-token-✓".encode().hex()  # any string; hex keeps it header-safe


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("auth-data"), token=TOKEN).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def api(server) -> Api:
    return Api(server.url, token=TOKEN)


@pytest.fixture(scope="module")
def task_id(api: Api) -> int:
    return api.create_task("echo", cpu_cores=10_000)["id"]  # never placed


ROUTES = [
    ("GET", "/api/health", None),
    ("GET", "/api/openapi.json", None),
    ("GET", "/api/tasks", None),
    ("POST", "/api/tasks", {"name": "t", "template_type": "custom", "script_content": "echo"}),
    ("GET", "/api/tasks/{task_id}", None),
    ("POST", "/api/tasks/{task_id}/cancel", None),
    ("GET", "/api/tasks/{task_id}/log", None),
    ("GET", "/api/templates", None),
    ("POST", "/api/templates", {"name": "tpl", "script_content": "echo"}),
    ("GET", "/api/templates/1", None),
    ("PUT", "/api/templates/1", {"script_content": "echo 2"}),
    ("DELETE", "/api/templates/1", None),
    ("GET", "/api/agents", None),
    ("GET", "/api/agents/some-agent", None),
    ("POST", p.REGISTER_MAIN_PATH, {"name": "a", "cpu_cores": 1}),
    ("POST", p.MAIN_HEARTBEAT_PATH, {"agent_id": "a", "cpu_cores": 1}),
    ("POST", p.REGISTER_SUB_PATH, {"sub_agent_id": "s", "main_agent_id": "a", "task_id": 1}),
    ("POST", p.SUB_HEARTBEAT_PATH + "?sub_agent_id=s&task_id=1&offset=0", None),
    ("POST", v1.SUB_HEARTBEAT_V1_PATH, {"sub_agent_id": "s", "task_id": 1}),
    ("POST", v1.SUB_OUTPUT_V1_PATH + "?sub_agent_id=s&task_id=1&offset=0", None),
    ("GET", "/api/no-such-route", None),
]
BAD_CREDENTIALS = {
    "no token": {},
    "wrong bearer": {"headers": {"Authorization": "Bearer wrong"}},
    "empty bearer": {"headers": {"Authorization": "Bearer "}},
    "token without Bearer": {"headers": {"Authorization": TOKEN}},
    "basic auth": {"auth": ("user", TOKEN)},
    "wrong query token": {"params": {"token": "wrong"}},
    "token prefix": {"headers": {"Authorization": f"Bearer {TOKEN[:-1]}"}},
    "wrong bearer beats right query": {"headers": {"Authorization": "Bearer wrong"}, "params": {"token": TOKEN}},
}


@pytest.mark.parametrize("method, path, body", ROUTES, ids=[f"{m} {r}" for m, r, _ in ROUTES])
@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
def test_route_refuses_missing_or_wrong_token_with_401_json(server, task_id, method, path, body, credentials):
    resp = requests.request(method, server.url + path.format(task_id=task_id), json=body, timeout=10, **credentials)
    assert resp.status_code == 401, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"]["code"] == "unauthorized" and resp.json()["error"]["message"]


@pytest.mark.parametrize("method, path, body", ROUTES, ids=[f"{m} {r}" for m, r, _ in ROUTES])
def test_route_accepts_the_bearer_token(server, task_id, method, path, body):
    resp = requests.request(method, server.url + path.format(task_id=task_id), json=body, timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code != 401, resp.text
    assert resp.status_code < 500, resp.text


def test_query_token_is_accepted_too(server, task_id):
    resp = requests.get(f"{server.url}/api/tasks/{task_id}", params={"token": TOKEN}, timeout=10)
    assert resp.status_code == 200 and resp.json()["id"] == task_id


def test_refused_request_changes_nothing(server, api: Api):
    before = api.get("/api/tasks").json()["total"]
    resp = requests.post(server.url + "/api/tasks", json={"name": "t", "template_type": "c", "script_content": "x"},
                         timeout=10)
    assert resp.status_code == 401
    assert api.get("/api/tasks").json()["total"] == before


def test_web_ui_outside_api_needs_no_token(server):
    assert requests.get(server.url + "/", timeout=10).status_code != 401


def ws_url(server, task_id: int, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + f"/api/tasks/{task_id}/log/ws" + query


@pytest.mark.parametrize("query, header", [("", None), ("?token=wrong", None), ("", "Bearer wrong")],
                         ids=["no token", "wrong query token", "wrong bearer"])
def test_websocket_refuses_missing_or_wrong_token(server, task_id, query, header):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(server, task_id, query), timeout=10,
                                    header=[f"Authorization: {header}"] if header else None)
    assert refused.value.status_code == 401


@pytest.mark.parametrize("query, header", [(f"?token={TOKEN}", None), ("", f"Bearer {TOKEN}")],
                         ids=["query token", "bearer header"])
def test_websocket_accepts_the_token(server, task_id, query, header):
    ws = websocket.create_connection(ws_url(server, task_id, query), timeout=10,
                                     header=[f"Authorization: {header}"] if header else None)
    try:
        frame = json.loads(ws.recv())
        assert frame["type"] == "status"
    finally:
        ws.close()


def test_agent_with_the_token_runs_a_task_and_without_it_is_refused(server, api: Api):
    with pytest.raises(ProtocolError) as refused:
        ProtocolAgent(server.url).register()
    assert refused.value.status_code == 401
    agent = ProtocolAgent(server.url, cpu_cores=1, token=TOKEN).register()
    task = api.create_task("echo", priority=1)  # ahead of what the route tests queued
    reply = agent.heartbeat()
    assert [a.task_id for a in reply.start] == [task["id"]]
    agent.run_to_end(reply.start[0], output=b"ok\n")
    assert api.task(task["id"])["status"] == "completed" and api.log(task["id"]) == b"ok\n"
