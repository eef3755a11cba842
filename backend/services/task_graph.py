"""A task's chain as a graph: its ancestors (what it depends on, transitively) and its descendants
(what depends on it, transitively), for the detail dialog's drawing. Read level by level, one query
per level and direction, and cut at MAX_NODES so a huge sweep-fed chain stays drawable."""
from __future__ import annotations

from sqlalchemy import or_, select

from backend.extensions import db
from backend.models import Task, TaskDependency
from backend.services.tasks import get_task_by_id

MAX_NODES = 500


def chain_of(task_id: int) -> dict:
    """{"nodes": [{"id", "name", "status"}], "edges": [{"from", "to"}] (from must complete before to),
    "truncated": whether MAX_NODES cut it}."""
    get_task_by_id(task_id)
    ids, edges = {task_id}, set()
    truncated = False
    for column, other in ((TaskDependency.task_id, TaskDependency.depends_on_id),
                          (TaskDependency.depends_on_id, TaskDependency.task_id)):
        frontier = {task_id}
        while frontier and not truncated:
            links = db.session.execute(select(TaskDependency.depends_on_id, TaskDependency.task_id)
                                       .where(column.in_(frontier))).all()
            edges.update(links)
            found = {link[0] if other is TaskDependency.depends_on_id else link[1] for link in links} - ids
            truncated = len(ids) + len(found) > MAX_NODES
            frontier = set(sorted(found)[:max(0, MAX_NODES - len(ids))])
            ids |= frontier
    rows = db.session.execute(select(Task.id, Task.name, Task.status).where(Task.id.in_(ids)).order_by(Task.id)).all()
    return {"nodes": [{"id": r.id, "name": r.name, "status": r.status} for r in rows],
            "edges": [{"from": a, "to": b} for a, b in sorted(edges) if a in ids and b in ids],
            "truncated": truncated}
