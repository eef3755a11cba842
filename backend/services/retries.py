"""Retrying a failed or canceled task: a new task, and a new copy of every task that failed because of
it (its cascade, transitively), wired to each other in the same shape. The old records keep everything
and point at their copies (`retried_as`); each copy points back (`retry_of`). No retry is automatic."""
from __future__ import annotations

from dataclasses import dataclass

import structlog

from backend.extensions import db
from backend.models import Task, TaskStatus
from backend.services.errors import Conflict, InvalidInput
from backend.services.tasks import cascade_cause, dependents_of, get_task_by_id, new_task
from backend.services.unit_of_work import unit_of_work

log = structlog.get_logger()

RETRYABLE = frozenset({TaskStatus.FAILED.value, TaskStatus.CANCELED.value})
# What a copy takes from the task it copies (the create fields, less depends_on: rewired below).
COPIED = ("name", "template_type", "script_content", "priority", "cpu_cores", "gpu_count", "gpu_memory",
          "env", "work_dir", "time_limit_s", "notify")


@dataclass(frozen=True)
class RetryPlan:
    task: Task
    cascade: list[Task]  # oldest first: a task is always newer than what it depends on


def plan_retry(task_id: int) -> RetryPlan:
    """What a retry of `task_id` would re-create; Conflict when it may not be retried."""
    task = get_task_by_id(task_id)
    if task.retried_as is not None:
        raise Conflict("task_already_retried", f"Task {task.id} was already retried as task {task.retried_as}.")
    if task.status not in RETRYABLE:
        raise Conflict("task_not_retryable",
                       f"Task {task.id} is {task.status}; only a failed or canceled task can be retried.")
    return RetryPlan(task, _cascade(task))


def _cascade(root: Task) -> list[Task]:
    """The dependents that failed, never started, because `root` failed or was canceled, transitively;
    each one only once (a diamond), and none that was already retried on its own."""
    found: dict[int, Task] = {}
    frontier = [root]
    while frontier:
        cause = frontier.pop()
        for dependent in dependents_of(cause.id):
            if dependent.id not in found and dependent.retried_as is None and cascade_cause(dependent) == cause.id:
                found[dependent.id] = dependent
                frontier.append(dependent)
    return sorted(found.values(), key=lambda t: t.id)


def retry_task(task_id: int, overrides: dict) -> tuple[Task, list[Task]]:
    """Retry `task_id` with `overrides` (create fields) for it; its cascade is copied as it was.
    Returns (the new task, the new copies of its cascade, oldest first)."""
    with unit_of_work(keep_loaded=True):
        plan = plan_retry(task_id)
        copies: dict[int, Task] = {}
        task = _copy(plan.task, overrides, copies)
        dependents = [_copy(old, {}, copies) for old in plan.cascade]
        for new in (task, *dependents):  # new_task showed none; the copies made after them depend on them
            db.session.expire(new, ["dependent_links"])
    log.info("task_retried", task_id=task_id, new_task_id=task.id, copies={o: n.id for o, n in copies.items()})
    return task, dependents


def _copy(old: Task, overrides: dict, copies: dict[int, Task]) -> Task:
    fields = {name: getattr(old, name) for name in COPIED}
    fields.update((k, v) for k, v in overrides.items() if k != "depends_on")
    depends_on = overrides.get("depends_on", old.depends_on)
    if len(set(depends_on)) != len(depends_on):
        raise InvalidInput("duplicate_dependency", "depends_on lists the same task more than once.")
    task = new_task({**fields, "retry_of": old.id}, [_dependency(old, d, copies) for d in depends_on])
    old.retried_as = task.id
    copies[old.id] = task
    return task


def _dependency(old: Task, dep_id: int, copies: dict[int, Task]) -> Task:
    """What a copy of `old` depends on instead of `dep_id`: its copy in this retry, else the newest
    retry of it; a dependency that failed and was never retried cannot complete: Conflict."""
    if dep_id in copies:
        return copies[dep_id]
    dep = db.session.get(Task, dep_id)
    if dep is None:
        raise InvalidInput("unknown_dependency", f"depends_on names a task that does not exist: {dep_id}.")
    while dep.retried_as is not None:
        dep = get_task_by_id(dep.retried_as)
    if dep.status in RETRYABLE:
        raise Conflict("dependency_failed", f"Task {old.id} depends on task {dep.id}, which {dep.status}; "
                       f"retry task {dep.id} first.")
    return dep
