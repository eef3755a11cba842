"""Task use cases and the task lifecycle. Every status change goes through transition()."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

import structlog
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from backend.extensions import db
from backend.models import FINISHED_STATUSES, Task, TaskDependency, TaskStatus
from backend.services import logs, notifications, placements, signals
from backend.services.database import contains_text
from backend.services.errors import Conflict, InvalidInput, NotFound, TooLarge
from backend.services.unit_of_work import after_commit, unit_of_work
from task_common.protocol import describe_returncode
from backend.utils.time import utcnow

log = structlog.get_logger()

S = TaskStatus
ALLOWED = {
    S.BLOCKED: {S.WAITING, S.FAILED, S.CANCELED},
    S.WAITING: {S.RUNNING, S.CANCELED},
    # RUNNING -> WAITING only for a hand-over the agent provably never started (it said so).
    S.RUNNING: {S.COMPLETED, S.FAILED, S.CANCELED, S.WAITING},
}


def transition(task: Task, new: TaskStatus, reason: Optional[str] = None) -> None:
    """The only place a task's status changes: checks ALLOWED, stamps times, logs, cascades."""
    old = task.status_enum
    if new not in ALLOWED.get(old, set()):
        raise Conflict("invalid_transition", f"Task {task.id} cannot go from {old.value} to {new.value}.")
    task.status = new.value
    task.status_reason = reason
    now = utcnow()
    if new is S.RUNNING:
        task.start_time, task.end_time = now, None
    elif new is S.WAITING:
        placements.withdraw(task)
        task.start_time = None
    elif new.is_finished:
        task.end_time = now
        if old is not S.RUNNING:
            task.start_time = None
        notifications.task_finished(task)  # sent once this commits
    log.info("task_status_changed", task_id=task.id, old=old.value, new=new.value, reason=reason)
    topic = signals.task_topic(task.id)
    after_commit(lambda: signals.notify(topic))
    if new in (S.WAITING,) or new.is_finished:
        after_commit(lambda: signals.notify(signals.WORK))
    if new is S.COMPLETED:
        _unblock_dependents(task)
    elif new in (S.FAILED, S.CANCELED):
        _fail_dependents(task, new)


def note_running(task: Task, reason: Optional[str]) -> None:
    """A running task's status_reason, for people: why it does not run yet where its agent put it
    (a Slurm job pending); None clears it. Its status stays running."""
    if task.status_reason != reason:
        task.status_reason = reason
        log.info("task_status_noted", task_id=task.id, status=task.status, reason=reason)


def dependents_of(task_id: int) -> list[Task]:
    # the ids first: most tasks have no dependents, and loading none as objects still cost ~0.5 ms
    ids = list(db.session.scalars(select(TaskDependency.task_id).where(TaskDependency.depends_on_id == task_id)))
    return list(db.session.scalars(select(Task).where(Task.id.in_(ids)))) if ids else []


def _unblock_dependents(task: Task) -> None:
    for dependent in dependents_of(task.id):
        if dependent.status != S.BLOCKED.value:
            continue
        pending = db.session.scalar(
            select(func.count()).select_from(TaskDependency).join(Task, Task.id == TaskDependency.depends_on_id)
            .where(TaskDependency.task_id == dependent.id, Task.status != S.COMPLETED.value))
        if pending == 0:
            transition(dependent, S.WAITING, None)


CASCADE_REASON = re.compile(r"dependency (\d+) (?:failed|was canceled)")


def _fail_dependents(task: Task, cause: TaskStatus) -> None:
    """Failure or cancel cascades: each blocked dependent fails, naming this task; theirs follow.
    The reason is also how a retry finds the cascade again (cascade_cause)."""
    what = "failed" if cause is S.FAILED else "was canceled"
    for dependent in dependents_of(task.id):
        if dependent.status == S.BLOCKED.value:
            transition(dependent, S.FAILED, f"dependency {task.id} {what}")


def cascade_cause(task: Task) -> Optional[int]:
    """The task whose failure or cancel failed this one before it ever started, else None."""
    if task.status != S.FAILED.value or task.start_time is not None or not task.status_reason:
        return None
    match = CASCADE_REASON.fullmatch(task.status_reason)
    return int(match.group(1)) if match else None


def create_task(*, depends_on: Iterable[int] = (), **fields) -> Task:
    """Queue one task. `fields`: the Task columns a client sets (api/tasks.TaskCreate), checked there."""
    depends_on = list(depends_on)
    with unit_of_work(keep_loaded=True):  # the caller answers with the task: no reload after the commit
        task = new_task(fields, load_dependencies(depends_on))
    return task


def new_task(fields: dict, deps: list[Task]) -> Task:
    """Add one task after `deps` (blocked until they completed) to this unit of work; logs it."""
    limit = current_app.config["MAX_SCRIPT_BYTES"]
    if len(fields["script_content"].encode("utf-8")) > limit:
        raise TooLarge("script_too_large", f"script_content is larger than the limit of {limit} bytes.")
    task = Task(**fields, created_time=utcnow(), gpu_ids=[])
    task.dependency_links = [TaskDependency(depends_on_id=d.id) for d in deps]
    pending = [d.id for d in deps if d.status != S.COMPLETED.value]
    task.status = (S.BLOCKED if pending else S.WAITING).value
    task.status_reason = "waiting for dependencies " + ", ".join(map(str, pending)) if pending else None
    db.session.add(task)
    db.session.flush()
    set_committed_value(task, "dependent_links", [])  # new: nothing depends on it yet (no query to say so)
    task.log_file = logs.log_path(task.id)
    log.info("task_created", task_id=task.id, priority=task.priority, status=task.status,
             depends_on=[d.id for d in deps], cpu_cores=task.cpu_cores, gpu_count=task.gpu_count,
             gpu_memory=task.gpu_memory, retry_of=task.retry_of)
    if not pending:
        after_commit(lambda: signals.notify(signals.WORK))
    return task


def load_dependencies(ids: list[int]) -> list[Task]:
    if len(set(ids)) != len(ids):
        raise InvalidInput("duplicate_dependency", "depends_on lists the same task more than once.")
    deps = list(db.session.scalars(select(Task).where(Task.id.in_(ids)))) if ids else []
    missing = sorted(set(ids) - {d.id for d in deps})
    if missing:
        raise InvalidInput("unknown_dependency", f"depends_on names tasks that do not exist: {missing}.")
    dead = sorted(d.id for d in deps if d.status in (S.FAILED.value, S.CANCELED.value))
    if dead:
        raise InvalidInput("dependency_failed", f"depends_on names tasks that failed or were canceled: {dead}.")
    return deps


def get_task_by_id(task_id: int) -> Task:
    task = db.session.get(Task, task_id)
    if task is None:
        raise NotFound("task_not_found", f"Task {task_id} does not exist.")
    return task


@dataclass(frozen=True)
class LogWatch:
    """What a live view of a task's log needs to know about the task now."""
    status: str
    exit_code: Optional[int]
    status_reason: Optional[str]
    is_output_complete: bool  # finished, and its process gone: the stored output is all there will be


def get_log_watch(task_id: int) -> LogWatch:
    """The task as a live log view sees it, read in a transaction that ends at once (a watcher waits
    between reads and must never hold one open). A canceled task's process may still print until its
    agent confirms the kill, so its output is complete only once it holds no room (placements)."""
    task = get_task_by_id(task_id)
    watch = LogWatch(task.status, task.exit_code, task.status_reason,
                     is_output_complete=task.status_enum.is_finished and not task.holds_resources)
    db.session.rollback()
    return watch


def get_task_in_page(*, page: int, page_size: int, statuses: Optional[list[str]] = None,
                     name: Optional[str] = None, template_type: Optional[str] = None,
                     script: Optional[str] = None) -> tuple[list[Task], int]:
    """Newest first, filtered; returns (tasks on the page, total matching)."""
    if any("\0" in text for text in (name, template_type, script) if text):
        return [], 0  # no stored text holds a NUL (the api refuses them), and PostgreSQL's cannot compare one
    query = select(Task)
    if statuses:
        query = query.where(Task.status.in_(statuses))
    if name:
        query = query.where(func.lower(Task.name).contains(name.lower(), autoescape=True))
    if template_type:
        query = query.where(Task.template_type == template_type)
    if script:
        query = query.where(contains_text(Task.script_content, script))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    # Page by id first (answered from ix_tasks_list without reading rows), then load just that page.
    ids = list(db.session.scalars(query.with_only_columns(Task.id).order_by(Task.id.desc())
                                  .offset((page - 1) * page_size).limit(page_size)))
    items = db.session.scalars(select(Task).where(Task.id.in_(ids)).order_by(Task.id.desc())
                               .options(selectinload(Task.dependent_links))) if ids else []
    return list(items), total


def cancel_task(task_id: int) -> Task:
    """Cancel a blocked, waiting or running task; a running one is killed by its agent."""
    with unit_of_work():
        task = get_task_by_id(task_id)
        if task.status_enum in FINISHED_STATUSES:
            raise Conflict("task_finished", f"Task {task_id} already finished ({task.status}).")
        transition(task, S.CANCELED, "canceled by a user")
        placements.release_if_unacknowledged(task)  # a running one holds its room until its process is gone
    return task


def fail_task(task: Task, reason: str) -> None:
    """Fail a running task for a system reason (agent lost, log storage broken). Its room stays taken
    while its process may still run: the caller releases it (placements.release) when it knows it is gone."""
    if task.status_enum is S.RUNNING:
        transition(task, S.FAILED, reason)


def finish_task(task: Task, returncode: int) -> None:
    """Record how the script ended; the outcome and reason come from the protocol's one mapping."""
    task.exit_code = returncode
    placements.release(task)
    if task.status_enum is S.RUNNING:  # transition() tells the task's watchers and the waiting agents
        succeeded, reason = describe_returncode(returncode)
        transition(task, S.COMPLETED if succeeded else S.FAILED, reason or None)
    else:  # ended after a cancel or a failure: its room is free now, and its exit code is new
        topic = signals.task_topic(task.id)
        after_commit(lambda: (signals.notify(signals.WORK), signals.notify(topic)))
