"""The plain sub-agent heartbeat's writes (the task's last sign of life, the sub-agent's resource
usage), kept in memory and written in one transaction per liveness tick. Those times are for people:
liveness itself goes by the monotonic stamps of services/last_heard.py, taken as the beat arrives.

Every running task's sub-agent beats once a second. One commit per beat was most of the server's
work at 300 sub-agents (bench: fleet): the write lock, ~15 system calls of SQLite locking and WAL
writes, for two rows nobody reads until the next liveness check or page refresh. So a plain beat
only records its values here (record()) and flush() writes the latest one per sub-agent. Readers
that act on these values flush first: the liveness check (services/agents.check_agents_status)
and the agent queries behind the UI. Task output never waits here: it is stored before the beat
is answered (services/logs.py). A crash loses at most one tick of usage readings.

A flushed beat never overwrites a newer write made another way (the sub-agent's final beat, a
GPU beat, liveness marking it offline): each UPDATE only applies over an older time, and the task's
only while that sub-agent still runs it.
"""
from __future__ import annotations

import threading
from typing import NamedTuple

import structlog

from backend.models import AgentStatus
from backend.services.unit_of_work import raw_unit_of_work

log = structlog.get_logger()


class Beat(NamedTuple):
    task_id: int
    sub_agent_id: str
    now: str  # utils.time.sqlite_datetime(): compared as text against the stored times
    cpu_usage: float
    memory_usage: float
    memory_used_mib: float


_lock = threading.Lock()
_pending: dict[str, Beat] = {}  # by sub-agent id: only the latest beat of each is written

# Column names as in models/task.py and models/agent.py; tests/test_beat_buffer.py reads them back.
_TOUCH_TASK_SQL = ("UPDATE tasks SET last_seen_time = :now WHERE id = :task_id AND sub_agent_id = :sub_agent_id "
                   "AND (last_seen_time IS NULL OR last_seen_time < :now)")
_TOUCH_SUB_SQL = (f"UPDATE agents SET status = '{AgentStatus.ONLINE.value}', last_heartbeat_time = :now, "
                  "cpu_usage = :cpu_usage, memory_usage = :memory_usage, memory_used_mib = :memory_used_mib, "
                  "gpu_info = '[]' WHERE id = :sub_agent_id "
                  "AND (last_heartbeat_time IS NULL OR last_heartbeat_time < :now)")


def record(beat: Beat) -> None:
    with _lock:
        _pending[beat.sub_agent_id] = beat


def flush() -> int:
    """Write every pending beat in one transaction; return how many. Not inside a unit of work."""
    global _pending
    with _lock:
        batch, _pending = _pending, {}
    if not batch:
        return 0
    rows = [beat._asdict() for beat in batch.values()]
    try:
        with raw_unit_of_work() as conn:
            conn.executemany(_TOUCH_TASK_SQL, rows)
            conn.executemany(_TOUCH_SUB_SQL, rows)
    except Exception:
        with _lock:  # keep them for the next flush, unless a newer beat came meanwhile
            for beat in batch.values():
                _pending.setdefault(beat.sub_agent_id, beat)
        raise
    return len(rows)
