"""What the agent cards show about each GPU besides its measured use: who holds it (the tasks placed on
it, by services/placements.py's record) and its utilisation over the last minutes.

Measured use lags a reservation by seconds (and simulated GPUs measure none), so the reservation is
what tells a person why a GPU that looks idle takes no task. The history lives in this process only
(the server is one process): each main heartbeat adds a reading; a restart starts it afresh.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Iterable

from sqlalchemy import select

from backend.extensions import db
from backend.models import Task

HISTORY_S = 600.0  # how far back the cards' sparklines go
HISTORY_POINTS = 60  # points per GPU sent: the readings of each tenth of the window, at their highest

_lock = threading.Lock()
_readings: dict[str, deque] = {}  # main agent id -> (monotonic time, {gpu index: utilization %})


def record(agent_id: str, gpus: Iterable) -> None:
    """A main heartbeat's GPU readings (task_common.protocol.GpuInfo)."""
    now = time.monotonic()
    with _lock:
        readings = _readings.setdefault(agent_id, deque())
        readings.append((now, {g.index: g.utilization for g in gpus}))
        while readings and readings[0][0] < now - HISTORY_S:
            readings.popleft()


def forget(agent_id: str) -> None:
    with _lock:
        _readings.pop(agent_id, None)


def history(agent_id: str) -> list[dict]:
    """[{"index", "utilization": [HISTORY_POINTS values, oldest first, null where nothing was read]}]."""
    now, step = time.monotonic(), HISTORY_S / HISTORY_POINTS
    with _lock:
        readings = list(_readings.get(agent_id, ()))
    series: dict[int, list] = {}
    for at, gpus in readings:
        slot = min(HISTORY_POINTS - 1, max(0, HISTORY_POINTS - 1 - int((now - at) / step)))
        for index, utilization in gpus.items():
            values = series.setdefault(index, [None] * HISTORY_POINTS)
            values[slot] = max(values[slot] or 0.0, utilization)
    return [{"index": index, "utilization": values} for index, values in sorted(series.items())]


def reservations(agent_ids: list[str]) -> dict[str, list[dict]]:
    """Main agent id -> per GPU held by placed tasks: {"index", "reserved_mib", "whole", "task_ids"};
    one read for all the agents asked about."""
    rows = db.session.execute(select(Task.id, Task.agent_id, Task.gpu_ids, Task.gpu_memory).where(
        Task.agent_id.in_(agent_ids), Task.holds_resources.is_(True))).all() if agent_ids else []
    out: dict[str, dict[int, dict]] = {}
    for row in rows:
        for index in row.gpu_ids or []:
            gpu = out.setdefault(row.agent_id, {}).setdefault(
                index, {"index": index, "reserved_mib": 0, "whole": False, "task_ids": []})
            gpu["task_ids"].append(row.id)
            gpu["whole"] = gpu["whole"] or not row.gpu_memory
            gpu["reserved_mib"] += row.gpu_memory
    return {agent_id: [gpus[i] for i in sorted(gpus)] for agent_id, gpus in out.items()}
