"""Task output files: one per task under <data>/logs/tasks/, appended only at their current end.

append_task_log() is idempotent for resends: a chunk is written only from the stored size on, so
a repeated or overlapping chunk adds nothing and a gap is refused. Reads seek; they never load a
whole file.
"""
from __future__ import annotations

import codecs
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import structlog
from flask import current_app

from backend.services import signals
from backend.services.errors import InvalidInput

log = structlog.get_logger()

RAW_CHUNK_BYTES = 64 * 1024  # /log/raw sends the file in pieces this big


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
    """Read `limit` bytes from `offset`, or the last `tail` bytes; capped at MAX_LOG_READ_BYTES.

    Pages join into the whole log decoded with U+FFFD for each invalid sequence: a page ends on a whole
    character, or on an invalid byte it consumes, so `next_offset` always advances (see _whole_characters).
    """
    cap = current_app.config["MAX_LOG_READ_BYTES"]
    size = log_size(task_id)
    if tail is not None:
        limit = min(tail, cap)
        offset = max(0, size - limit)
    offset = offset or 0
    limit = cap if limit is None else min(limit, cap)
    if offset > size:
        raise InvalidInput("offset_out_of_range", f"Offset {offset} is past the end of the log ({size} bytes).")
    if not (size > offset and limit):
        return LogSlice(task_id, offset, offset, size, b"")
    with open(log_path(task_id), "rb") as fh:
        fh.seek(offset)
        data = fh.read(min(limit, size - offset))
        if tail is not None:
            # The server chose where to start, so the page starts and ends on whole characters: one still
            # being written is left to the reader's next request (the browser's live stream).
            skip = _partial_char_prefix(data) if offset > 0 else 0
            offset, data = offset + skip, data[skip:]
            data = data[:len(data) - _cut_char_len(data)]
        elif offset + len(data) < size:
            data = _whole_characters(fh, data, room=size - offset - len(data))
    return LogSlice(task_id, offset, offset + len(data), size, data)


def iter_task_log_bytes(task_id: int, offset: int = 0) -> tuple[int, Iterator[bytes]]:
    """The log's size now and its bytes from `offset` up to that size, in chunks: any size, while the task
    still writes."""
    size = log_size(task_id)
    return size, _read_chunks(log_path(task_id), offset, size)


def _partial_char_prefix(data: bytes) -> int:
    """How many UTF-8 continuation bytes (the rest of a character cut off before `data`) it starts with."""
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1
    return skip


def _read_chunks(path: str, offset: int, end: int) -> Iterator[bytes]:
    size = end - offset
    if size <= 0:
        return
    with open(path, "rb") as fh:
        fh.seek(offset)
        while size > 0:
            chunk = fh.read(min(RAW_CHUNK_BYTES, size))
            if not chunk:
                return  # cut back by a failed write since the size was taken
            size -= len(chunk)
            yield chunk


def _cut_char_len(data: bytes) -> int:
    """How many bytes at the end of `data` begin a character that later bytes may still complete (0-3).

    Those are the bytes an incremental decoder holds back. An invalid byte (such as 0xff, or an overlong
    lead byte) is never held: it can never become valid, and is decoded as U+FFFD. (CPython also holds
    the start of a surrogate, ED A0-BF; harmless, as the next page starts with it and decodes it the same.)
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    decoder.decode(data[-3:])  # a cut character is at most 3 bytes, and a lead byte restarts decoding
    return len(decoder.getstate()[0])


def _whole_characters(fh: BinaryIO, data: bytes, room: int) -> bytes:
    """`data` (read from `fh`, `room` bytes before the log's end) less a character cut at its end, which
    the next page starts with. When `data` is nothing but the start of one character, read on to the byte
    that completes it or proves it invalid, so that a page never comes back empty."""
    cut = _cut_char_len(data)
    if cut < len(data):
        return data[:len(data) - cut]
    while room > 0:
        longer = data + fh.read(1)
        room -= 1
        if len(longer) == len(data):
            break  # cut back by a failed write since the size was taken
        if _cut_char_len(longer) < len(longer):  # complete, or the new byte cannot continue it
            return longer if _is_utf8(longer) else data
        data = longer
    return data  # the log ends inside the character: shown as U+FFFD, so paging never stalls


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
