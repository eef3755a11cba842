"""What the server reads off a running task as its sub-agent beats: its progress (from its output,
services/progress.py) and its resource use over its life (usage samples). Like the beat buffer, both
are kept in memory and written once per liveness tick (flush), in one transaction; reads show what is
pending (progress_of, pending_samples), since a read never writes.

Samples: a beat's sample goes in slot seq = wall-clock seconds // SUB_HEARTBEAT_INTERVAL_S. A task keeps
the slots that are multiples of its stride; once it holds more than twice USAGE_SAMPLES_MAX, the stride
doubles and the kept slots that are not multiples of the new stride are deleted, so a three-day task
keeps evenly spread samples, about USAGE_SAMPLES_MAX to twice that, from its start to its end. The count
is exact (a slot's place in the strides: _Sampling.by_zeros) and kept in memory only (no read per beat:
bench chain): a task running across a server restart starts counting again, so it may keep up to twice
USAGE_SAMPLES_MAX more before its next thinning. A thinning whose write fails is written at the next flush;
the samples lost with it still count, so that task thins a little early.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import structlog
from flask import current_app
from sqlalchemy import bindparam, delete, insert, literal, select, update

from backend.extensions import db
from backend.models import Task, UsageSample
from backend.services import progress
from backend.services.raw_sql import RawStatement, to_db
from backend.services.unit_of_work import raw_unit_of_work
from backend.utils.time import isoformat, utcnow
from task_common.protocol import ProcessUsage

log = structlog.get_logger()

_tasks, _samples = Task.__table__, UsageSample.__table__
_SET_PROGRESS = RawStatement(update(_tasks).where(_tasks.c.id == bindparam("task_id"))
                             .values(progress=bindparam("new_progress")))
# Every column but the id, which the database assigns (PostgreSQL refuses an explicit NULL there).
_ADD_SAMPLE = RawStatement(insert(_samples).values({c.name: bindparam(c.name) for c in _samples.c if c.name != "id"}))
_THIN = RawStatement(delete(_samples).where(_samples.c.task_id == bindparam("task_id"),
                                            _samples.c.seq % bindparam("stride") != literal(0)))


_ZEROS = 64


def _trailing_zeros(n: int) -> int:
    return min((n & -n).bit_length() - 1, _ZEROS - 1) if n else _ZEROS - 1


@dataclass
class _Sampling:
    """How a task's kept samples (stored or pending) stand: by_zeros[z] counts the kept slots whose
    seq // stride has z trailing zero bits, so a doubled stride keeps exactly those with z >= 1."""
    stride: int = 1
    last_seq: int = -1
    by_zeros: list[int] = field(default_factory=lambda: [0] * _ZEROS)

    def keep(self, seq: int) -> None:
        self.last_seq = seq
        self.by_zeros[_trailing_zeros(seq // self.stride)] += 1

    def double_stride(self) -> None:
        self.stride *= 2
        self.by_zeros = self.by_zeros[1:] + [0]

    @property
    def kept(self) -> int:
        return sum(self.by_zeros)


@dataclass
class _Pending:
    progress: dict[int, dict] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    thin: dict[int, int] = field(default_factory=dict)  # task id -> new stride


_lock = threading.Lock()
_pending = _Pending()
_shown: dict[int, dict] = {}  # the latest progress of each running task, for progress.newer
_sampling: dict[int, _Sampling] = {}


def read_beat(task_id: int, pieces: list[tuple[int, bytes]], usage: Optional[ProcessUsage]) -> None:
    """Called for each beat, after its output was stored."""
    found = progress.parse(pieces[-1][1]) if pieces and pieces[-1][1] else None
    with _lock:
        if found is not None and (new := progress.newer(_shown.get(task_id), found)) is not None:
            _shown[task_id] = new
            _pending.progress[task_id] = {**new, "updated_time": isoformat(utcnow())}
        if usage is not None:
            _sample(task_id, usage)


def _sample(task_id: int, usage: ProcessUsage) -> None:
    seq = int(time.time() / current_app.config["SUB_HEARTBEAT_INTERVAL_S"])
    sampling = _sampling.setdefault(task_id, _Sampling())
    if seq % sampling.stride or seq <= sampling.last_seq:
        return
    sampling.keep(seq)
    _pending.samples.append({"task_id": task_id, "seq": seq, "time": utcnow(), "cpu_percent": usage.cpu_usage,
                             "memory_mib": usage.memory_used_mib, "gpus": [
                                 {"index": g.index, "utilization": g.utilization, "memory_used_mib": g.memory_used}
                                 for g in usage.gpus]})
    if sampling.kept > 2 * current_app.config["USAGE_SAMPLES_MAX"]:
        sampling.double_stride()
        _pending.samples = [s for s in _pending.samples if s["task_id"] != task_id or s["seq"] % sampling.stride == 0]
        _pending.thin[task_id] = sampling.stride


def forget(task_id: int) -> None:
    """The task ended: nothing more will be read off it (what is pending is still written)."""
    with _lock:
        _shown.pop(task_id, None)
        _sampling.pop(task_id, None)


def flush() -> None:
    """Write what is pending in one transaction. Not inside a unit of work.
    Readings are for people: a tick whose write fails is logged and dropped, not retried, except its
    thinnings; the tick goes on (waiting reasons)."""
    global _pending
    with _lock:
        batch, _pending = _pending, _Pending()
    if not (batch.progress or batch.samples or batch.thin):
        return
    try:
        _write(batch, db.engine.dialect)
    except Exception:
        log.exception("task_readings_write_failed", progress=len(batch.progress), samples=len(batch.samples))
        with _lock:  # a thinning not written would leave its slots for good: the next flush writes it
            for task_id, stride in batch.thin.items():
                _pending.thin[task_id] = max(stride, _pending.thin.get(task_id, 1))


def _write(batch: _Pending, dialect) -> None:
    progress_to_db, time_to_db = to_db(_tasks.c.progress, dialect), to_db(_samples.c.time, dialect)
    gpus_to_db = to_db(_samples.c.gpus, dialect)
    with raw_unit_of_work() as conn:
        cursor = conn.cursor()
        if batch.progress:
            _SET_PROGRESS.executemany(cursor, dialect, [
                {"task_id": t, "new_progress": progress_to_db(p)} for t, p in batch.progress.items()])
        if batch.samples:
            _ADD_SAMPLE.executemany(cursor, dialect, [
                {**s, "time": time_to_db(s["time"]), "gpus": gpus_to_db(s["gpus"])} for s in batch.samples])
        for task_id, stride in batch.thin.items():
            _THIN.execute(cursor, dialect, {"task_id": task_id, "stride": stride})


def progress_of(task_id: int, stored: Optional[dict]) -> Optional[dict]:
    """The task's progress as shown: the pending reading, else the stored one."""
    with _lock:
        return _pending.progress.get(task_id, stored)


def pending_samples(task_id: int) -> list[dict]:
    with _lock:
        return [s for s in _pending.samples if s["task_id"] == task_id]


def usage_of(task_id: int) -> list[dict]:
    """The task's samples, oldest first: the stored ones, then those not written yet."""
    rows = db.session.execute(select(_samples.c.time, _samples.c.cpu_percent, _samples.c.memory_mib, _samples.c.gpus)
                              .where(_samples.c.task_id == task_id).order_by(_samples.c.seq)).all()
    stored = [{"time": isoformat(r.time), "cpu_percent": r.cpu_percent, "memory_mib": r.memory_mib,
               "gpus": r.gpus or []} for r in rows]
    return stored + [{"time": isoformat(s["time"]), "cpu_percent": s["cpu_percent"], "memory_mib": s["memory_mib"],
                      "gpus": s["gpus"]} for s in pending_samples(task_id)]
