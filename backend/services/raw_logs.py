"""GET /api/tasks/<id>/log/raw from a byte offset, optionally held open until there is something to send:
the long poll that `tq logs -f` follows a task with (resumable by offset after any dropped connection)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from backend.services import logs, signals
from backend.services import tasks as task_service
from backend.services.errors import InvalidInput


@dataclass
class RawLog:
    offset: int  # the first byte sent
    size: int  # the log's size when read: the bytes sent end here
    is_complete: bool  # the task ended before the size was taken: no byte will follow `size`
    chunks: Iterator[bytes]


def read_raw_log(task_id: int, *, offset: int = 0, wait_s: float = 0.0) -> RawLog:
    """The stored bytes from `offset` to the log's end now. With nothing past `offset` yet and the task's
    output not complete, wait up to `wait_s` for output or the task's end (woken by services.signals)."""
    deadline = time.monotonic() + wait_s
    with signals.Watch(signals.task_topic(task_id)) as change:
        while True:
            change.mark()
            watch = task_service.get_log_watch(task_id)  # first: a complete task's size read after it is final
            size, chunks = logs.iter_task_log_bytes(task_id, offset)
            if offset > size:
                raise InvalidInput("offset_out_of_range",
                                   f"Offset {offset} is past the end of the log ({size} bytes).")
            left = deadline - time.monotonic()
            if size > offset or watch.is_output_complete or left <= 0:
                return RawLog(offset, size, watch.is_output_complete, chunks)
            change.wait(left)
