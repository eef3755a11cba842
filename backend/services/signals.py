"""In-process change notification: a Watch blocks until something bumps its topic's version.

Topics: WORK (a task became waiting or resources were freed: wake long-polling main agents) and
("task", id) (new output stored or status changed: wake that task's WebSocket streams).

A topic's version exists only while someone watches it: notify() on an unwatched topic does nothing,
and the last Watch to leave removes it. So the map holds the topics being watched right now, never
one entry per task ever run. Versions only grow while watched; a new Watch starts from whatever is
there (0 when nothing), so a change between entering and waiting is never missed.
"""
from __future__ import annotations

import threading
from typing import Hashable

WORK = "work"

_cond = threading.Condition()
_versions: dict[Hashable, int] = {}
_watchers: dict[Hashable, int] = {}


def task_topic(task_id: int) -> tuple:
    return ("task", task_id)


def notify(topic: Hashable) -> None:
    with _cond:
        if topic in _watchers:
            _versions[topic] = _versions.get(topic, 0) + 1
            _cond.notify_all()


def watched_topics() -> int:
    """How many topics are held now (for tests of the long-life bound)."""
    with _cond:
        return len(_versions) + len(_watchers)


class Watch:
    """`with Watch(topic) as w:` ... `w.wait(timeout_s)` returns once the topic changed since the
    Watch began or since the last mark()/wait(), or when the timeout passes."""

    def __init__(self, topic: Hashable):
        self.topic = topic
        self.seen = 0

    def __enter__(self) -> "Watch":
        with _cond:
            _watchers[self.topic] = _watchers.get(self.topic, 0) + 1
            self.seen = _versions.get(self.topic, 0)
        return self

    def __exit__(self, *_exc) -> None:
        with _cond:
            left = _watchers[self.topic] - 1
            if left:
                _watchers[self.topic] = left
            else:
                del _watchers[self.topic]
                _versions.pop(self.topic, None)

    def mark(self) -> None:
        """From now on: changes before this call no longer count."""
        with _cond:
            self.seen = _versions.get(self.topic, 0)

    def wait(self, timeout_s: float) -> bool:
        """True when the topic changed; False when the timeout passed first."""
        with _cond:
            changed = _cond.wait_for(lambda: _versions.get(self.topic, 0) != self.seen, timeout_s)
            self.seen = _versions.get(self.topic, 0)
            return changed
