"""/api/openapi.json describes every route of the contract (and the agent protocol)."""
from __future__ import annotations

import pytest

from task_common import protocol as p

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
    ("post", p.SUB_OUTPUT_PATH),
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
