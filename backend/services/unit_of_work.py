"""One transaction per use case, serialised in this process.

The server is one process. Every writing use case runs inside `unit_of_work()`, which holds one
lock for its whole read-modify-write and commits once at the end. That makes hand-overs atomic
(two main agents never get the same task) and avoids SQLite's "database is locked" upgrade races.
Never wait (long poll, sleep) while holding it. `after_commit(fn)` defers a side effect (waking
waiters) until the data it announces is committed; a rollback drops it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from backend.extensions import db

_write_lock = threading.RLock()
_local = threading.local()


@contextmanager
def unit_of_work() -> Iterator[None]:
    with _write_lock:
        outer = getattr(_local, "pending", None) is None
        if outer:
            _local.pending = []
        try:
            yield
            if outer:
                db.session.commit()
        except BaseException:
            if outer:
                db.session.rollback()
                _local.pending = None
            raise
        if outer:
            pending, _local.pending = _local.pending, None
            for fn in pending:
                fn()


def after_commit(fn: Callable[[], None]) -> None:
    """Run fn once the current unit of work commits (at once when outside one)."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        fn()
    else:
        pending.append(fn)
