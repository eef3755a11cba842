"""When this server process last heard from each running task and each agent, on its monotonic clock.

Liveness (services/liveness.py) decides by these stamps only. The wall-clock column
Agent.last_heartbeat_time is for people: a clock step on the server (NTP, a VM resumed, an admin's
`date -s`) would otherwise fail healthy tasks or keep dead ones.

The stamps live in memory, per app (tests build many apps in one process): a restarted server has
none, and the liveness check seeds every running task and known agent with "now" on its first tick;
the restart grace covers the rest. The same check drops the stamps of tasks that stopped running and
agents that went offline or were forgotten (keep_only), so nothing here grows for ever. It also keeps
the "agent unreachable since" note of each running task whose agent it cannot hear (task JSON).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Optional

from flask import current_app

clock: Callable[[], float] = time.monotonic  # a module attribute, so in-process tests can let time pass

_EXTENSION_KEY = "task_system.last_heard"


@dataclass
class _Stamps:
    tasks: dict[int, float] = field(default_factory=dict)  # task id -> when a sign of it last came
    agents: dict[str, float] = field(default_factory=dict)  # main or sub-agent id -> its last request
    unreachable_since: dict[int, datetime] = field(default_factory=dict)  # task id -> for display


def _stamps() -> _Stamps:
    return current_app.extensions.setdefault(_EXTENSION_KEY, _Stamps())


def hear_task(task_id: int) -> None:
    _stamps().tasks[task_id] = clock()


def hear_main_agent(agent_id: str, running_task_ids: Iterable[int]) -> None:
    """A main agent's heartbeat, vouching for the tasks it reports running. One stamp for all: the
    liveness check reads "its agent was heard after the task" as "its agent no longer reports it"."""
    stamps, now = _stamps(), clock()
    stamps.agents[agent_id] = now
    for task_id in running_task_ids:
        stamps.tasks[task_id] = now


def hear_sub_agent(sub_agent_id: str, task_id: int) -> None:
    stamps, now = _stamps(), clock()
    stamps.agents[sub_agent_id] = stamps.tasks[task_id] = now


def task_heard(task_id: int) -> float:
    """When a sign of the task last came (a task never heard of counts as heard now)."""
    return _stamps().tasks.setdefault(task_id, clock())


def agent_heard(agent_id: str) -> float:
    """When the agent last sent anything (one never heard from counts as heard now)."""
    return _stamps().agents.setdefault(agent_id, clock())


def keep_only(task_ids: Iterable[int], agent_ids: Iterable[str], now: float) -> None:
    """Stamps for exactly these tasks and agents: the others' (finished, offline, forgotten) are
    dropped, with their notes; any never heard of in this process (a fresh start) count as heard at `now`."""
    stamps = _stamps()
    for kept, heard in ((set(task_ids), stamps.tasks), (set(agent_ids), stamps.agents)):
        for key in [key for key in heard if key not in kept]:  # in place: a beat may stamp meanwhile
            heard.pop(key, None)
        for key in kept:
            heard.setdefault(key, now)
    stamps.unreachable_since = {t: since for t, since in stamps.unreachable_since.items() if t in stamps.tasks}


def set_unreachable(notes: dict[int, datetime]) -> None:
    """Replace every note at once (readers never see half an update)."""
    _stamps().unreachable_since = notes


def unreachable_since(task_id: int) -> Optional[datetime]:
    """Since when nothing of this running task's box reached the server (None: it is heard)."""
    return _stamps().unreachable_since.get(task_id)


def unreachable_notes() -> dict[int, datetime]:
    return _stamps().unreachable_since
