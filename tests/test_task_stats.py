"""GET /api/tasks/stats: how many tasks are in each status, for the tasks page's overview.

A server of its own with no agent, so the counts are exactly the tasks made here: waiting ones stay waiting,
a cancel makes canceled and cascades to its dependents as failed."""
from __future__ import annotations

import pytest

from tests.conftest import running_server
from tests.helpers import Api

STATUSES = {"blocked", "waiting", "running", "completed", "failed", "canceled"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    for proc in running_server(tmp_path_factory, "stats-data"):
        yield Api(proc.url)


def stats(api: Api) -> dict:
    resp = api.get("/api/tasks/stats")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"counts"}, body
    return body["counts"]


def test_an_empty_server_counts_zero_in_every_status(api: Api):
    assert stats(api) == {status: 0 for status in STATUSES}


def test_counts_follow_creates_cancels_and_cascades(api: Api):
    first = api.create_task("echo a", name="stats-a")
    second = api.create_task("echo b", name="stats-b")
    blocked = api.create_task("echo c", name="stats-c", depends_on=[first["id"]])
    after_blocked = api.create_task("echo d", name="stats-d", depends_on=[blocked["id"]])
    counts = stats(api)
    assert counts["waiting"] == 2 and counts["blocked"] == 2, counts

    assert api.post(f"/api/tasks/{first['id']}/cancel").status_code == 200  # c and d fail with it
    assert api.post(f"/api/tasks/{second['id']}/cancel").status_code == 200
    counts = stats(api)
    assert counts == {**{status: 0 for status in STATUSES}, "canceled": 2, "failed": 2}, counts
    assert {api.task(t["id"])["status"] for t in (blocked, after_blocked)} == {"failed"}


def test_the_counts_are_in_the_openapi_document(api: Api):
    doc = api.get("/api/openapi.json").json()
    operation = doc["paths"]["/api/tasks/stats"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/TaskStatsOut"), schema
    assert "counts" in doc["components"]["schemas"]["TaskStatsOut"]["required"]
