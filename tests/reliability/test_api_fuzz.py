"""Every route, fuzzed from the live OpenAPI document (schemathesis: valid and invalid inputs), plus
hand-picked nasty inputs: no 5xx ever, and every error in the contract's JSON shape."""
from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from config import DEFAULTS
from tests.helpers import Api

def assert_contract_error_shape(response) -> None:
    """An error answers {"error": {"code": <snake_case str>, "message": <str>}} as JSON."""
    content_type = response.headers.get("Content-Type") or response.headers.get("content-type") or ""
    if isinstance(content_type, list):  # schemathesis' Response keeps every value of a header
        content_type = content_type[0]
    assert content_type.startswith("application/json"), f"{response.status_code} is not JSON: {response.text[:200]!r}"
    error = json.loads(response.content)["error"]
    assert isinstance(error["code"], str) and error["code"] and error["code"] == error["code"].lower()
    assert isinstance(error["message"], str) and error["message"]


def fuzz_every_operation(server, mode: GenerationMode, examples: int) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
    schema.config.update(base_url=server.url)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16, [op.label for op in operations]
    session = requests.Session()
    problems = []
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def check(case):
            response = case.call(session=session, timeout=15)
            assert response.status_code < 500, \
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
            if response.status_code >= 400:
                assert_contract_error_shape(response)

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to break in a route without inputs
        except Exception as exc:  # collect every operation's failure, not just the first
            problems.append(f"{operation.label}: {exc}")
    assert not problems, "\n".join(problems)
    assert server.is_healthy()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode,examples", [(GenerationMode.POSITIVE, 25), (GenerationMode.NEGATIVE, 10)],
                         ids=["valid", "invalid"])
def test_fuzzed_requests_never_get_5xx_and_errors_have_the_contract_shape(shared_server, mode, examples):
    """For every operation in /api/openapi.json (17), generated requests (schema-valid, then
    schema-violating) never get a 5xx, and every 4xx body is {"error": {"code", "message"}}."""
    fuzz_every_operation(shared_server, mode, examples)


@pytest.mark.soak
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_long_fuzz_never_gets_5xx(shared_server, mode):
    """Soak: the same with 300 generated requests per operation and mode."""
    fuzz_every_operation(shared_server, mode, 300)


# -- hand-picked cases ------------------------------------------------------------------------------

def task_body(**overrides) -> dict:
    return {"name": "t", "template_type": "custom", "script_content": "echo hi", **overrides}


@pytest.fixture
def api(shared_client) -> Api:
    return shared_client


def test_script_over_max_script_bytes_is_413(api):
    """script_content of MAX_SCRIPT_BYTES + 1 bytes (1 MB default) answers 413 in the error shape;
    exactly MAX_SCRIPT_BYTES (counted in UTF-8 bytes) is accepted."""
    limit = DEFAULTS["MAX_SCRIPT_BYTES"]
    too_big = api.post("/api/tasks", json=task_body(script_content="#" * (limit + 1)))
    assert too_big.status_code == 413, too_big.text[:200]
    assert_contract_error_shape(too_big)
    # fewer characters than the limit, more bytes
    multibyte = api.post("/api/tasks", json=task_body(script_content="é" * (limit // 2 + 1)))
    assert multibyte.status_code == 413, multibyte.text[:200]
    at_limit = api.post("/api/tasks", json=task_body(script_content="#" * limit))
    assert at_limit.status_code == 201, at_limit.text[:200]
    api.post(f"/api/tasks/{at_limit.json()['id']}/cancel")


def test_body_over_max_request_bytes_is_413(api):
    """A request body larger than MAX_REQUEST_BYTES (16 MiB) is refused with 413, not read whole."""
    resp = api.post("/api/tasks", data=b"{" + b" " * (DEFAULTS["MAX_REQUEST_BYTES"] + 1) + b"}",
                    headers={"Content-Type": "application/json"}, timeout=60)
    assert resp.status_code == 413
    assert_contract_error_shape(resp)


@pytest.mark.parametrize("path", ["/api/tasks", "/api/templates", "/api/agent-protocol/main/heartbeat"])
def test_deeply_nested_json_is_400(api, path):
    """10000 nested lists as the body answers 400 in the error shape (no recursion crash)."""
    resp = api.post(path, data="[" * 10000 + "]" * 10000, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text[:200]
    assert_contract_error_shape(resp)


WRONG_TYPES = [
    ("name", 5), ("name", None), ("name", ["x"]), ("name", {"a": 1}), ("name", ""), ("name", "   "),
    ("name", "n" * 201), ("template_type", 1.5), ("script_content", 0), ("script_content", False),
    ("priority", "3"), ("priority", 0), ("priority", 6), ("priority", 2.5), ("priority", True),
    ("cpu_cores", -1), ("cpu_cores", "1"), ("cpu_cores", 10**30), ("gpu_count", -1), ("gpu_count", None),
    ("gpu_memory", -5), ("gpu_memory", "80G"), ("depends_on", 1), ("depends_on", ["1"]),
    ("depends_on", [None]), ("depends_on", [1, 1]), ("depends_on", [10**9]), ("depends_on", [-1]),
    ("depends_on", {"a": 1}), ("unknown_field", 1),
]


@pytest.mark.parametrize("field,value", WRONG_TYPES, ids=[f"{f}={v!r}"[:40] for f, v in WRONG_TYPES])
def test_wrong_types_in_task_fields_are_400(api, field, value):
    """Each wrong type, out-of-range value or unknown key in POST /api/tasks answers 400 with the
    error shape; nothing is created."""
    before = api.get("/api/tasks").json()["total"]
    resp = api.post("/api/tasks", json=task_body(**{field: value}))
    assert resp.status_code == 400, resp.text[:300]
    assert_contract_error_shape(resp)
    assert api.get("/api/tasks").json()["total"] == before


@pytest.mark.parametrize("method,path,kwargs", [
    ("POST", "/api/tasks", {"data": "not json", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/tasks", {"data": "[]", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/tasks", {"data": "null", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/tasks", {"data": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/tasks", {"data": "name=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ("GET", "/api/tasks", {"params": {"page": "x"}}),
    ("GET", "/api/tasks", {"params": {"page": "0"}}),
    ("GET", "/api/tasks", {"params": {"page_size": "201"}}),
    ("GET", "/api/tasks", {"params": {"page": str(10**30)}}),
    ("GET", "/api/tasks", {"params": {"status": "runing"}}),
    ("GET", "/api/tasks/1/log", {"params": {"offset": "-1"}}),
    ("GET", "/api/tasks/1/log", {"params": {"tail": "abc"}}),
    ("GET", "/api/tasks/99999999999999999999999", {}),
    ("GET", "/api/tasks/0", {}),
    ("GET", "/api/tasks/-1", {}),
    ("POST", "/api/templates", {"json": {"name": 1, "script_content": "x"}}),
    ("PUT", "/api/templates/1", {"json": {"name": ""}}),
    ("POST", "/api/agent-protocol/sub/heartbeat", {"json": {"sub_agent_id": "x", "task_id": "y"}}),
    ("POST", "/api/agent-protocol/sub/heartbeat",
     {"json": {"sub_agent_id": "x", "task_id": 1, "chunks": [{"offset": 0, "data": "!!notbase64"}]}}),
    ("POST", "/api/agent-protocol/main/register", {"json": {"name": "", "cpu_cores": -1}}),
    ("GET", "/api/agents/" + "x" * 500, {}),
    ("DELETE", "/api/tasks/1", {}),
    ("GET", "/api/no-such-route", {}),
])
def test_malformed_requests_get_4xx_in_the_error_shape(api, method, path, kwargs):
    """Malformed bodies, bad query values, absurd ids, unknown routes and methods: a 4xx, JSON error shape."""
    resp = api.request(method, path, **kwargs)
    assert 400 <= resp.status_code < 500, f"{resp.status_code}: {resp.text[:300]}"
    assert_contract_error_shape(resp)


UNICODE_NAMES = ["训练 模型 🚀", "naïve café", "עברית العربية", "e\u0301 combining", "tab\there", "\u200bzero-width",
                 "emoji 👩‍👩‍👧‍👦 family", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]


def test_unicode_names_round_trip_exactly(api):
    """Unicode names (CJK, RTL, combining marks, ZWJ emoji, astral plane) come back byte for byte,
    by id and via the name filter; template names too."""
    for name in UNICODE_NAMES:
        created = api.post("/api/tasks", json=task_body(name=name, script_content=f"echo '{name}'"))
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        assert api.get(f"/api/tasks/{task_id}").json()["name"] == name
        found = api.get("/api/tasks", params={"name": name}).json()["items"]
        assert task_id in [t["id"] for t in found]
        api.post(f"/api/tasks/{task_id}/cancel")
        template = api.post("/api/templates", json={"name": name, "script_content": "echo x"})
        assert template.status_code == 201, template.text
        assert api.get(f"/api/templates/{template.json()['id']}").json()["name"] == name


SQL_LIKE = ["' OR 1=1 --", "'; DROP TABLE tasks; --", '" OR ""="', "%", "_", "\\", "1) OR (1=1", "%' --"]


def matches_literally(field: str, value: str, task: dict) -> bool:
    """What the contract says each filter means, applied to the value as plain text."""
    if field == "template_type":
        return task["template_type"] == value
    if field == "name":
        return value.lower() in task["name"].lower()
    return value in task["script_content"]


@pytest.mark.parametrize("field", ["name", "template_type", "script", "status"])
def test_sql_looking_filters_return_nothing_unexpected(api, field):
    """SQL-looking strings (' OR 1=1 --, DROP TABLE, LIKE wildcards % and _) in every filter: no
    error beyond a 400 for an unknown status, only literal matches come back, the table is intact."""
    marker = api.post("/api/tasks", json=task_body(name="plain-task", template_type="plain")).json()
    total_before = api.get("/api/tasks").json()["total"]
    for value in SQL_LIKE:
        resp = api.get("/api/tasks", params={field: value, "page_size": 200})
        if field == "status":
            assert resp.status_code == 400
            assert_contract_error_shape(resp)
            continue
        assert resp.status_code == 200, resp.text[:300]
        unexpected = [t["id"] for t in resp.json()["items"] if not matches_literally(field, value, t)]
        assert not unexpected, f"{field}={value!r} matched tasks {unexpected}"
        assert marker["id"] not in [t["id"] for t in resp.json()["items"]]
    assert api.get("/api/tasks").json()["total"] == total_before
    assert api.get(f"/api/tasks/{marker['id']}").status_code == 200
    api.post(f"/api/tasks/{marker['id']}/cancel")


def test_sql_looking_values_are_stored_literally(api):
    """A task named like an injection is stored and found literally, and only itself matches it."""
    name = "x' OR 1=1 --"
    created = api.post("/api/tasks", json=task_body(name=name)).json()
    found = api.get("/api/tasks", params={"name": name}).json()
    assert [t["id"] for t in found["items"]] == [created["id"]]
    assert found["items"][0]["name"] == name
    api.post(f"/api/tasks/{created['id']}/cancel")
