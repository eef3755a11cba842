"""/api/openapi.json describes every route of the contract (and the agent protocol): its inputs, and every
answer's body, which the routes build through the same models (backend/api/responses.py)."""
from __future__ import annotations

import json

import jsonschema_rs
import pytest

from backend.extensions import db
from backend.models import Task
from task_common import protocol as p
from task_common import protocol_v1 as v1

CONTRACT_ROUTES = [
    ("post", "/api/tasks"),
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{task_id}"),
    ("post", "/api/tasks/{task_id}/cancel"),
    ("get", "/api/tasks/{task_id}/log"),
    ("get", "/api/tasks/{task_id}/log/raw"),
    ("get", "/api/templates"),
    ("post", "/api/templates"),
    ("get", "/api/agents"),
    ("get", "/api/agents/{agent_id}"),
    ("post", "/api/agents/{agent_id}/drain"),
    ("post", "/api/agents/{agent_id}/resume"),
    ("delete", "/api/agents/{agent_id}"),
    ("get", "/api/health"),
    ("post", p.REGISTER_MAIN_PATH),
    ("post", p.MAIN_HEARTBEAT_PATH),
    ("post", p.REGISTER_SUB_PATH),
    ("post", p.SUB_HEARTBEAT_PATH),
    ("post", v1.SUB_HEARTBEAT_V1_PATH),
    ("post", v1.SUB_OUTPUT_V1_PATH),
]


@pytest.fixture
def spec(app) -> dict:
    resp = app.test_client().get("/api/openapi.json")
    assert resp.status_code == 200 and resp.content_type.startswith("application/json")
    return resp.get_json()


@pytest.mark.parametrize("method, path", CONTRACT_ROUTES, ids=[f"{m.upper()} {r}" for m, r in CONTRACT_ROUTES])
def test_openapi_lists_contract_route(spec, method, path):
    assert method in spec["paths"].get(path, {}), sorted(spec["paths"])


def test_openapi_describes_the_task_create_body_and_list_query(spec):
    create = spec["paths"]["/api/tasks"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = spec["components"]["schemas"][ref]["properties"]
    assert {"name", "template_type", "script_content", "priority", "cpu_cores", "gpu_count", "gpu_memory",
            "depends_on"} <= set(fields)
    assert set(spec["components"]["schemas"][ref]["required"]) == {"name", "template_type", "script_content"}
    params = {prm["name"] for prm in spec["paths"]["/api/tasks"]["get"]["parameters"]}
    assert {"status", "name", "template_type", "script", "page", "page_size"} <= params
    assert "201" in create["responses"]


def test_openapi_has_no_delete_route_for_tasks(spec):
    assert not any("delete" in ops for path, ops in spec["paths"].items() if path.startswith("/api/tasks"))


def test_swagger_ui_serves_the_api_document(app):
    """A newcomer can browse the API: /api/swagger is Swagger UI, pointed at /api/openapi.json."""
    client = app.test_client()
    page = client.get("/api/swagger")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "openapi.json" in page.get_data(as_text=True)
    assert client.get("/api/swagger/js/swagger-ui-bundle.js").status_code == 200


# -- every answer has a schema, and the answers are what the document says --------------------------

BINARY_ANSWERS = {("get", "/api/tasks/{task_id}/log/raw")}  # the stored bytes, a download
RAW_REQUEST_BODIES = {("post", p.SUB_HEARTBEAT_PATH), ("post", v1.SUB_OUTPUT_V1_PATH)}  # the task's output
PROTOCOL_REPLIES = {p.REGISTER_MAIN_PATH: p.RegisterMainReply, p.MAIN_HEARTBEAT_PATH: p.MainHeartbeatReply,
                    p.REGISTER_SUB_PATH: p.RegisterSubReply, p.SUB_HEARTBEAT_PATH: p.SubHeartbeatReply,
                    v1.SUB_HEARTBEAT_V1_PATH: p.SubHeartbeatReply, v1.SUB_OUTPUT_V1_PATH: p.SubHeartbeatReply}


def operations(spec: dict):
    for path, ops in sorted(spec["paths"].items()):
        for method, operation in sorted(ops.items()):
            yield method, path, operation


def json_schema(message: dict) -> dict | None:
    return message.get("content", {}).get("application/json", {}).get("schema")


def test_every_2xx_answer_has_a_json_schema(spec):
    missing = []
    for method, path, operation in operations(spec):
        ok = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        if not ok:
            missing.append(f"{method.upper()} {path}: no 2xx answer")
        for status, response in ok.items():
            if (method, path) in BINARY_ANSWERS:
                assert response["content"]["text/plain"]["schema"] == {"type": "string", "format": "binary"}
            elif status == "204":
                assert "content" not in response, f"{method.upper()} {path}"
            elif json_schema(response) is None:
                missing.append(f"{method.upper()} {path}: {status} has no JSON schema")
    assert not missing, "\n".join(missing)


def test_every_request_body_has_a_json_schema(spec):
    for method, path, operation in operations(spec):
        if "requestBody" in operation and (method, path) not in RAW_REQUEST_BODIES:
            assert json_schema(operation["requestBody"]) is not None, f"{method.upper()} {path}"
    for method, path in RAW_REQUEST_BODIES:
        assert list(spec["paths"][path][method]["requestBody"]["content"]) == [p.OUTPUT_CONTENT_TYPE]


def test_every_error_answer_is_the_one_error_shape(spec):
    """400 and 401 on every route (a token may be configured), 404/409/... where they can happen."""
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for method, path, operation in operations(spec):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert {"400", "401"} <= set(errors), f"{method.upper()} {path}"
        for status, response in errors.items():
            assert json_schema(response) == error_ref, f"{method.upper()} {path} {status}"
    assert "ValidationErrorModel" not in spec["components"]["schemas"]


@pytest.mark.parametrize("path, reply", sorted(PROTOCOL_REPLIES.items()))
def test_protocol_routes_answer_the_protocol_replies(spec, path, reply):
    schema = json_schema(spec["paths"][path]["post"]["responses"]["200"])
    assert schema == {"$ref": f"#/components/schemas/{reply.__name__}"}


class Recorder:
    """Calls the in-process app and checks each JSON answer against the document's schema for it."""

    def __init__(self, client, spec: dict):
        self.client, self.spec, self.seen = client, spec, set()

    def __call__(self, method: str, template: str, status: int, **kwargs):
        params = {k: kwargs.pop(k) for k in list(kwargs) if k.endswith("_id")}
        resp = self.client.open(template.format(**params), method=method.upper(), **kwargs)
        assert resp.status_code == status, f"{method.upper()} {template}: {resp.get_data(as_text=True)[:300]}"
        self.seen.add((method, template))
        if resp.mimetype == "application/json":
            self.check(method, template, status, resp.get_json())
        return resp.get_json(silent=True)

    def check(self, method: str, template: str, status: int, body) -> None:
        schema = json_schema(self.spec["paths"][template][method]["responses"][str(status)])
        validator = jsonschema_rs.validator_for({"components": self.spec["components"], **schema})
        problems = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
        assert not problems, f"{method.upper()} {template} {status}:\n" + "\n".join(problems)


def drive_agent_protocol(call: Recorder, task_id: int) -> tuple[str, str]:
    """A main agent registers and is handed the task; its sub-agent reports output. (main id, sub id)"""
    main_id = call("post", p.REGISTER_MAIN_PATH, 200, json=p.RegisterMain(
        name="box", cpu_cores=4, gpus=[p.GpuInfo(index=0, name="Sim", memory_total=1024)]).to_dict())["agent_id"]
    beat = call("post", p.MAIN_HEARTBEAT_PATH, 200, json=p.MainHeartbeat(agent_id=main_id, cpu_cores=4).to_dict())
    assert [a["task_id"] for a in beat["start"]] == [task_id]
    sub_id = f"sub-{task_id}"
    call("post", p.REGISTER_SUB_PATH, 200, json=p.RegisterSub(
        sub_agent_id=sub_id, main_agent_id=main_id, task_id=task_id).to_dict())
    call("post", p.SUB_HEARTBEAT_PATH, 200, data=b"hi\n", content_type=p.OUTPUT_CONTENT_TYPE,
         query_string=p.SubHeartbeat(sub_agent_id=sub_id, task_id=task_id, offset=0, gpus=[
             p.ProcessGpuUsage(index=0, memory_used=10, utilization=5.0)]).to_dict())
    call("post", v1.SUB_HEARTBEAT_V1_PATH, 200, json=v1.SubHeartbeatV1(
        sub_agent_id=sub_id, task_id=task_id, chunks=[v1.OutputChunk.from_bytes(3, b"v1\n")]).to_dict())
    call("post", v1.SUB_OUTPUT_V1_PATH, 200, data=b"more\n", content_type=p.OUTPUT_CONTENT_TYPE,
         query_string=v1.OutputUploadV1(sub_agent_id=sub_id, task_id=task_id, offset=6).to_dict())
    return main_id, sub_id


def test_every_answer_matches_the_document(app, spec):
    """Each route once (and its errors), in-process: every JSON answer validates against its schema."""
    call = Recorder(app.test_client(), spec)
    task = {"name": "t", "template_type": "custom", "script_content": "echo hi"}
    template_id = call("post", "/api/templates", 201, json={"name": "tpl", "script_content": "x"})["id"]
    call("post", "/api/templates", 409, json={"name": "tpl", "script_content": "x"})
    call("get", "/api/templates", 200)
    call("get", "/api/templates/{template_id}", 200, template_id=template_id)
    call("put", "/api/templates/{template_id}", 200, template_id=template_id, json={"script_content": "y"})
    call("delete", "/api/templates/{template_id}", 204, template_id=template_id)
    task_id = call("post", "/api/tasks", 201, json=task)["id"]
    call("post", "/api/tasks", 400, json={})
    main_id, sub_id = drive_agent_protocol(call, task_id)
    call("get", "/api/tasks", 200, query_string={"status": "running"})
    call("get", "/api/tasks/{task_id}", 200, task_id=task_id)
    call("get", "/api/tasks/{task_id}", 404, task_id=999)
    call("get", "/api/tasks/{task_id}/log", 200, task_id=task_id, query_string={"tail": 4})
    call("get", "/api/tasks/{task_id}/log/raw", 200, task_id=task_id)
    call("get", "/api/tasks/{task_id}/usage", 200, task_id=task_id)
    call("get", "/api/tasks/{task_id}/graph", 200, task_id=task_id)
    call("get", "/api/tasks/stats", 200)
    call("get", "/api/tasks/{task_id}/retry-preview", 409, task_id=task_id)
    call("post", "/api/tasks/{task_id}/retry", 409, task_id=task_id, json={})
    call("post", "/api/tasks/sweep", 201, json={**task, "script_content": "echo {{x}}", "params": {"x": ["1", "2"]}})
    call("post", "/api/tasks/sweep", 400, json={**task, "params": {"x": ["1"]}})
    call("get", "/api/agents", 200, query_string={"sub_agents": "all"})
    call("get", "/api/agents/{agent_id}", 200, agent_id=main_id)
    call("get", "/api/agents/{agent_id}", 200, agent_id=sub_id)
    call("post", "/api/agents/{agent_id}/drain", 200, agent_id=main_id)
    call("post", "/api/agents/{agent_id}/resume", 200, agent_id=main_id)
    call("delete", "/api/agents/{agent_id}", 409, agent_id=main_id)
    call("post", "/api/tasks/{task_id}/cancel", 200, task_id=task_id)
    call("get", "/api/tasks/{task_id}/retry-preview", 200, task_id=task_id)
    call("post", "/api/tasks/{task_id}/retry", 201, task_id=task_id, json={"priority": 1})
    call("get", "/api/health", 200)
    assert call.seen == {(m, path) for m, path, _ in operations(spec)}


def test_task_json_is_the_rows_fields_plus_log_size_and_unreachable_since(app):
    """The model adds and drops nothing: the answer is the row's to_dict() as it always was (with the
    progress not written yet, services/task_readings.py, in place of the stored one)."""
    created = app.test_client().post("/api/tasks", json={"name": "t", "template_type": "c", "script_content": "true"})
    with app.app_context():
        expected = {**db.session.get(Task, created.get_json()["id"]).to_dict(),
                    "log_size": 0, "agent_unreachable_since": None}
    assert created.get_json() == expected
    assert created.get_data(as_text=True) == json.dumps(expected, sort_keys=True, separators=(",", ":")) + "\n"
