"""Task output from sub-agents: stored only for the task's own sub-agent, and a disk that refuses it
fails the task.

Output arrives two ways: OutputChunks inside a SubHeartbeat (heartbeats.py, small and frequent) and
raw uploads (store_output here, the bulk path without base64 or JSON). Both store through
store_chunks, so resends, overlaps and gaps behave the same (logs.append_task_log).
"""
from __future__ import annotations

from typing import Iterable

import structlog
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import Task, TaskStatus
from backend.services import agents as agent_service
from backend.services import logs
from backend.services import tasks as task_service
from backend.services.errors import NotFound
from backend.services.unit_of_work import unit_of_work
from task_common import protocol as p

log = structlog.get_logger()


def store_output(upload: p.OutputUpload, raw: bytes) -> p.OutputUploadReply:
    """Append the part of `raw` past the stored size; answer that size and whether the task should stop."""
    agent_service.check_protocol_version(upload.protocol_version, upload.sub_agent_id)
    structlog.contextvars.bind_contextvars(task_id=upload.task_id, sub_agent_id=upload.sub_agent_id)
    status = refuse_stranger(upload.task_id, upload.sub_agent_id)
    size, storage_error = store_chunks(upload.task_id, [(upload.offset, raw)])
    if storage_error:
        with unit_of_work():
            task = db.session.get(Task, upload.task_id, options=[lazyload(Task.dependency_links)])
            fail_for_storage_error(task, storage_error)
    return p.OutputUploadReply(log_size=size, cancel=bool(storage_error) or status != TaskStatus.RUNNING.value)


_OWNER_AND_STATUS_SQL = "SELECT sub_agent_id, status FROM tasks WHERE id = ?"  # columns of models/task.py


def refuse_stranger(task_id: int, sub_agent_id: str) -> str:
    """The task's status, unless it is not this sub-agent's (NotFound). One statement on a bare pooled
    connection, no session: output and heartbeats are the server's most frequent requests."""
    pooled = db.engine.raw_connection()
    try:
        row = pooled.driver_connection.execute(_OWNER_AND_STATUS_SQL, (task_id,)).fetchone()
    finally:
        pooled.close()
    if row is None or row[0] != sub_agent_id:
        raise not_running(task_id, sub_agent_id)
    return row[1]


def not_running(task_id: int, sub_agent_id: str) -> NotFound:
    return NotFound("sub_agent_not_found", f"Sub-agent {sub_agent_id} is not running task {task_id}.")


def store_chunks(task_id: int, chunks: Iterable[tuple[int, bytes]]) -> tuple[int, str | None]:
    """Append (offset, raw) pieces in offset order: (stored size, None), or (stored size, why the disk refused)."""
    size = None
    try:
        for offset, raw in sorted(chunks, key=lambda c: c[0]):
            size = logs.append_task_log(task_id, offset, raw)
    except OSError as exc:
        return logs.log_size(task_id), f"{exc.strerror or exc} ({type(exc).__name__})"
    return (logs.log_size(task_id) if size is None else size), None


def fail_for_storage_error(task: Task, storage_error: str) -> None:
    """Inside a unit of work: the task gives up the rest of its output rather than wait for a broken disk."""
    log.error("log_write_failed", error=storage_error)
    task_service.fail_task(task, f"could not store the task's output on the server: {storage_error}")
