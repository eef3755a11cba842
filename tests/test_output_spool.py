"""The sub-agent's output spool (agent/output_spool.py) on its own: bytes from a pipe reach the
sender in order; what the server acknowledged leaves the disk, so it holds the backlog plus at most
one segment; a disk that refuses writes loses nothing (memory holds the bytes, in order); a later
sub-agent finds exactly the bytes still owed."""
from __future__ import annotations

import errno
import os
import threading

import pytest

from agent import output_spool
from agent.output_spool import SEGMENT_BYTES, OutputSpool
from tests.helpers import wait_for

MIB = 1024 * 1024


def feed(spool: OutputSpool, data: bytes) -> threading.Thread:
    """Write data into a pipe the spool reads, from a thread (a pipe blocks when full), then close it."""
    read_fd, write_fd = os.pipe()
    spool.start_reader(read_fd)

    def write() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def disk_bytes(directory) -> int:
    return sum(p.stat().st_size for p in directory.glob("output.*.log"))


def pattern(size: int) -> bytes:
    """Bytes whose every 1 KiB block names its position: a byte lost, doubled or moved shows."""
    return b"".join(f"{i:09d}\n".encode() * 100 + b"x" * 24 for i in range(size // 1024 + 1))[:size]


def deliver(spool: OutputSpool, total: int, chunk: int, during=None) -> bytes:
    """What a sender gets by reading from its acknowledged offset and acknowledging each chunk."""
    got, offset = bytearray(), spool.base
    while offset < total:
        wait_for(lambda: spool.size > offset, 10, message=f"output past {offset}")
        piece = spool.read(offset, chunk)
        got += piece
        offset += len(piece)
        spool.acknowledge(offset)
        if during:
            during()
    return bytes(got)


def test_output_reaches_the_sender_in_order_and_the_disk_holds_only_the_backlog(tmp_path):
    data = pattern(12 * MIB)
    spool = OutputSpool(tmp_path)
    peak = []
    feed(spool, data)
    got = deliver(spool, len(data), 256 * 1024,
                  during=lambda: peak.append(disk_bytes(tmp_path) - (spool.size - spool.acked)))
    assert got == data
    wait_for(spool.eof.is_set, 10, message="the end of the pipe")
    # acknowledged segments are deleted: on disk only the backlog and the acknowledged part of one segment
    assert max(peak) <= SEGMENT_BYTES
    assert disk_bytes(tmp_path) <= SEGMENT_BYTES


def test_a_disk_that_refuses_writes_loses_nothing_and_takes_the_bytes_again_later(tmp_path, monkeypatch):
    real_write, refusing = os.write, threading.Event()
    refusing.set()

    def write(fd, data):
        if refusing.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(output_spool.os, "write", write)
    data = pattern(3 * MIB)
    spool = OutputSpool(tmp_path)
    feed(spool, data)
    wait_for(lambda: spool.size == len(data), 10, message="all the output, held in memory")
    assert spool.write_problem and "No space left on device" in spool.write_problem
    assert spool.read(0, 100) == data[:100]  # sent straight from memory
    assert spool.read(0, len(data)) == data

    refusing.clear()  # space again: the held bytes go to disk, the offsets unchanged
    assert spool.flush_held()
    assert spool.write_problem is None and disk_bytes(tmp_path) == len(data)
    assert deliver(spool, len(data), MIB) == data


def test_acknowledged_bytes_held_in_memory_are_dropped_and_the_disk_resumes_past_them(tmp_path, monkeypatch):
    real_write, refusing = os.write, [True]
    monkeypatch.setattr(output_spool.os, "write",
                        lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")) if refusing[0]
                        else real_write(fd, data))
    spool = OutputSpool(tmp_path)
    feed(spool, b"a" * 1000)
    wait_for(lambda: spool.size == 1000, 10, message="the output in memory")
    spool.acknowledge(600)  # the server has 600 of them: only 400 are still owed
    refusing[0] = False
    assert spool.flush_held()
    assert spool.read(600, 1000) == b"a" * 400
    assert [p.name for p in tmp_path.glob("output.*.log")] == ["output.0000000000000600.log"]


def test_a_later_sub_agent_finds_exactly_the_bytes_still_owed(tmp_path):
    data = pattern(3 * MIB + 123)
    spool = OutputSpool(tmp_path)
    feed(spool, data).join(10)
    wait_for(spool.eof.is_set, 10, message="the end of the pipe")
    spool.acknowledge(SEGMENT_BYTES + 5)  # the first segment is gone, the second one still needed
    spool.close()

    again = OutputSpool.reopen(tmp_path, len(data))
    assert again.base == SEGMENT_BYTES and again.size == len(data)
    assert again.read(again.base, len(data)) == data[SEGMENT_BYTES:]
    assert OutputSpool.reopen(tmp_path / "nothing-left", 77).size == 77  # all acknowledged before


def test_unacknowledged_output_past_the_backlog_limit_waits_in_memory_not_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(output_spool, "BACKLOG_MAX_BYTES", 100_000)
    monkeypatch.setattr(output_spool, "DISK_RETRY_S", 0.0)
    data = pattern(300_000)
    spool = OutputSpool(tmp_path)
    feed(spool, data)
    wait_for(lambda: spool.size == len(data), 10, message="all the output")
    assert disk_bytes(tmp_path) == 100_000 and spool.write_problem is None
    assert deliver(spool, len(data), 50_000) == data


@pytest.mark.timeout(30)
def test_memory_full_stops_reading_the_pipe_instead_of_dropping(tmp_path, monkeypatch):
    monkeypatch.setattr(output_spool, "MEMORY_MAX_BYTES", 200_000)
    monkeypatch.setattr(output_spool.os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "x")))
    data = pattern(2 * MIB)
    spool = OutputSpool(tmp_path)
    writer = feed(spool, data)
    wait_for(lambda: spool.size >= 200_000, 10, message="memory to fill")
    writer.join(0.5)
    assert writer.is_alive() and spool.size < len(data)  # bash would wait here: the pipe is full
    assert deliver(spool, len(data), 100_000) == data  # acknowledged bytes make room: all of it arrives
