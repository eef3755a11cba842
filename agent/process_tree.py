"""Finding and killing every process of a task, including those that left its process group.

A task is found three ways, because each alone can miss processes: its process group (bash and
everything that kept the group), the descendants of given roots (a child subreaper collects orphans
that setsid'd and double-forked away), and the marker variable every task process inherits in its
environment (catches the rest, unless a process scrubbed its environment).
"""
from __future__ import annotations

import ctypes
import os
import signal
from typing import Iterable, Optional

import psutil
import structlog

log = structlog.get_logger()

MARKER_ENV = "TASK_SYSTEM_SUB_AGENT_ID"  # set in each task's environment to its sub-agent id
PR_SET_CHILD_SUBREAPER = 36


def become_child_subreaper() -> bool:
    """Orphaned descendants get reparented to us (not init), so we can still find and kill them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def find_task_processes(*, pgid: Optional[int], marker: Optional[str],
                        roots: Iterable[psutil.Process] = (), scan_all: bool = True) -> list[psutil.Process]:
    """Every live process of one task: the given roots and their descendants, its group, its marker.

    scan_all=False trusts the roots alone: right for a subreaper, whose task cannot escape its subtree.
    """
    found: dict[int, psutil.Process] = {}
    for root in roots:
        for pid in [root.pid, *descendant_pids(root.pid)]:
            try:
                found.setdefault(pid, root if pid == root.pid else psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
    if not scan_all:
        return [p for p in found.values() if p.pid != os.getpid() and _is_alive(p)]
    own_uid = os.getuid()
    for proc in psutil.process_iter(["uids"]):
        if proc.pid in found or proc.pid == os.getpid() or not proc.info["uids"] \
                or proc.info["uids"].real != own_uid:
            continue
        if _in_group(proc.pid, pgid) or _has_marker(proc, marker):
            found[proc.pid] = proc
    found.pop(os.getpid(), None)
    return [p for p in found.values() if _is_alive(p)]


def descendant_pids(pid: int) -> list[int]:
    """Pids below pid, read from /proc/<pid>/task/*/children: a few small reads, where psutil's
    children() reads the stat file of every process on the box (it matters with 100 sub-agents)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = [int(k) for tid in os.listdir(f"/proc/{parent}/task")
                    for k in _read(f"/proc/{parent}/task/{tid}/children").split()]
        except FileNotFoundError:
            continue  # the process is gone (or the kernel lacks CONFIG_PROC_CHILDREN: see below)
        except OSError:
            kids = []
        found += kids
        todo += kids
    if not found and not os.path.exists(f"/proc/{pid}/task/{pid}/children") and psutil.pid_exists(pid):
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    return found


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def signal_processes(processes: Iterable[psutil.Process], sig: int) -> int:
    """Send sig to each process (already-gone ones are fine); returns how many were signalled."""
    sent = 0
    for proc in processes:
        try:
            proc.send_signal(sig)
            sent += 1
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
        except psutil.AccessDenied:
            log.warning("task_kill_failed", pid=proc.pid, reason="access denied")
    return sent


def kill_group(pgid: Optional[int], sig: int = signal.SIGKILL) -> None:
    if pgid and pgid > 1:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reap_exited_children(keep: Iterable[int] = ()) -> None:
    """Collect the exit status of orphans reparented to us (we are a subreaper), so no zombie lingers.

    Children in `keep` are left alone: someone else (Popen, a waitpid loop) reads their status. Peeking
    with WNOWAIT costs a syscall, where listing children would scan all of /proc.
    """
    keep = set(keep)
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in keep:
            return
        os.waitpid(info.si_pid, 0)


def _in_group(pid: int, pgid: Optional[int]) -> bool:
    if not pgid:
        return False
    try:
        return os.getpgid(pid) == pgid
    except (ProcessLookupError, PermissionError):
        return False


def _has_marker(proc: psutil.Process, marker: Optional[str]) -> bool:
    if not marker:
        return False
    try:
        return proc.environ().get(MARKER_ENV) == marker
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False


def _is_alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
