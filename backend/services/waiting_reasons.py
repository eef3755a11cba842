"""Why each waiting task waits, kept current in its status_reason, as Slurm's reason codes are:

  - "no online agent can run it (largest: 8 cores, 4 GPUs, 80 GiB per GPU)": it asks for more than
    any online main agent (not draining, disk fine) could ever hold; it goes away when one comes online
  - "waiting for resources: ...": first in line (or room is kept for it: services/reservations.py),
    it fits an agent but that agent's room is taken now
  - "waiting for priority: tasks ahead of it in the queue go first": every other waiting task

(A blocked task's reason names its dependencies: services/tasks.py.) The wording is stable, so a
task's row is written only when its reason really changes; and the whole queue is looked at only
when it or the agents changed (refresh, once per liveness tick), never per request.
"""
from __future__ import annotations

from typing import Optional

import structlog
from sqlalchemy import and_, false, func, or_, select, update

from backend.extensions import db
from backend.models import Agent, Task, TaskStatus
from backend.services import reservations, task_queue
from backend.services.capacity import Capacity, Request, whole_room
from backend.services.unit_of_work import unit_of_work

log = structlog.get_logger()

PRIORITY = "waiting for priority: tasks ahead of it in the queue go first"
_T = Task.__table__
_WAITING = _T.c.status == TaskStatus.WAITING.value
_last_seen: Optional[tuple] = None  # what the reasons were last written for
# A change is written one tick after it is first noticed: a task handed over within that tick (most,
# on an idle box) is never given a reason, and the write never competes with its dispatch (bench: dispatch).
_noticed = False


def refresh() -> int:
    """Bring every waiting task's reason up to date if the queue or the agents changed; return how many
    reasons changed. Not inside a unit of work."""
    global _last_seen, _noticed
    agents = list(db.session.execute(select(Agent.id, Agent.name, Agent.cpu_cores, Agent.gpu_info)
                                     .where(*reservations.ELIGIBLE)).all())
    targets = reservations.targets()
    seen = (db.session.execute(select(func.count(), func.min(_T.c.id), func.max(_T.c.id)).where(_WAITING)).one(),
            tuple((a.id, a.cpu_cores, len(a.gpu_info or [])) for a in agents), tuple(sorted(targets.items())))
    db.session.rollback()  # a read: no transaction left open while writing below
    if seen == _last_seen:
        return 0
    if not _noticed or seen[0][0] == 0:  # first notice, or nothing waits: nothing to write
        _noticed, _last_seen = bool(seen[0][0]), (None if seen[0][0] else seen)
        return 0
    _noticed = False
    with unit_of_work():
        changed = _write_reasons(agents, targets)
    if changed:
        log.info("waiting_reasons_updated", tasks=changed)
    _last_seen = seen
    return changed


def _write_reasons(agents: list, targets: dict[int, str]) -> int:
    """Set-based, so a queue of 50,000 costs a few statements, not 50,000 rows in Python (bench: scale):
    the tasks no agent could hold, then the few first in line or with room kept, then all the others."""
    rooms = [whole_room(a.cpu_cores, a.gpu_info) for a in agents]
    names = {a.id: a.name for a in agents}
    fits = fits_any(rooms)
    changed = _set(~fits, no_agent_reason(rooms))
    head = db.session.execute(select(*_SIZES).where(_WAITING, fits).order_by(*task_queue.ORDER).limit(1)).first()
    kept = db.session.execute(select(*_SIZES).where(_WAITING, _T.c.id.in_(list(targets)))).all() if targets else []
    firsts = {row.id: resources_reason(row, names.get(targets.get(row.id))) for row in [*([head] if head else []), *kept]}
    for task_id, reason in firsts.items():
        changed += _set(_T.c.id == task_id, reason)
    return changed + _set(fits & _T.c.id.notin_(list(firsts)), PRIORITY)


_SIZES = (_T.c.id, _T.c.priority, _T.c.cpu_cores, _T.c.gpu_count, _T.c.gpu_memory)


def _set(where, reason: str) -> int:
    """The waiting tasks matching `where` whose reason differs get `reason`; how many did."""
    differs = or_(_T.c.status_reason.is_(None), _T.c.status_reason != reason)
    return db.session.execute(update(_T).where(_WAITING, where, differs).values(status_reason=reason)).rowcount


def fits_any(rooms: list[Capacity]):
    """SQL: the task fits the whole room of at least one of `rooms` (Capacity.shortfall == (0, 0) there):
    its cores, and as many GPUs with at least its memory on each (any GPU for whole-GPU requests)."""
    clauses = []
    for room in rooms:
        cores = _T.c.cpu_cores <= room.free_cores
        clauses.append(and_(cores, _T.c.gpu_count == 0))
        for size in sorted({g.total_mib for g in room.gpus}):
            able = sum(1 for g in room.gpus if g.total_mib >= size)
            clauses.append(and_(cores, _T.c.gpu_memory <= size, _T.c.gpu_count <= able))
    return or_(*clauses) if clauses else false()


def no_agent_reason(rooms: list[Capacity]) -> str:
    if not rooms:
        return "no online agent can run it: no agent is online and taking tasks"
    cores = max(r.free_cores for r in rooms)
    gpus = max(len(r.gpus) for r in rooms)
    mib = max((g.total_mib for r in rooms for g in r.gpus), default=0)
    per_gpu = f", {_size(mib)} per GPU" if gpus else ""
    return f"no online agent can run it (largest: {cores} cores, {gpus} GPUs{per_gpu})"


def resources_reason(task: Request, kept_on: Optional[str]) -> str:
    wants = [f"{task.cpu_cores} core{'s' if task.cpu_cores > 1 else ''}"] if task.cpu_cores else []
    if task.gpu_count:
        size = f" with {_size(task.gpu_memory)} free" if task.gpu_memory else ""
        wants.append(f"{task.gpu_count} {'whole ' if not task.gpu_memory else ''}GPU{'s' if task.gpu_count > 1 else ''}{size}")
    what = " and ".join(wants) or "room"
    if kept_on:
        return f"waiting for resources: {what}; agent {kept_on} keeps room for it as tasks there end"
    return f"waiting for resources: no agent has {what} free now"


def _size(mib: int) -> str:
    return f"{mib / 1024:.0f} GiB" if mib >= 1024 else f"{mib} MiB"
