"""Retry a failed chain and sweep parameters, against the real server and a real agent running bash."""
from __future__ import annotations

import pytest

from tests.helpers import wait_for


def _error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


def test_a_failed_chain_is_retried_with_an_override_and_runs_to_the_end(client, main_agent):
    a = client.create_task("sleep 1; echo a", name="a")  # b fails only once `other` below is canceled
    b = client.create_task("echo b-broken; exit 3", name="b", depends_on=[a["id"]], env={"STEP": "b"})
    c = client.create_task("echo c", name="c", depends_on=[b["id"]])
    d = client.create_task("echo d", name="d", depends_on=[b["id"], c["id"]])  # a diamond: c and d both after b
    other = client.create_task("echo other", name="other", depends_on=[b["id"]])
    assert client.post(f"/api/tasks/{other['id']}/cancel").status_code == 200  # canceled by a person: not b's cascade
    for task in (b, c, d):
        client.wait_status(task["id"], "failed")
    before = {t["id"]: client.task(t["id"]) for t in (a, b, c, d, other)}
    assert before[c["id"]]["status_reason"] == f"dependency {b['id']} failed"

    preview = client.get(f"/api/tasks/{b['id']}/retry-preview").json()
    assert preview["task"]["id"] == b["id"]
    assert [t["id"] for t in preview["dependents"]] == [c["id"], d["id"]]
    assert client.task(b["id"]) == before[b["id"]]  # a preview changes nothing

    resp = client.post(f"/api/tasks/{b['id']}/retry", json={"script_content": "echo b-fixed $STEP", "priority": 1})
    assert resp.status_code == 201, resp.text
    new_b, (new_c, new_d) = resp.json()["task"], resp.json()["dependents"]
    assert new_b["retry_of"] == b["id"] and new_b["priority"] == 1 and new_b["env"] == {"STEP": "b"}
    assert new_b["depends_on"] == [a["id"]] and new_b["script_content"] == "echo b-fixed $STEP"
    assert new_c["retry_of"] == c["id"] and new_c["depends_on"] == [new_b["id"]]
    assert new_d["retry_of"] == d["id"] and new_d["depends_on"] == sorted([new_b["id"], new_c["id"]])
    assert new_c["script_content"] == "echo c" and new_c["priority"] == c["priority"]
    assert new_b["dependents"] == sorted([new_c["id"], new_d["id"]]) and new_c["dependents"] == [new_d["id"]]

    for task in (new_b, new_c, new_d):
        client.wait_status(task["id"], "completed")
    assert client.log(new_b["id"]) == b"b-fixed b\n"
    assert client.log(new_d["id"]) == b"d\n"
    for old, new in ((b, new_b), (c, new_c), (d, new_d)):
        after = client.task(old["id"])
        assert after["retried_as"] == new["id"]
        assert {**after, "retried_as": None, "dependents": before[old["id"]]["dependents"]} == before[old["id"]]
    assert client.task(other["id"])["retried_as"] is None
    assert client.task(a["id"])["dependents"] == sorted([b["id"], new_b["id"]])
    assert client.task(new_b["id"])["dependents"] == sorted([new_c["id"], new_d["id"]])


def test_what_may_not_be_retried_is_refused_naming_why(client, main_agent):
    done = client.create_task("echo ok")
    failed = client.create_task("exit 1")
    running = client.create_task("sleep 30")
    client.wait_status(done["id"], "completed")
    client.wait_status(failed["id"], "failed")
    client.wait_status(running["id"], "running")
    for task_id in (done["id"], running["id"]):
        assert _error(client.post(f"/api/tasks/{task_id}/retry", json={}), 409)["code"] == "task_not_retryable"
        assert _error(client.get(f"/api/tasks/{task_id}/retry-preview"), 409)["code"] == "task_not_retryable"
    assert _error(client.post("/api/tasks/999999/retry", json={}), 404)["code"] == "task_not_found"
    assert _error(client.post(f"/api/tasks/{failed['id']}/retry", json={"name": None}), 400)
    assert _error(client.post(f"/api/tasks/{failed['id']}/retry", json={"env": {"TASK_ID": "1"}}), 400)

    again = client.post(f"/api/tasks/{failed['id']}/retry", json={"script_content": "echo again"}).json()["task"]
    error = _error(client.post(f"/api/tasks/{failed['id']}/retry", json={}), 409)
    assert error["code"] == "task_already_retried" and str(again["id"]) in error["message"]
    client.wait_status(again["id"], "completed")


def test_a_canceled_task_is_retried_and_a_dependency_that_failed_elsewhere_must_be_retried_first(client):
    upstream = client.create_task("exit 1", cpu_cores=10_000)  # never placed (no agent): cancel it below
    other = client.create_task("exit 1", cpu_cores=10_000)
    child = client.create_task("echo child", depends_on=[upstream["id"], other["id"]])
    client.post(f"/api/tasks/{other['id']}/cancel")  # child fails naming `other`, not `upstream`
    client.post(f"/api/tasks/{upstream['id']}/cancel")
    assert client.task(child["id"])["status_reason"] == f"dependency {other['id']} was canceled"
    assert client.get(f"/api/tasks/{upstream['id']}/retry-preview").json()["dependents"] == []
    error = _error(client.post(f"/api/tasks/{child['id']}/retry", json={}), 409)
    assert error["code"] == "dependency_failed" and f"retry task {upstream['id']} first" in error["message"]
    assert client.task(child["id"])["retried_as"] is None  # nothing half-made

    new_upstream = client.post(f"/api/tasks/{upstream['id']}/retry", json={"cpu_cores": 0}).json()["task"]
    client.post(f"/api/tasks/{other['id']}/retry", json={"cpu_cores": 0})
    new_other = client.task(other["id"])["retried_as"]
    new_child = client.task(child["id"])["retried_as"]  # `other`'s cascade: child, wired to the newest upstream
    assert client.task(new_child)["depends_on"] == sorted([new_upstream["id"], new_other])


def test_a_sweep_makes_one_task_per_combination_with_its_values(client, main_agent):
    body = {"name": "train", "template_type": "custom", "priority": 2, "env": {"BASE": "x"},
            "script_content": "echo lr={{lr}} bs={{ bs }} env=$lr/$bs/$BASE",
            "params": {"lr": ["1e-3", "3e-4", "1e-4"], "bs": ["32", "64"]}}
    resp = client.post("/api/tasks/sweep", json=body)
    assert resp.status_code == 201, resp.text
    items = resp.json()["items"]
    combos = [(lr, bs) for lr in ("1e-3", "3e-4", "1e-4") for bs in ("32", "64")]
    assert [t["name"] for t in items] == [f"train [lr={lr}, bs={bs}]" for lr, bs in combos]
    assert [t["env"] for t in items] == [{"BASE": "x", "lr": lr, "bs": bs} for lr, bs in combos]
    assert all(t["priority"] == 2 for t in items)
    for task, (lr, bs) in zip(items, combos):
        assert task["script_content"] == f"echo lr={lr} bs={bs} env=$lr/$bs/$BASE"
        client.wait_status(task["id"], "completed")
        assert client.log(task["id"]) == f"lr={lr} bs={bs} env={lr}/{bs}/x\n".encode()

    named = client.post("/api/tasks/sweep", json={**body, "name": "run-{{lr}}", "params": {"lr": ["a"], "bs": ["1"]}})
    assert [t["name"] for t in named.json()["items"]] == ["run-a"]


@pytest.mark.parametrize("change, code, words", [
    ({"params": {"lr": ["1"]}}, "sweep_missing_values", "{{bs}}"),
    ({"params": {"lr": ["1"], "bs": []}}, "sweep_missing_values", "{{bs}}"),
    ({"params": {"lr": ["1"], "bs": ["2"], "seed": ["3"]}}, "sweep_unused_params", "'seed'"),
    ({"params": {"lr": [str(i) for i in range(40)], "bs": [str(i) for i in range(26)]}}, "sweep_too_large", "1040"),
    ({"params": {"lr": ["1"], "TASK_ID": ["2"]}}, "invalid_input", "TASK_ID"),
    ({"env": {"CUDA_VISIBLE_DEVICES": "0"}}, "invalid_input", "CUDA_VISIBLE_DEVICES"),
])
def test_a_bad_sweep_is_refused_saying_which_and_makes_nothing(shared_client, change, code, words):
    before = shared_client.get("/api/tasks").json()["total"]
    body = {"name": "s", "template_type": "custom", "script_content": "echo {{lr}} {{bs}}",
            "params": {"lr": ["1"], "bs": ["2"]}, **change}
    error = _error(shared_client.post("/api/tasks/sweep", json=body), 400)
    assert error["code"] == code and words in error["message"] + str(error.get("details")), error
    assert shared_client.get("/api/tasks").json()["total"] == before


@pytest.mark.parametrize("fields, words", [
    ({"env": {"1BAD": "x"}}, "1BAD"), ({"env": {"A-B": "x"}}, "A-B"), ({"env": {"TASK_NAME": "x"}}, "TASK_NAME"),
    ({"env": {"CUDA_DEVICE_ORDER": "x"}}, "CUDA_DEVICE_ORDER"), ({"env": {"OK": 1}}, "OK"),
    ({"time_limit_s": -1}, "time_limit_s"), ({"work_dir": ""}, "work_dir"), ({"notify": ["not a url"]}, "not a url"),
])
def test_bad_run_settings_are_refused_on_create(shared_client, fields, words):
    resp = shared_client.post("/api/tasks", json={"name": "t", "template_type": "custom", "script_content": "echo", **fields})
    error = _error(resp, 400)
    assert words in error["message"] + str(error.get("details")), error


def test_run_settings_are_kept_and_shown(shared_client):
    fields = {"env": {"LR": "3e-4", "_X": ""}, "work_dir": "runs/a", "time_limit_s": 9000,
              "notify": ["https://example.invalid/hook", "tgram://token/chat"]}
    task = shared_client.create_task("echo", cpu_cores=10_000, **fields)
    assert {k: task[k] for k in fields} == fields
    assert {k: shared_client.task(task["id"])[k] for k in fields} == fields
    assert (task["retry_of"], task["retried_as"], task["dependents"]) == (None, None, [])
    wait_for(lambda: shared_client.post(f"/api/tasks/{task['id']}/cancel").status_code == 200)


def test_the_graph_of_a_task_holds_its_whole_chain_both_ways(shared_client):
    api = shared_client
    root = api.create_task("exit 0", cpu_cores=10_000)
    left = api.create_task("echo", depends_on=[root["id"]])
    right = api.create_task("echo", depends_on=[root["id"]])
    join = api.create_task("echo", depends_on=[left["id"], right["id"]])
    unrelated = api.create_task("echo", cpu_cores=10_000)
    graph = api.get(f"/api/tasks/{left['id']}/graph").json()
    assert [n["id"] for n in graph["nodes"]] == [root["id"], left["id"], join["id"]]  # ancestors and descendants
    assert graph["edges"] == [{"from": root["id"], "to": left["id"]}, {"from": left["id"], "to": join["id"]}]
    whole = api.get(f"/api/tasks/{root['id']}/graph").json()
    assert {n["id"] for n in whole["nodes"]} == {root["id"], left["id"], right["id"], join["id"]}
    assert len(whole["edges"]) == 4 and not whole["truncated"]
    assert whole["nodes"][0] == {"id": root["id"], "name": "t", "status": "waiting"}
    assert api.get(f"/api/tasks/{unrelated['id']}/graph").json()["edges"] == []
    assert api.get("/api/tasks/999999/graph").status_code == 404
