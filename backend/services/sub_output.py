"""Task output from sub-agents: stored only for the task's own sub-agent, and a disk that refuses it
fails the task.

Output arrives in the body of a sub-agent's heartbeat (services/sub_heartbeats.py), and from
protocol 1 sub-agents also base64 in a JSON heartbeat or as a raw upload; all of it is stored by
store(), so resends, overlaps and gaps behave the same (logs.append_task_log).
"""
from __future__ import annotations

from typing import Iterable

import structlog
from sqlalchemy import bindparam, select

from backend.extensions import db
from backend.models import Task
from backend.services import logs
from backend.services.raw_sql import RawStatement
from backend.services import tasks as task_service
from backend.services.errors import NotFound

log = structlog.get_logger()

_tasks = Task.__table__
_OWNER_AND_STATUS = RawStatement(select(_tasks.c.sub_agent_id, _tasks.c.status).where(_tasks.c.id == bindparam("task_id")))


def refuse_stranger(task_id: int, sub_agent_id: str) -> str:
    """The task's status, unless it is not this sub-agent's (NotFound). One statement on a bare pooled
    connection, no session: heartbeats are the server's most frequent requests (bench: fleet)."""
    pooled = db.engine.raw_connection()
    try:
        row = _OWNER_AND_STATUS.execute(pooled.driver_connection.cursor(), db.engine.dialect, {"task_id": task_id}) \
            .fetchone()
    finally:
        pooled.close()
    if row is None or row[0] != sub_agent_id:
        raise not_running(task_id, sub_agent_id)
    return row[1]


def not_running(task_id: int, sub_agent_id: str) -> NotFound:
    return NotFound("sub_agent_not_found", f"Sub-agent {sub_agent_id} is not running task {task_id}.")


def store(task_id: int, pieces: Iterable[tuple[int, bytes]]) -> tuple[int, str | None]:
    """Append (offset, raw) pieces in offset order: (stored size, None), or (stored size, why the disk refused)."""
    size = None
    try:
        for offset, raw in sorted(pieces, key=lambda piece: piece[0]):
            if raw:
                size = logs.append_task_log(task_id, offset, raw)
    except OSError as exc:
        return logs.log_size(task_id), f"{exc.strerror or exc} ({type(exc).__name__})"
    return (logs.log_size(task_id) if size is None else size), None


def fail_for_storage_error(task: Task, storage_error: str) -> None:
    """Inside a unit of work: the task gives up the rest of its output rather than wait for a broken disk."""
    log.error("log_write_failed", error=storage_error)
    task_service.fail_task(task, f"could not store the task's output on the server: {storage_error}")
