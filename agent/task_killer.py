"""Ending a task's whole process tree: SIGTERM now, SIGKILL after the grace period, re-searched
every KILL_CHECK_INTERVAL_S until nothing of the task is left (grandchildren that left the group
included: the sub-agent is their child subreaper, and each carries the sub-agent's marker)."""
from __future__ import annotations

import os
import signal
import time
from typing import Optional

import psutil
import structlog

from agent import process_tree

log = structlog.get_logger()

KILL_CHECK_INTERVAL_S = 0.25  # how often leftovers are searched for while a kill is under way


class TaskKiller:
    def __init__(self, marker: str, grace_s: float):
        self.marker, self.grace_s = marker, grace_s
        self.is_subreaper = process_tree.become_child_subreaper()
        self.pgid: Optional[int] = None  # bash's pid = its process group, once started
        self.deadline: Optional[float] = None  # SIGKILL from then on
        self.next_sigkill_at = 0.0

    def task_processes(self) -> list[psutil.Process]:
        return process_tree.find_task_processes(
            pgid=self.pgid, marker=self.marker, roots=psutil.Process().children(),
            scan_all=not self.is_subreaper)

    def has_leftovers(self) -> bool:
        """After bash: does any process of the task remain? Zombies are collected on the way."""
        if not self.is_subreaper:
            return bool(self.task_processes())
        while True:  # as subreaper every process of the task is our descendant: any child = leftovers
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True

    def request(self, reason: str) -> None:
        """SIGTERM every process of the task now; escalate() sends SIGKILL after the grace period."""
        if self.deadline is not None:
            return
        self.deadline = time.monotonic() + self.grace_s
        process_tree.kill_group(self.pgid, signal.SIGTERM)
        sent = process_tree.signal_processes(self.task_processes(), signal.SIGTERM)
        log.info("task_kill_sent", signal="SIGTERM", reason=reason, processes=sent, grace_s=self.grace_s)

    def escalate(self) -> None:
        """After the grace period, SIGKILL whatever of the task is still there (re-searched each time)."""
        now = time.monotonic()
        if self.deadline is None or now < max(self.deadline, self.next_sigkill_at):
            return
        self.next_sigkill_at = now + KILL_CHECK_INTERVAL_S
        self.kill_now()

    def kill_now(self) -> None:
        process_tree.kill_group(self.pgid, signal.SIGKILL)
        sent = process_tree.signal_processes(self.task_processes(), signal.SIGKILL)
        if sent:
            log.info("task_kill_sent", signal="SIGKILL", processes=sent)
