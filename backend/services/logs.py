"""Task output files: one per task under <data>/logs/tasks/, appended only at their current end.

append_task_log() is idempotent for resends: a chunk is written only from the stored size on, so
a repeated or overlapping chunk adds nothing and a gap is refused. Reads seek; they never load a
whole file.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import structlog
from flask import current_app

from backend.services import signals
from backend.services.errors import InvalidInput

log = structlog.get_logger()


class _LockEntry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock, self.users = threading.Lock(), 0


_locks_guard = threading.Lock()
_locks: dict[int, _LockEntry] = {}


@dataclass
class LogSlice:
    task_id: int
    offset: int
    next_offset: int
    size: int
    data: bytes

    def to_dict(self) -> dict:
        return {"task_id": self.task_id, "offset": self.offset, "next_offset": self.next_offset,
                "size": self.size, "data": self.data.decode("utf-8", errors="replace")}


def log_path(task_id: int) -> str:
    # plain string joins: this runs for every heartbeat that carries output (bench: fleet)
    return os.path.join(current_app.config["DATA_DIR"], "logs", "tasks", f"{task_id}.log")


def log_size(task_id: int) -> int:
    try:
        return os.path.getsize(log_path(task_id))
    except FileNotFoundError:
        return 0


@contextmanager
def _task_log_locked(task_id: int) -> Iterator[None]:
    """One writer per task log at a time. An entry lives only while a write holds or waits for it, so
    the map never keeps one lock per task ever run (long life)."""
    with _locks_guard:
        entry = _locks.setdefault(task_id, _LockEntry())
        entry.users += 1
    try:
        with entry.lock:
            yield
    finally:
        with _locks_guard:
            entry.users -= 1
            if not entry.users:
                del _locks[task_id]


def held_log_locks() -> int:
    """How many task-log locks exist now (for tests of the long-life bound)."""
    return len(_locks)


def append_task_log(task_id: int, offset: int, raw: bytes) -> int:
    """Store the part of `raw` (which starts at byte `offset`) past the stored size; return the new size.

    Raises OSError when the disk refuses; the file is then cut back to its previous size.
    """
    with _task_log_locked(task_id):
        # os-level calls, not open(): no buffer object, no isatty probe (this runs for every beat with output)
        fd = os.open(log_path(task_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if offset > size:
                return size  # a gap: the sender resends from `size`
            new = memoryview(raw)[size - offset:]
            if not new:
                return size
            try:
                while new:
                    new = new[os.write(fd, new):]
            except OSError:
                os.ftruncate(fd, size)
                raise
            stored = offset + len(raw)
        finally:
            os.close(fd)
    log.debug("output_chunk_stored", task_id=task_id, offset=size, size=stored - size)
    signals.notify(signals.task_topic(task_id))
    return stored


def read_task_log(task_id: int, *, offset: int | None = None, limit: int | None = None,
                  tail: int | None = None) -> LogSlice:
    """Read `limit` bytes from `offset`, or the last `tail` bytes; capped at MAX_LOG_READ_BYTES."""
    cap = current_app.config["MAX_LOG_READ_BYTES"]
    size = log_size(task_id)
    if tail is not None:
        limit = min(tail, cap)
        offset = max(0, size - limit)
    offset = offset or 0
    limit = cap if limit is None else min(limit, cap)
    if offset > size:
        raise InvalidInput("offset_out_of_range", f"Offset {offset} is past the end of the log ({size} bytes).")
    data = b""
    if size and limit:
        with open(log_path(task_id), "rb") as fh:
            fh.seek(offset)
            data = fh.read(min(limit, size - offset))
    if tail is not None and offset > 0:  # the server chose where to start: start on a whole character
        skip = _partial_char_prefix(data)
        offset, data = offset + skip, data[skip:]
    data = _trim_to_utf8_boundary(data, at_end=offset + len(data) < size)
    return LogSlice(task_id, offset, offset + len(data), size, data)


def _partial_char_prefix(data: bytes) -> int:
    """How many UTF-8 continuation bytes (the rest of a character cut off before `data`) it starts with."""
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1
    return skip


def _trim_to_utf8_boundary(data: bytes, at_end: bool) -> bytes:
    """Drop a multi-byte UTF-8 character cut at the end of a page, so pages join without U+FFFD."""
    if not at_end:
        return data
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the start byte of the last character
            length = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return data[:-back] if length > back else data
    return data
