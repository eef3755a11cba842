"""The task lifecycle: the ALLOWED transition table, dependencies unblocking, failure and cancel
cascades, and that tasks are never deleted. In-process app, services called directly."""
from __future__ import annotations

import itertools

import pytest

from backend.extensions import db
from backend.models import Task, TaskStatus
from backend.services import tasks as task_service
from backend.services.errors import Conflict
from backend.services.unit_of_work import unit_of_work

S = TaskStatus
# The lifecycle as the contract describes it; backend/services/tasks.py ALLOWED must say exactly this.
EXPECTED_ALLOWED = {
    S.BLOCKED: {S.WAITING, S.FAILED, S.CANCELED},
    S.WAITING: {S.RUNNING, S.CANCELED},
    S.RUNNING: {S.COMPLETED, S.FAILED, S.CANCELED, S.WAITING},
    S.COMPLETED: set(),
    S.FAILED: set(),
    S.CANCELED: set(),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One in-process app for the module (each test makes its own tasks); no background jobs."""
    from backend.factory import create_app

    return create_app({"TESTING": True, "DATA_DIR": str(tmp_path_factory.mktemp("transitions")),
                       "RUN_BACKGROUND_JOBS": False})


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


def make_task(name: str = "t", depends_on=(), **fields) -> Task:
    return task_service.create_task(name=name, template_type="custom", script_content="echo hi",
                                    depends_on=list(depends_on), **fields)


def status_of(task_id: int) -> Task:
    db.session.expire_all()
    return task_service.get_task_by_id(task_id)


def set_status(task_id: int, status: TaskStatus) -> None:
    """Put a task straight into a status (test set-up only, bypassing transition())."""
    with unit_of_work():
        task_service.get_task_by_id(task_id).status = status.value


def move(task_id: int, new: TaskStatus, reason: str | None = None) -> None:
    with unit_of_work():
        task_service.transition(task_service.get_task_by_id(task_id), new, reason)


def run_and_end(task_id: int, returncode: int) -> None:
    """What a hand-over and a sub-agent's final heartbeat do to a waiting task."""
    move(task_id, S.RUNNING)
    with unit_of_work():
        task_service.finish_task(task_service.get_task_by_id(task_id), returncode)


def test_allowed_table_is_the_contract_lifecycle():
    assert {old: set(new) for old, new in task_service.ALLOWED.items() if new} == \
        {old: new for old, new in EXPECTED_ALLOWED.items() if new}


@pytest.mark.parametrize("old, new", list(itertools.product(S, S)), ids=lambda s: s.value)
def test_transition_follows_allowed_table(ctx, old, new):
    task = make_task()
    set_status(task.id, old)
    if new in EXPECTED_ALLOWED[old]:
        move(task.id, new, "because")
        after = status_of(task.id)
        assert after.status == new.value and after.status_reason == "because"
    else:
        with pytest.raises(Conflict) as err:
            move(task.id, new)
        assert err.value.code == "invalid_transition" and err.value.status == 409
        assert status_of(task.id).status == old.value  # the refused change rolled back


def test_transition_stamps_start_and_end_times(ctx):
    task = make_task()
    move(task.id, S.RUNNING)
    running = status_of(task.id)
    assert running.start_time is not None and running.end_time is None
    assert running.execution_time() is not None
    with unit_of_work():
        task_service.finish_task(task_service.get_task_by_id(task.id), 0)
    done = status_of(task.id)
    assert done.status == "completed" and done.exit_code == 0 and done.status_reason is None
    assert done.end_time >= done.start_time
    assert done.to_dict()["execution_time"] >= 0
    assert done.to_dict()["end_time"].endswith("+00:00")


def test_task_canceled_before_running_has_end_but_no_start_time(ctx):
    task = make_task()
    with unit_of_work():
        task_service.cancel_task(task.id)
    canceled = status_of(task.id)
    assert canceled.status == "canceled" and canceled.status_reason
    assert canceled.start_time is None and canceled.end_time is not None and canceled.execution_time() is None


@pytest.mark.parametrize("returncode, status, reason", [
    (0, "completed", None),
    (1, "failed", "exit code 1"),
    (137, "failed", "exit code 137 (killed by SIGKILL)"),
    (-15, "failed", "killed by SIGTERM"),
])
def test_returncode_decides_outcome_and_reason(ctx, returncode, status, reason):
    task = make_task()
    run_and_end(task.id, returncode)
    ended = status_of(task.id)
    assert (ended.status, ended.exit_code, ended.status_reason) == (status, returncode, reason)


def test_running_back_to_waiting_clears_its_placement(ctx):
    task = make_task()
    move(task.id, S.RUNNING)
    with unit_of_work():
        t = task_service.get_task_by_id(task.id)
        t.agent_id, t.sub_agent_id, t.gpu_ids, t.holds_resources = "agent-x", None, [0, 1], True
    move(task.id, S.WAITING, "agent did not start it")
    back = status_of(task.id)
    assert back.status == "waiting" and back.agent_id is None and back.gpu_ids == []
    assert back.holds_resources is False and back.start_time is None


# --- dependencies ---------------------------------------------------------------------------------

def test_task_with_unfinished_dependency_is_blocked_naming_it(ctx):
    dep = make_task("dep")
    task = make_task("child", depends_on=[dep.id])
    assert task.status == "blocked" and str(dep.id) in task.status_reason


def test_task_whose_dependencies_all_completed_is_waiting_at_once(ctx):
    dep = make_task("dep")
    run_and_end(dep.id, 0)
    assert make_task("child", depends_on=[dep.id]).status == "waiting"


def test_blocked_task_waits_until_every_dependency_completed(ctx):
    a, b = make_task("a"), make_task("b")
    child = make_task("child", depends_on=[a.id, b.id])
    run_and_end(a.id, 0)
    assert status_of(child.id).status == "blocked"
    run_and_end(b.id, 0)
    after = status_of(child.id)
    assert after.status == "waiting" and after.status_reason is None


def test_failure_cascades_to_every_transitive_dependent_naming_its_dependency(ctx):
    root = make_task("root")
    other = make_task("other")
    run_and_end(other.id, 0)
    child = make_task("child", depends_on=[root.id])
    grandchild = make_task("grandchild", depends_on=[child.id, other.id])
    sibling = make_task("sibling", depends_on=[root.id])
    great = make_task("great", depends_on=[grandchild.id, sibling.id])  # a diamond
    unrelated = make_task("unrelated")
    run_and_end(root.id, 2)
    assert status_of(root.id).status == "failed"
    for task, cause in ((child, root), (sibling, root), (grandchild, child)):
        failed = status_of(task.id)
        assert failed.status == "failed", task.name
        assert failed.status_reason == f"dependency {cause.id} failed"
        assert failed.start_time is None and failed.end_time is not None
    assert status_of(great.id).status == "failed"
    assert status_of(great.id).status_reason in (f"dependency {grandchild.id} failed",
                                                 f"dependency {sibling.id} failed")
    assert status_of(unrelated.id).status == "waiting"
    assert status_of(other.id).status == "completed"


def test_cancel_cascades_failure_to_every_transitive_dependent(ctx, app):
    root = make_task("root")
    child = make_task("child", depends_on=[root.id])
    grandchild = make_task("grandchild", depends_on=[child.id])
    resp = app.test_client().post(f"/api/tasks/{root.id}/cancel")
    assert resp.status_code == 200 and resp.get_json()["status"] == "canceled"
    assert status_of(child.id).status == "failed"
    assert status_of(child.id).status_reason == f"dependency {root.id} was canceled"
    assert status_of(grandchild.id).status_reason == f"dependency {child.id} failed"


def test_cancel_of_a_blocked_task_cancels_it_and_fails_its_dependents(ctx, app):
    root = make_task("root")
    child = make_task("child", depends_on=[root.id])
    grandchild = make_task("grandchild", depends_on=[child.id])
    resp = app.test_client().post(f"/api/tasks/{child.id}/cancel")
    assert resp.status_code == 200 and resp.get_json()["status"] == "canceled"
    assert status_of(root.id).status == "waiting"
    assert status_of(grandchild.id).status == "failed"
    assert status_of(grandchild.id).status_reason == f"dependency {child.id} was canceled"


def test_cancel_of_a_running_task_ends_it(ctx, app):
    task = make_task()
    move(task.id, S.RUNNING)
    resp = app.test_client().post(f"/api/tasks/{task.id}/cancel")
    assert resp.status_code == 200
    canceled = status_of(task.id)
    assert canceled.status == "canceled" and canceled.start_time is not None and canceled.end_time is not None


@pytest.mark.parametrize("final", [S.COMPLETED, S.FAILED, S.CANCELED])
def test_cancel_of_a_finished_task_is_refused_and_changes_nothing(ctx, app, final):
    task = make_task()
    set_status(task.id, final)
    resp = app.test_client().post(f"/api/tasks/{task.id}/cancel")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "task_finished"
    assert status_of(task.id).status == final.value


def test_tasks_are_never_deleted(ctx, app):
    task = make_task()
    client = app.test_client()
    assert client.delete(f"/api/tasks/{task.id}").status_code == 405
    assert client.delete("/api/tasks").status_code == 405
    task_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/tasks")]
    assert task_rules and not any("DELETE" in r.methods for r in task_rules)
    run_and_end(task.id, 1)
    assert client.get(f"/api/tasks/{task.id}").status_code == 200
