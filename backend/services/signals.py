"""In-process change notification: waiters block on a topic until something bumps its version.

Topics: WORK (a task became waiting or resources were freed: wake long-polling main agents) and
("task", id) (new output stored or status changed: wake that task's WebSocket streams).
"""
from __future__ import annotations

import threading
from typing import Hashable

WORK = "work"

_cond = threading.Condition()
_versions: dict[Hashable, int] = {}


def task_topic(task_id: int) -> tuple:
    return ("task", task_id)


def version(topic: Hashable) -> int:
    with _cond:
        return _versions.get(topic, 0)


def notify(topic: Hashable) -> None:
    with _cond:
        _versions[topic] = _versions.get(topic, 0) + 1
        _cond.notify_all()


def wait(topic: Hashable, seen: int, timeout_s: float) -> int:
    """Block until the topic's version differs from `seen` or the timeout passes; return the version."""
    with _cond:
        _cond.wait_for(lambda: _versions.get(topic, 0) != seen, timeout_s)
        return _versions.get(topic, 0)
