"""How many tasks there are in each status, for the tasks page's overview (one GROUP BY, index-only)."""
from __future__ import annotations

from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Task, TaskStatus


def counts_by_status() -> dict[str, int]:
    """{status: number of tasks}, every status present (0 when none)."""
    counts = {status.value: 0 for status in TaskStatus}
    for status, n in db.session.execute(select(Task.status, func.count()).group_by(Task.status)):
        counts[status.value if isinstance(status, TaskStatus) else str(status)] = n
    return counts
