"""One transaction per use case, serialised in this process.

The server is one process. Every writing use case runs inside `unit_of_work()`, which holds one
lock for its whole read-modify-write and commits once at the end. That makes hand-overs atomic
(two main agents never get the same task) and avoids SQLite's "database is locked" upgrade races.
Never wait (long poll, sleep, network) while holding it: requests are greenlets on one thread (app.py),
and SQLite's own busy wait would block them all. Each takes its pooled connection before the lock,
so the lock holder never waits for the pool. `after_commit(fn)` defers a side effect (waking
waiters) until the data it announces is committed; a rollback drops it.

`raw_unit_of_work()` is the same lock and one commit around a bare DB-API connection from the pool,
for the few statements that run hundreds of times a second (the plain sub-agent heartbeat): the ORM
session's own bookkeeping costs ~5x the SQL there. Use the ORM everywhere else.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from backend.extensions import db

_write_lock = threading.RLock()
_local = threading.local()


@contextmanager
def unit_of_work(keep_loaded: bool = False) -> Iterator[None]:
    """keep_loaded: the objects keep their values after the commit (not expired), for a caller that
    only reads them back, e.g. to answer with what it just created; the next read in another unit
    of work may then see values as of this commit."""
    db.session.connection()  # before the lock (see above); a no-op when the session has one
    with _write_lock:
        outer = getattr(_local, "pending", None) is None
        if outer:
            _local.pending = []
        try:
            yield
            if outer:
                _commit(keep_loaded)
        except BaseException:
            if outer:
                db.session.rollback()
                _local.pending = None
            raise
        if outer:
            pending, _local.pending = _local.pending, None
            for fn in pending:
                fn()


def _commit(keep_loaded: bool) -> None:
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, not keep_loaded
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


@contextmanager
def raw_unit_of_work() -> Iterator[Any]:
    """Hold the write lock around a pooled DB-API connection (sqlite3's or psycopg's); commit at the end,
    roll back on error. Not inside unit_of_work(): its session may hold the write lock (SQLite) or the
    row locks (PostgreSQL) that this connection would wait for."""
    if getattr(_local, "pending", None) is not None:
        raise RuntimeError("raw_unit_of_work() inside unit_of_work()")
    pooled = db.engine.raw_connection()  # set up when it connected (services/database.py)
    try:
        with _write_lock:
            try:
                yield pooled.driver_connection
                pooled.commit()
            except BaseException:
                pooled.rollback()
                raise
    finally:
        pooled.close()  # back to the pool


def after_commit(fn: Callable[[], None]) -> None:
    """Run fn once the current unit of work commits (at once when outside one)."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        fn()
    else:
        pending.append(fn)
