"""The task and template REST API: create, get, list and filter, and every error answer.

One real server for the module (the tests use their own names and template types, so they never
see each other's tasks). Its size limits are shrunk so the 413 cases stay cheap.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.conftest import ServerProcess
from tests.helpers import Api

MAX_SCRIPT_BYTES = 10_000
MAX_REQUEST_BYTES = 100_000
TASK_FIELDS = {"id", "name", "template_type", "priority", "depends_on", "status", "created_time",
               "script_content", "cpu_cores", "gpu_count", "gpu_memory", "start_time", "end_time",
               "execution_time", "agent_id", "log_file", "exit_code", "status_reason", "gpu_ids"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("api-data"), env={
        "TASK_SYSTEM_MAX_SCRIPT_BYTES": str(MAX_SCRIPT_BYTES),
        "TASK_SYSTEM_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES)}).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def api(server) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def ids(api: Api) -> dict:
    """Tasks in the states the error table needs: a waiting one, a canceled one, a failed one."""
    waiting = api.create_task("echo waiting", name="err-waiting")
    canceled = api.create_task("echo canceled", name="err-canceled")
    blocked = api.create_task("echo blocked", name="err-blocked", depends_on=[canceled["id"]])
    assert api.post(f"/api/tasks/{canceled['id']}/cancel").status_code == 200
    assert api.task(blocked["id"])["status"] == "failed"
    template = api.post("/api/templates", json={"name": "err-template", "script_content": "echo"}).json()
    api.post("/api/templates", json={"name": "err-template-2", "script_content": "echo"})
    return {"waiting": waiting["id"], "canceled": canceled["id"], "failed": blocked["id"],
            "template": template["id"], "missing": 987_654}


def unique() -> str:
    return uuid.uuid4().hex[:10]


def assert_error_body(resp: requests.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers["Content-Type"]
    body = resp.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_iso_utc(value: str) -> datetime:
    assert value.endswith("+00:00"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


# --- create and get ---------------------------------------------------------------------------

def test_create_task_applies_defaults_and_answers_every_field(api: Api):
    before = datetime.now(timezone.utc)
    resp = api.post("/api/tasks", json={"name": "defaults", "template_type": "custom", "script_content": "echo hi"})
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert set(task) >= TASK_FIELDS
    assert task["priority"] == 3 and task["cpu_cores"] == 1 and task["gpu_count"] == 0 and task["gpu_memory"] == 0
    assert task["depends_on"] == [] and task["gpu_ids"] == []
    assert task["status"] == "waiting" and task["status_reason"] is None
    assert task["start_time"] is None and task["end_time"] is None and task["execution_time"] is None
    assert task["agent_id"] is None and task["exit_code"] is None
    assert task["log_file"].endswith(f"{task['id']}.log")
    created = assert_iso_utc(task["created_time"])
    assert before - timedelta(seconds=5) < created < datetime.now(timezone.utc) + timedelta(seconds=5)


def test_create_task_keeps_every_given_field(api: Api):
    dep = api.create_task("echo dep")
    task = api.create_task("echo 'ü ✓'\n", name="  Full Task ", template_type="Train Model", priority=1,
                           cpu_cores=0, gpu_count=2, gpu_memory=4096, depends_on=[dep["id"]])
    assert task["name"] == "  Full Task " and task["template_type"] == "Train Model"
    assert task["script_content"] == "echo 'ü ✓'\n"
    assert (task["priority"], task["cpu_cores"], task["gpu_count"], task["gpu_memory"]) == (1, 0, 2, 4096)
    assert task["depends_on"] == [dep["id"]]
    assert task["status"] == "blocked" and str(dep["id"]) in task["status_reason"]


def test_get_task_answers_the_same_task_as_create(api: Api):
    task = api.create_task("echo get", name="get-me")
    assert api.task(task["id"]) == {**task, "execution_time": None}


def test_name_of_exactly_200_characters_is_accepted(api: Api):
    assert api.create_task("echo", name="n" * 200)["name"] == "n" * 200


def test_script_of_exactly_max_script_bytes_is_accepted(api: Api):
    script = "#" * (MAX_SCRIPT_BYTES - 2) + "é"  # é is 2 bytes: exactly the limit
    assert api.create_task(script)["script_content"] == script


# --- list and filters ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def listing(api: Api) -> dict:
    """Five tasks under one fresh template_type: statuses waiting, canceled, blocked, failed (cascade)."""
    kind = "list-" + unique()
    a = api.create_task("python train.py --lr 0.1", name="Alpha run", template_type=kind)
    b = api.create_task("python eval.py", name="beta RUN", template_type=kind)
    c = api.create_task("echo 100%_done", name="gamma", template_type=kind, depends_on=[a["id"]])
    d = api.create_task("echo after b", name="delta", template_type=kind, depends_on=[b["id"]])
    e = api.create_task("python train.py --lr 0.01", name="epsilon_alpha", template_type=kind)
    assert api.post(f"/api/tasks/{b['id']}/cancel").status_code == 200
    return {"kind": kind, "ids": [t["id"] for t in (a, b, c, d, e)], "a": a["id"], "b": b["id"], "c": c["id"],
            "d": d["id"], "e": e["id"]}


def list_ids(api: Api, **params) -> list[int]:
    resp = api.get("/api/tasks", params=params)
    assert resp.status_code == 200, resp.text
    return [t["id"] for t in resp.json()["items"]]


def test_list_is_newest_first_with_total_and_page_fields(api: Api, listing):
    resp = api.get("/api/tasks", params={"template_type": listing["kind"]})
    body = resp.json()
    assert set(body) == {"items", "total", "page", "page_size"}
    assert body["total"] == 5 and body["page"] == 1 and body["page_size"] == 20
    assert [t["id"] for t in body["items"]] == sorted(listing["ids"], reverse=True)
    assert set(body["items"][0]) >= TASK_FIELDS


def test_list_pages_through_all_matches(api: Api, listing):
    kind = listing["kind"]
    pages = [api.get("/api/tasks", params={"template_type": kind, "page": n, "page_size": 2}).json()
             for n in (1, 2, 3, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [p["page"] for p in pages] == [1, 2, 3, 4] and all(p["page_size"] == 2 for p in pages)
    assert [[t["id"] for t in p["items"]] for p in pages] == [
        sorted(listing["ids"], reverse=True)[i:i + 2] for i in (0, 2, 4, 6)]


@pytest.mark.parametrize("status, expected", [
    ("waiting", ["e", "a"]),
    ("canceled", ["b"]),
    ("blocked", ["c"]),
    ("failed", ["d"]),
    ("running", []),
    ("waiting,failed", ["e", "d", "a"]),
    ("blocked,canceled,completed", ["c", "b"]),
])
def test_list_filters_by_one_status_or_a_comma_separated_list(api: Api, listing, status, expected):
    assert list_ids(api, template_type=listing["kind"], status=status) == [listing[k] for k in expected]


@pytest.mark.parametrize("name, expected", [
    ("alpha", ["e", "a"]),
    ("RUN", ["b", "a"]),
    ("HA R", ["a"]),
    ("_", ["e"]),
    ("%", []),
    ("zeta", []),
])
def test_list_filters_by_case_insensitive_name_substring(api: Api, listing, name, expected):
    assert list_ids(api, template_type=listing["kind"], name=name) == [listing[k] for k in expected]


@pytest.mark.parametrize("script, expected", [
    ("train.py", ["e", "a"]),
    ("--lr 0.01", ["e"]),
    ("100%_", ["c"]),
    ("TRAIN", []),
])
def test_list_filters_by_script_substring(api: Api, listing, script, expected):
    assert list_ids(api, template_type=listing["kind"], script=script) == [listing[k] for k in expected]


def test_list_filters_by_exact_template_type(api: Api, listing):
    kind = listing["kind"]
    assert len(list_ids(api, template_type=kind)) == 5
    assert list_ids(api, template_type=kind.upper()) == []
    assert list_ids(api, template_type=kind[:-1]) == []


def test_list_filters_combine(api: Api, listing):
    assert list_ids(api, template_type=listing["kind"], status="waiting", name="epsilon",
                    script="train") == [listing["e"]]


def test_list_without_filters_counts_every_task(api: Api, listing):
    body = api.get("/api/tasks", params={"page_size": 200}).json()
    assert body["total"] >= 5 and len(body["items"]) == min(body["total"], 200)
    ids = [t["id"] for t in body["items"]]
    assert ids == sorted(ids, reverse=True)


# --- templates ----------------------------------------------------------------------------------

def test_template_create_list_and_get(api: Api):
    name = "tpl-" + unique()
    resp = api.post("/api/templates", json={"name": name, "script_content": "python train.py\n"})
    assert resp.status_code == 201, resp.text
    template = resp.json()
    assert {"id", "name", "script_content", "created_time"} <= set(template)
    assert_iso_utc(template["created_time"])
    listed = {t["name"]: t for t in api.get("/api/templates").json()}
    assert listed[name] == template
    assert api.get(f"/api/templates/{template['id']}").json() == template


# --- every error answer ---------------------------------------------------------------------------

def body(**overrides) -> dict:
    base = {"name": "t", "template_type": "custom", "script_content": "echo hi"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


ERRORS = [
    # (id, method, path, request kwargs, status, code)
    ("missing name", "POST", "/api/tasks", {"json": body(name=...)}, 400, "invalid_input"),
    ("blank name", "POST", "/api/tasks", {"json": body(name="   ")}, 400, "invalid_input"),
    ("empty name", "POST", "/api/tasks", {"json": body(name="")}, 400, "invalid_input"),
    ("name too long", "POST", "/api/tasks", {"json": body(name="n" * 201)}, 400, "invalid_input"),
    ("name not a string", "POST", "/api/tasks", {"json": body(name=5)}, 400, "invalid_input"),
    ("missing template_type", "POST", "/api/tasks", {"json": body(template_type=...)}, 400, "invalid_input"),
    ("blank template_type", "POST", "/api/tasks", {"json": body(template_type=" \t")}, 400, "invalid_input"),
    ("missing script", "POST", "/api/tasks", {"json": body(script_content=...)}, 400, "invalid_input"),
    ("blank script", "POST", "/api/tasks", {"json": body(script_content="  \n ")}, 400, "invalid_input"),
    ("null script", "POST", "/api/tasks", {"json": body(script_content=None)}, 400, "invalid_input"),
    ("priority as string", "POST", "/api/tasks", {"json": body(priority="3")}, 400, "invalid_input"),
    ("priority as float", "POST", "/api/tasks", {"json": body(priority=2.0)}, 400, "invalid_input"),
    ("priority 0", "POST", "/api/tasks", {"json": body(priority=0)}, 400, "invalid_input"),
    ("priority 6", "POST", "/api/tasks", {"json": body(priority=6)}, 400, "invalid_input"),
    ("priority null", "POST", "/api/tasks", {"json": body(priority=None)}, 400, "invalid_input"),
    ("cpu_cores as bool", "POST", "/api/tasks", {"json": body(cpu_cores=True)}, 400, "invalid_input"),
    ("cpu_cores negative", "POST", "/api/tasks", {"json": body(cpu_cores=-1)}, 400, "invalid_input"),
    ("gpu_count negative", "POST", "/api/tasks", {"json": body(gpu_count=-1)}, 400, "invalid_input"),
    ("gpu_count as string", "POST", "/api/tasks", {"json": body(gpu_count="1")}, 400, "invalid_input"),
    ("gpu_memory negative", "POST", "/api/tasks", {"json": body(gpu_memory=-1)}, 400, "invalid_input"),
    ("gpu_memory huge", "POST", "/api/tasks", {"json": body(gpu_memory=10**20)}, 400, "invalid_input"),
    ("depends_on not a list", "POST", "/api/tasks", {"json": body(depends_on="1")}, 400, "invalid_input"),
    ("depends_on of strings", "POST", "/api/tasks", {"json": body(depends_on=["1"])}, 400, "invalid_input"),
    ("depends_on id 0", "POST", "/api/tasks", {"json": body(depends_on=[0])}, 400, "invalid_input"),
    ("unknown dependency", "POST", "/api/tasks", {"json": body(depends_on=["{missing}"])}, 400, "unknown_dependency"),
    ("duplicate dependency", "POST", "/api/tasks", {"json": body(depends_on=["{waiting}", "{waiting}"])}, 400,
     "duplicate_dependency"),
    ("dependency canceled", "POST", "/api/tasks", {"json": body(depends_on=["{canceled}"])}, 400, "dependency_failed"),
    ("dependency failed", "POST", "/api/tasks", {"json": body(depends_on=["{waiting}", "{failed}"])}, 400,
     "dependency_failed"),
    ("unknown field", "POST", "/api/tasks", {"json": body(prio=1)}, 400, "invalid_input"),
    ("invalid JSON", "POST", "/api/tasks", {"data": b'{"name": ', "headers": {"Content-Type": "application/json"}},
     400, None),
    ("JSON array body", "POST", "/api/tasks", {"json": [1, 2]}, 400, None),
    ("JSON string body", "POST", "/api/tasks", {"json": "hello"}, 400, None),
    ("no body", "POST", "/api/tasks", {}, 400, None),
    ("form body", "POST", "/api/tasks", {"data": {"name": "t"}}, 400, None),
    ("deeply nested JSON", "POST", "/api/tasks", {"data": b"[" * 40_000 + b"]" * 40_000,
                                                  "headers": {"Content-Type": "application/json"}}, 400, None),
    ("script too large", "POST", "/api/tasks", {"json": body(script_content="x" * (MAX_SCRIPT_BYTES + 1))}, 413,
     "script_too_large"),
    ("script too large in bytes", "POST", "/api/tasks",
     {"json": body(script_content="é" * (MAX_SCRIPT_BYTES // 2 + 1))}, 413, "script_too_large"),
    ("request too large", "POST", "/api/tasks", {"json": body(script_content="x" * (MAX_REQUEST_BYTES + 10))}, 413,
     None),
    ("unknown status filter", "GET", "/api/tasks?status=bogus", {}, 400, "invalid_input"),
    ("one unknown status in list", "GET", "/api/tasks?status=waiting,bogus", {}, 400, "invalid_input"),
    ("empty status in list", "GET", "/api/tasks?status=waiting,", {}, 400, "invalid_input"),
    ("page_size 0", "GET", "/api/tasks?page_size=0", {}, 400, "invalid_input"),
    ("page_size 201", "GET", "/api/tasks?page_size=201", {}, 400, "invalid_input"),
    ("page 0", "GET", "/api/tasks?page=0", {}, 400, "invalid_input"),
    ("page not a number", "GET", "/api/tasks?page=two", {}, 400, "invalid_input"),
    ("get unknown task", "GET", "/api/tasks/{missing}", {}, 404, "task_not_found"),
    ("get task id not a number", "GET", "/api/tasks/abc", {}, 404, None),
    ("get task id too big", "GET", "/api/tasks/99999999999999999999999", {}, 400, "invalid_input"),
    ("cancel unknown task", "POST", "/api/tasks/{missing}/cancel", {}, 404, "task_not_found"),
    ("cancel canceled task", "POST", "/api/tasks/{canceled}/cancel", {}, 409, "task_finished"),
    ("cancel failed task", "POST", "/api/tasks/{failed}/cancel", {}, 409, "task_finished"),
    ("log of unknown task", "GET", "/api/tasks/{missing}/log", {}, 404, "task_not_found"),
    ("log tail with offset", "GET", "/api/tasks/{waiting}/log?tail=10&offset=0", {}, 400, "invalid_input"),
    ("log tail with limit", "GET", "/api/tasks/{waiting}/log?tail=10&limit=5", {}, 400, "invalid_input"),
    ("log offset past end", "GET", "/api/tasks/{waiting}/log?offset=1", {}, 400, "offset_out_of_range"),
    ("log negative offset", "GET", "/api/tasks/{waiting}/log?offset=-1", {}, 400, "invalid_input"),
    ("log negative tail", "GET", "/api/tasks/{waiting}/log?tail=-1", {}, 400, "invalid_input"),
    ("log limit not a number", "GET", "/api/tasks/{waiting}/log?limit=x", {}, 400, "invalid_input"),
    ("unknown route under /api", "GET", "/api/nope", {}, 404, "not_found"),
    ("unknown sub-route of a task", "GET", "/api/tasks/{waiting}/nope", {}, 404, "not_found"),
    ("POST to unknown route under /api", "POST", "/api/nope", {"json": {}}, 404, "not_found"),
    ("no delete route for tasks", "DELETE", "/api/tasks/{waiting}", {}, 405, "method_not_allowed"),
    ("wrong method on task list", "PUT", "/api/tasks", {"json": {}}, 405, "method_not_allowed"),
    ("wrong method on cancel", "GET", "/api/tasks/{waiting}/cancel", {}, 405, "method_not_allowed"),
    ("template duplicate name", "POST", "/api/templates", {"json": {"name": "err-template", "script_content": "x"}},
     409, "template_exists"),
    ("template blank name", "POST", "/api/templates", {"json": {"name": " ", "script_content": "x"}}, 400,
     "invalid_input"),
    ("template name too long", "POST", "/api/templates", {"json": {"name": "n" * 201, "script_content": "x"}}, 400,
     "invalid_input"),
    ("template missing script", "POST", "/api/templates", {"json": {"name": "new-one"}}, 400, "invalid_input"),
    ("template blank script", "POST", "/api/templates", {"json": {"name": "new-one", "script_content": "\n"}}, 400,
     "invalid_input"),
    ("get unknown template", "GET", "/api/templates/{missing}", {}, 404, "template_not_found"),
    ("update unknown template", "PUT", "/api/templates/{missing}", {"json": {"name": "x"}}, 404,
     "template_not_found"),
    ("delete unknown template", "DELETE", "/api/templates/{missing}", {}, 404, "template_not_found"),
    ("rename template onto another", "PUT", "/api/templates/{template}", {"json": {"name": "err-template-2"}}, 409,
     "template_exists"),
    ("get unknown agent", "GET", "/api/agents/no-such-agent", {}, 404, "agent_not_found"),
    ("unknown agents view", "GET", "/api/agents?sub_agents=some", {}, 400, "invalid_input"),
    ("heartbeat body invalid", "POST", "/api/agent-protocol/main/heartbeat", {"json": {"agent_id": 5}}, 400,
     "invalid_input"),
]


def _fill(value, ids: dict):
    """Replace a "{waiting}"-style placeholder with that task's id."""
    if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value):
        return ids[value[1:-1]]
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("method, path, kwargs, status, code", [row[1:] for row in ERRORS],
                         ids=[row[0] for row in ERRORS])
def test_bad_request_answers_json_error(api: Api, ids, method, path, kwargs, status, code):
    kwargs = dict(kwargs)
    if "json" in kwargs:
        kwargs["json"] = _fill(kwargs["json"], ids)
    resp = api.request(method, path.format(**ids), **kwargs)
    assert_error_body(resp, status, code)


def test_failed_validation_names_the_field(api: Api):
    error = assert_error_body(api.post("/api/tasks", json=body(priority=9)), 400, "invalid_input")
    assert "priority" in error["message"]
    assert any(d["field"] == "priority" for d in error["details"])


@pytest.mark.parametrize("kwargs", [
    {"data": b'{"name": ', "headers": {"Content-Type": "application/json"}},
    {"json": [1]},
    {},
], ids=["invalid JSON", "JSON array", "no body"])
def test_body_that_is_not_a_json_object_gets_a_plain_message(api: Api, kwargs):
    error = assert_error_body(api.post("/api/tasks", **kwargs), 400, "invalid_input")
    assert error["message"] == "The request body must be a JSON object."


def test_rejected_create_stores_nothing(api: Api):
    kind = "rejected-" + unique()
    for bad in (body(template_type=kind, priority=0), body(template_type=kind, depends_on=[987_654]),
                body(template_type=kind, script_content="x" * (MAX_SCRIPT_BYTES + 1))):
        assert api.post("/api/tasks", json=bad).status_code in (400, 413)
    assert api.get("/api/tasks", params={"template_type": kind}).json()["total"] == 0


def test_health_answers_ok(api: Api):
    body_ = api.get("/api/health").json()
    assert body_["status"] == "ok"
