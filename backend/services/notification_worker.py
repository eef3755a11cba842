"""A bounded queue of calls run by a few daemon threads: the notifications' sender (services/notifications.py).

Under gunicorn's gevent worker the threads are greenlets (app.py: threading is patched), so a send that
waits on a slow endpoint yields to the requests and heartbeats; under a plain threaded server they are
threads. Nothing here touches a request: submit() only puts on the queue, and a full queue drops the
call (the caller logs it) rather than grow without bound or wait. The threads are daemons and stop()
wakes any that wait between retries, so shutting the server down never waits for a hung endpoint.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import structlog

log = structlog.get_logger()


class WorkerPool:
    def __init__(self, name: str, *, workers: int, max_pending: int):
        self.name = name
        self.stopping = threading.Event()  # callees wait on it between retries: stop() cuts their wait short
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)]

    def start(self) -> "WorkerPool":
        for thread in self._threads:
            thread.start()
        return self

    def submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue fn(*args); False (and nothing queued) when max_pending calls wait already or it stopped."""
        if self.stopping.is_set():
            return False
        try:
            self._queue.put_nowait((fn, args))
        except queue.Full:
            return False
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        """Run nothing more; the calls in progress end at their next wait (daemons: never joined)."""
        self.stopping.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break  # the threads see `stopping` after their current call

    def _run(self) -> None:
        while not self.stopping.is_set():
            item = self._queue.get()
            if item is None or self.stopping.is_set():
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:  # the loop's boundary: one bad call must not end the worker
                log.exception("worker_call_failed", pool=self.name)
