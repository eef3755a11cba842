"""A task's chain as a graph: its ancestors (what it depends on, transitively) and its descendants
(what depends on it, transitively), for the detail dialog's drawing. Read level by level, one query
per level and direction, and cut at MAX_NODES so a huge sweep-fed chain stays drawable."""
from __future__ import annotations

from sqlalchemy import select

from backend.extensions import db
from backend.models import Task, TaskDependency
from backend.services.tasks import get_task_by_id

MAX_NODES = 500


def chain_of(task_id: int) -> dict:
    """{"nodes": [{"id", "name", "status"}], "edges": [{"from", "to"}] (from must complete before to),
    "truncated": whether MAX_NODES cut it}."""
    get_task_by_id(task_id)
    ids, edges = {task_id}, set()
    truncated = _walk(task_id, ids, edges, near=TaskDependency.task_id, far=TaskDependency.depends_on_id)  # ancestors
    truncated = _walk(task_id, ids, edges, near=TaskDependency.depends_on_id, far=TaskDependency.task_id) or truncated
    rows = db.session.execute(select(Task.id, Task.name, Task.status).where(Task.id.in_(ids)).order_by(Task.id)).all()
    return {"nodes": [{"id": r.id, "name": r.name, "status": r.status} for r in rows],
            "edges": [{"from": a, "to": b} for a, b in sorted(edges) if a in ids and b in ids],
            "truncated": truncated}


def _walk(start: int, ids: set[int], edges: set[tuple[int, int]], *, near, far) -> bool:
    """From `start`, follow links from their `near` end to the `far` one, level by level,
    adding the tasks to `ids` and the links (depends_on_id, task_id) to `edges`; True when MAX_NODES cut it."""
    frontier = {start}
    while frontier:
        links = db.session.execute(select(TaskDependency.depends_on_id, TaskDependency.task_id, far)
                                   .where(near.in_(frontier))).all()
        edges.update((before, after) for before, after, _ in links)
        found = sorted({reached for _, _, reached in links} - ids)
        frontier = set(found[:max(0, MAX_NODES - len(ids))])
        ids |= frontier
        if len(frontier) < len(found):
            return True
    return False
