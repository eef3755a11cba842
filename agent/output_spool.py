"""A task's output on its way to the server: segment files `output.<offset>.log` in its spool dir.

bash writes into a pipe; a thread of the sub-agent (the reader) appends what arrives to the newest
segment and starts a new one every SEGMENT_BYTES. Segments the server has acknowledged are deleted,
so the disk holds the unacknowledged backlog plus at most one segment, never the whole output. Each
file is named by the task-log offset of its first byte: offsets stay the task log's, and a sub-agent
started later to deliver what is left (agent/main_agent_subs.py) finds exactly the bytes still owed.

A write the disk refuses (ENOSPC, EDQUOT, EIO) keeps the bytes in memory, in order after those on
disk, and they are sent from there; so do bytes past BACKLOG_MAX_BYTES not acknowledged on disk (a
long server outage must not fill the box's disk with one task's log). Memory holds up to
MEMORY_MAX_BYTES; past that the reader stops reading and bash waits on the full pipe: nothing is
dropped. Held bytes go to disk again once it takes them (tried every DISK_RETRY_S), or are dropped
once the server acknowledged them.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import structlog

from agent.disk import describe_write_error

log = structlog.get_logger()

SEGMENT_BYTES = 1024 * 1024
BACKLOG_MAX_BYTES = 1024 * 1024 * 1024  # unacknowledged output on disk; more waits in memory
MEMORY_MAX_BYTES = 8 * 1024 * 1024  # output held while the disk refuses it; then bash waits
PIPE_READ_BYTES = 64 * 1024
PIPE_BUFFER_BYTES = 1024 * 1024  # F_SETPIPE_SZ: a burst fits while the reader writes to disk
DISK_RETRY_S = 0.5
_SEGMENT_NAME = re.compile(r"^output\.(\d{16})\.log$")


@dataclass
class Segment:
    start: int  # task-log offset of its first byte
    length: int
    path: Path

    @property
    def end(self) -> int:
        return self.start + self.length


class OutputSpool:
    def __init__(self, directory: Path, segments: Optional[list[Segment]] = None):
        self.dir = Path(directory)
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)  # the reader waits here while memory is full
        self.segments: list[Segment] = segments or []
        self.fd: Optional[int] = None  # the newest segment, open for appending
        self.disk_end = self.segments[-1].end if self.segments else 0  # the bytes below are on disk (or acked)
        self.held = bytearray()  # bytes the disk refused: task-log offsets disk_end onwards
        self.acked = self.segments[0].start if self.segments else self.disk_end  # the server holds all below
        self.write_problem: Optional[str] = None  # why the disk refuses them, while it does
        self.eof = threading.Event()  # every writer of the pipe is gone (and all it sent is here)
        self.retried_at = 0.0

    @classmethod
    def reopen(cls, directory: Path, final_size: int) -> "OutputSpool":
        """The segments a sub-agent that exited left behind (the newest unbroken run of them), for
        output of final_size bytes; none left means the server acknowledged all of it."""
        found = []
        for path in Path(directory).glob("output.*.log"):
            match = _SEGMENT_NAME.match(path.name)
            if match:
                found.append(Segment(int(match.group(1)), path.stat().st_size, path))
        found.sort(key=lambda s: s.start)
        run = found[-1:]
        for segment in reversed(found[:-1]):
            if segment.end != run[0].start:
                break
            run.insert(0, segment)
        spool = cls(directory, run)
        if not run:
            spool.disk_end = spool.acked = final_size
        spool.eof.set()
        return spool

    @property
    def size(self) -> int:
        """Bytes of output received so far: the task-log offset where the next byte goes."""
        with self.lock:
            return self.disk_end + len(self.held)

    @property
    def base(self) -> int:
        """The lowest offset still held (on disk or in memory); everything below was acknowledged."""
        with self.lock:
            return self.segments[0].start if self.segments else self.disk_end

    # -- the reader thread ------------------------------------------------------------------------

    def start_reader(self, pipe_fd: int) -> None:
        try:
            fcntl.fcntl(pipe_fd, fcntl.F_SETPIPE_SZ, PIPE_BUFFER_BYTES)
        except (OSError, AttributeError):
            pass  # the default 64 KiB pipe is still correct, only burstier
        threading.Thread(target=self._read_pipe, args=(pipe_fd,), name="output-reader", daemon=True).start()

    def _read_pipe(self, pipe_fd: int) -> None:
        try:
            while True:
                self._wait_for_room()
                if self.held and not select.select([pipe_fd], [], [], DISK_RETRY_S)[0]:
                    self.retry_disk()
                    continue
                data = os.read(pipe_fd, PIPE_READ_BYTES)
                if not data:
                    return
                self._append(data)
        except Exception:  # a bug here must not hang the sub-agent waiting for an end of output
            log.exception("agent_tick_failed", where="output reader")
        finally:
            os.close(pipe_fd)
            self.eof.set()

    def _wait_for_room(self) -> None:
        with self.room:
            while len(self.held) >= MEMORY_MAX_BYTES:
                self.room.wait(DISK_RETRY_S)
                self._flush_held()

    def _append(self, data: bytes) -> None:
        with self.lock:
            if self.held:
                self.held += data
                self._flush_held()
                return
            written = self._write(memoryview(data))
            self.held += data[written:]

    def retry_disk(self) -> None:
        with self.lock:
            self._flush_held()

    def flush_held(self) -> bool:
        """Try the held bytes on disk now; True when none is left in memory."""
        with self.lock:
            self.retried_at = 0.0
            self._flush_held()
            return not self.held

    def _flush_held(self) -> None:
        """Under the lock: move held bytes to disk, at most once per DISK_RETRY_S."""
        now = time.monotonic()
        if not self.held or now - self.retried_at < DISK_RETRY_S:
            return
        self.retried_at = now
        while self.held:
            piece = bytes(self.held[:SEGMENT_BYTES])
            written = self._write(memoryview(piece))
            del self.held[:written]
            if written < len(piece):
                break
        self.room.notify_all()

    def _write(self, view: memoryview) -> int:
        """Under the lock: append to the segments from disk_end (BACKLOG_MAX_BYTES past what the
        server holds at most); returns the bytes the disk took."""
        view = view[:max(0, BACKLOG_MAX_BYTES - (self.disk_end - self.acked))]
        written = 0
        try:
            while written < len(view):
                fd, room = self._segment_fd()
                n = os.write(fd, view[written:written + room])
                self.segments[-1].length += n
                self.disk_end += n
                written += n
        except OSError as exc:
            self._note_write_failed(exc)
        else:
            self._note_write_worked()
        return written

    def _segment_fd(self) -> tuple[int, int]:
        """The newest segment's fd and the room left in it; a new segment once it is full."""
        if self.fd is not None and self.segments[-1].length < SEGMENT_BYTES:
            return self.fd, SEGMENT_BYTES - self.segments[-1].length
        self._close_segment()
        path = self.dir / f"output.{self.disk_end:016d}.log"
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.segments.append(Segment(self.disk_end, 0, path))
        return self.fd, SEGMENT_BYTES

    def _close_segment(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _note_write_failed(self, exc: OSError) -> None:
        if self.write_problem is None:
            self.write_problem = describe_write_error(self.dir, exc)
            log.warning("agent_disk_full", path=str(self.dir), problem=self.write_problem,
                        held_bytes=len(self.held))

    def _note_write_worked(self) -> None:
        if self.write_problem is not None:
            self.write_problem = None
            log.info("agent_disk_recovered", path=str(self.dir))

    # -- the sender's side ------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Up to max_bytes of output from `offset` (at least base): from disk, then from memory."""
        with self.lock:
            segments = [(s.start, s.length, s.path) for s in self.segments if s.end > offset]
            disk_end = self.disk_end
            skip = max(0, offset - disk_end)
            held = bytes(self.held[skip:skip + max_bytes])
        if segments and offset < segments[0][0]:
            return b""  # acknowledged and dropped: the caller never asks for it again
        out = bytearray()
        for start, length, path in segments:
            if offset + len(out) >= disk_end or len(out) >= max_bytes:
                break
            at = offset + len(out) - start
            with open(path, "rb") as fh:
                fh.seek(at)
                out += fh.read(min(length - at, max_bytes - len(out)))
        if offset + len(out) >= disk_end:
            out += held[:max_bytes - len(out)]
        return bytes(out)

    def acknowledge(self, offset: int) -> None:
        """The server holds everything below `offset`: drop it from memory and disk."""
        with self.lock:
            self.acked = max(self.acked, offset)
            if self.held and offset > self.disk_end:
                dropped = min(offset - self.disk_end, len(self.held))
                del self.held[:dropped]
                self.disk_end += dropped
                self._close_segment()  # the next bytes on disk start past a gap: a new segment
                self.room.notify_all()
            while self.segments and self.segments[0].end <= offset and (
                    len(self.segments) > 1 or self.fd is None):
                with contextlib.suppress(OSError):  # a file left behind is below the offset: never read again
                    self.segments.pop(0).path.unlink(missing_ok=True)

    def close(self) -> None:
        with self.lock:
            self._close_segment()
