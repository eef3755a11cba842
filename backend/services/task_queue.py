"""The queue of waiting tasks: its one order, and the reads of it, built once from the table objects.

The order is priority (1 first), then id (first come, first served within a priority). The index
ix_tasks_queue (models/task.py) holds the waiting tasks in that order with the size columns, so the
reads below walk the index, not the rows; ix_tasks_coreless does the same for the tasks that need no
core, the rescan once an agent's cores are full (scheduler.py).
"""
from __future__ import annotations

import re

from sqlalchemy import Select, bindparam, literal_column, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ClauseElement

from backend.models import Task, TaskStatus
from backend.services.capacity import Request

_T = Task.__table__
ORDER = (_T.c.priority, _T.c.id)


def position(task: Request) -> tuple[int, int]:
    """The task's place in ORDER, for comparing two tasks in Python."""
    return task.priority, task.id


_WAITING = _T.c.status == TaskStatus.WAITING.value
_CORELESS_INDEX = "ix_tasks_coreless"


def head(limit: int) -> Select:
    """The first `limit` waiting tasks' sizes (id, priority, cpu_cores, gpu_count, gpu_memory), in order."""
    return (select(_T.c.id, _T.c.priority, _T.c.cpu_cores, _T.c.gpu_count, _T.c.gpu_memory)
            .where(_WAITING).order_by(*ORDER).limit(limit))


def candidates(*, free_cores: int, max_gpus: int, max_mib: int) -> Select:
    """Waiting tasks that could fit by count, in order."""
    return select(Task).where(_WAITING, Task.cpu_cores <= free_cores, Task.gpu_count <= max_gpus,
                              (Task.gpu_count == 0) | (Task.gpu_memory <= max_mib)).order_by(*ORDER)


# The tasks that need no core, with the partial index's own condition written as it is (cpu_cores = 0):
# SQLite uses a partial index only for that literal condition, and only when told (INDEXED BY). Every
# value is a named bindparam() or a literal, so that the SQL compiled once for SQLite keeps them all.
_ZERO = literal_column("0")
_CORELESS = (select(_T).where(_T.c.status == bindparam("status"), _T.c.cpu_cores == _ZERO,
                              _T.c.gpu_count <= bindparam("max_gpus"),
                              or_(_T.c.gpu_count == _ZERO, _T.c.gpu_memory <= bindparam("max_mib")))
             .order_by(*ORDER))
_coreless_by_dialect: dict[str, ClauseElement] = {}


def coreless_candidates(dialect: Dialect, *, max_gpus: int, max_mib: int) -> Select:
    """Waiting tasks that need no core and could fit by count, in order, read from ix_tasks_coreless."""
    if dialect.name not in _coreless_by_dialect:
        _coreless_by_dialect[dialect.name] = _with_sqlite_index(_CORELESS) if dialect.name == "sqlite" else _CORELESS
    return select(Task).from_statement(_coreless_by_dialect[dialect.name]).params(
        status=TaskStatus.WAITING.value, max_gpus=max_gpus, max_mib=max_mib)


def _with_sqlite_index(statement: Select) -> ClauseElement:
    """`statement` with SQLite's INDEXED BY after the table name, which SQLAlchemy cannot express:
    compiled once to SQL with named parameters, the clause put in, and the result made a text() again."""
    sql, found = re.subn(rf"\bFROM {_T.name}\b", f"FROM {_T.name} INDEXED BY {_CORELESS_INDEX}",
                         str(statement.compile(dialect=sqlite.dialect(paramstyle="named"))), count=1)
    if not found:
        raise RuntimeError(f"no FROM {_T.name} to put INDEXED BY after in {sql!r}")
    return text(sql).columns(*_T.c)
