"""The sub-agent heartbeat's writes (the sub-agent's last beat and resource usage, GPUs included), kept
in memory and written in one transaction per liveness tick. The beat's time is for people: liveness
itself goes by the monotonic stamps of services/last_heard.py, taken as the beat arrives.

Every running task's sub-agent beats once a second. One commit per beat was most of the server's
work at 300 sub-agents (bench: fleet): the write lock, ~15 system calls of SQLite locking and WAL
writes, for a row nobody reads until the next liveness check or page refresh. So a beat only
records its values here (record()) and flush() writes the latest one per sub-agent. The liveness
check (services/liveness.py) flushes first; the agent queries behind the UI show the pending beats
instead (pending()), since a read never writes. Task output never waits here: it is stored before
the beat is answered (services/sub_output.py). A crash loses at most one tick of usage readings.

A flushed beat never overwrites a newer write made another way (the beat that settles the task's
end, liveness marking the sub-agent offline): the UPDATE only applies over an older beat time. It
writes the sub-agent's row only, never the task's.

The statement comes from the owner of the sub-agent's status (online): services/agent_status.py.
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterable, NamedTuple, Optional

import structlog
from sqlalchemy import bindparam, select

from backend.extensions import db
from backend.models import Agent
from backend.services import agent_status
from backend.services.raw_sql import RawStatement, to_db
from backend.services.unit_of_work import raw_unit_of_work
from task_common.protocol import ProcessGpuUsage, ProcessUsage

log = structlog.get_logger()


class Beat(NamedTuple):
    sub_agent_id: str
    now: datetime
    usage: ProcessUsage


_lock = threading.Lock()
_pending: dict[str, Beat] = {}  # by sub-agent id: only the latest beat of each is written

_agents = Agent.__table__
_mains = _agents.alias("main_agent")
# Built once from the table, run on a bare connection (services/raw_sql.py). Parameter names differ
# from the column names: SQLAlchemy keeps those for the SET clause.
_TOUCH_SUB = RawStatement(agent_status.beat_statement(
    cpu_usage=bindparam("beat_cpu_usage"), memory_usage=bindparam("beat_memory_usage"),
    memory_used_mib=bindparam("beat_memory_used_mib"), gpu_info=bindparam("beat_gpu_info")))


def record(beat: Beat) -> None:
    with _lock:
        _pending[beat.sub_agent_id] = beat


def pending() -> dict[str, Beat]:
    """The beats not written yet, by sub-agent id (a copy): the agent queries show them instead of
    flushing, since a read never writes (services/agents.py _show_pending_beats)."""
    with _lock:
        return dict(_pending)


def flush() -> int:
    """Write every pending beat in one transaction; return how many. Not inside a unit of work."""
    global _pending
    with _lock:
        batch, _pending = _pending, {}
    if not batch:
        return 0
    try:
        rows = _rows(batch.values(), db.engine.dialect)
        with raw_unit_of_work() as conn:
            _TOUCH_SUB.executemany(conn.cursor(), db.engine.dialect, rows)
    except Exception:
        with _lock:  # keep them for the next flush, unless a newer beat came meanwhile
            for beat in batch.values():
                _pending.setdefault(beat.sub_agent_id, beat)
        raise
    return len(rows)


def _rows(beats: Iterable[Beat], dialect) -> list[dict]:
    """Each beat's values as the driver takes them."""
    beats = list(beats)
    time_to_db, gpus_to_db = to_db(_agents.c.last_heartbeat_time, dialect), to_db(_agents.c.gpu_info, dialect)
    main_gpus = _main_agent_gpus([b.sub_agent_id for b in beats if b.usage.gpus])
    rows = []
    for beat in beats:
        values = beat_values(beat, main_gpus.get(beat.sub_agent_id))
        values["last_heartbeat_time"] = time_to_db(values["last_heartbeat_time"])
        values["gpu_info"] = gpus_to_db(values["gpu_info"])
        rows.append({"beat_sub_agent_id": beat.sub_agent_id, "beat_time": values.pop("last_heartbeat_time"),
                     **{f"beat_{column}": value for column, value in values.items()}})
    return rows


def beat_values(beat: Beat, main_gpus: Optional[list[dict]]) -> dict:
    """What a flush writes for one beat, by the sub-agent's column (besides status online): the one
    mapping for the flush and for reads that show pending beats (services/agents.py)."""
    usage = beat.usage
    return {"last_heartbeat_time": beat.now, "cpu_usage": usage.cpu_usage, "memory_usage": usage.memory_usage,
            "memory_used_mib": usage.memory_used_mib, "gpu_info": sub_agent_gpu_info(main_gpus, usage.gpus)}


def _main_agent_gpus(sub_agent_ids: list[str]) -> dict[str, Optional[list]]:
    """Each sub-agent's main agent's GPU list (names, sizes), which a sub-agent does not send: one read,
    only when the batch holds GPU tasks' beats."""
    if not sub_agent_ids:
        return {}
    query = (select(_agents.c.id, _mains.c.gpu_info).join_from(_agents, _mains, _mains.c.id == _agents.c.main_agent_id)
             .where(_agents.c.id.in_(sub_agent_ids)))
    with db.engine.connect() as conn:
        found = dict(conn.execute(query).all())
    return {sub_id: found.get(sub_id) for sub_id in sub_agent_ids}


def sub_agent_gpu_info(main_gpus: Optional[list[dict]], gpus: Iterable[ProcessGpuUsage]) -> list[dict]:
    """A sub-agent's gpu_info: its task's use of each GPU, with the GPU's name, uuid and size from its main agent."""
    by_index = {g["index"]: g for g in main_gpus or []}
    return [{**{k: by_index.get(g.index, {}).get(k) for k in ("name", "uuid", "memory_total", "simulated")},
             "index": g.index, "memory_used": g.memory_used, "utilization": g.utilization} for g in gpus]
