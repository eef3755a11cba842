"""The agent box's disk: a full one is a condition the main agent reports and waits out, never a
crash; and the state dir's per-task files are pruned, so a long life does not fill it by itself.

DiskWatch checks the file systems of the state dir and the work dir once per tick (statvfs) and
hears of the agent's writes that failed. The heartbeat carries its `problem`; the server shows it on
the agent and hands the agent no new task while it is set, so tasks wait (or go to other agents)
until space returns, and then run by themselves.
"""
from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path
from typing import Iterable, Optional

import structlog

log = structlog.get_logger()

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_LOW_BYTES = 256 * 1024  # less free than this where the agent writes: its disk counts as full
FAILED_WRITE_HOLD_S = 10.0  # a refused write counts as a disk problem at least this long
KEEP_SUB_AGENT_LOGS = 100  # logs of finished sub-agents kept in <state-dir>/logs, newest first
SHARED_STDERR_ROTATE_BYTES = 20 * 1024 * 1024  # sub-agents.stderr (warnings of all sub-agents): then .1
PROBLEM_MAX_CHARS = 1000  # MainHeartbeat.disk_problem's limit (a deep path must not break the heartbeat)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def describe_write_error(path: Path, exc: OSError) -> str:
    return f"{path}: {exc.strerror or exc}"


def free_bytes(path: Path) -> Optional[int]:
    """Bytes an unprivileged writer may still use on path's file system; None when it cannot be read."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


class DiskWatch:
    """Whether the agent can write where it must: `problem` is None, or a line for people."""

    def __init__(self, name: str, paths: Iterable[Path]):
        self.name, self.paths = name, [Path(p) for p in paths]
        self.failed: dict[Path, tuple[float, str]] = {}  # path of a refused write -> (until when, problem)
        self.problem: Optional[str] = None

    def report(self, path: Path, exc: OSError) -> str:
        """A write under path failed: a disk problem for FAILED_WRITE_HOLD_S at least. Returns the problem."""
        what = "disk full" if is_disk_full(exc) else f"disk problem ({exc.strerror or exc})"
        problem = f"{what} on {self.name}: {path}"[:PROBLEM_MAX_CHARS]
        self.failed[Path(path)] = (time.monotonic() + FAILED_WRITE_HOLD_S, problem)
        self._set(problem)
        return problem

    def check(self) -> Optional[str]:
        """Once per tick: a recent refused write, else a watched path with less than DISK_LOW_BYTES free."""
        now = time.monotonic()
        self.failed = {path: held for path, held in self.failed.items() if held[0] > now}
        problem = next((held[1] for held in self.failed.values()), None)
        for path in self.paths if problem is None else []:
            free = free_bytes(path)
            if free is not None and free < DISK_LOW_BYTES:
                problem = f"disk full on {self.name}: {path}"[:PROBLEM_MAX_CHARS]
                break
        self._set(problem)
        return problem

    def _set(self, problem: Optional[str]) -> None:
        if problem == self.problem:
            return
        if problem is not None:
            log.warning("agent_disk_full", problem=problem)
        else:
            log.info("agent_disk_recovered", problem_was=self.problem)
        self.problem = problem


class SubAgentLogs:
    """Keeps the newest KEEP_SUB_AGENT_LOGS logs of finished sub-agents (`sub-agent-<task>.log`) and
    deletes older ones: one file per task for ever filled the state dir (~4 KiB per task)."""

    def __init__(self, log_dir: Path, running_task_ids: Iterable[int] = (), keep: int = KEEP_SUB_AGENT_LOGS):
        self.dir, self.keep = Path(log_dir), keep
        running = {self.path(task_id) for task_id in running_task_ids}
        found = []
        for path in self.dir.glob("sub-agent-*.log"):
            with contextlib.suppress(OSError):
                if path not in running:
                    found.append((path.stat().st_mtime, path))
        self.finished_logs: dict[Path, None] = {path: None for _, path in sorted(found)}  # oldest first
        self.prune()

    def path(self, task_id: int) -> Path:
        return self.dir / f"sub-agent-{task_id}.log"

    def finished(self, task_id: int) -> None:
        path = self.path(task_id)
        self.finished_logs.pop(path, None)
        self.finished_logs[path] = None
        self.prune()

    def prune(self) -> None:
        while len(self.finished_logs) > self.keep:
            oldest = next(iter(self.finished_logs))
            del self.finished_logs[oldest]
            with contextlib.suppress(OSError):
                oldest.unlink(missing_ok=True)
        shared = self.dir / "sub-agents.stderr"
        with contextlib.suppress(OSError):
            if shared.stat().st_size > SHARED_STDERR_ROTATE_BYTES:
                os.replace(shared, shared.with_name(shared.name + ".1"))
