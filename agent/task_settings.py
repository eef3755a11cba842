"""A task's run settings that the agent applies (its `env` is set in agent/task_start.py):

- `work_dir`: where its bash runs: absolute, or relative to the agent's --work-dir (None: that dir).
  The main agent checks it before it forks the sub-agent; one that is missing, not a directory or
  not enterable fails the task with that reason (MainHeartbeat.died) and nothing is started.
- `time_limit_s`: counted from bash's start; at the limit the sub-agent stops the task's tree the way
  a cancel does (TaskProcess.kill) and reports the end with a stop_reason, which fails the task.
"""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Optional


def resolve_work_dir(agent_work_dir: Path, work_dir: Optional[str]) -> Path:
    """The task's directory: an absolute work_dir as it is, a relative one under the agent's --work-dir."""
    return Path(agent_work_dir) / work_dir if work_dir else Path(agent_work_dir)


def work_dir_problem(path: Path, agent_name: str) -> Optional[str]:
    """Why bash cannot run in path (a status_reason for people), or None when it can."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"work_dir {path} does not exist on {agent_name}"
    except OSError as exc:
        return f"work_dir {path} is not accessible on {agent_name} ({exc.strerror or exc})"
    if not stat.S_ISDIR(mode):
        return f"work_dir {path} is not a directory on {agent_name}"
    if not os.access(path, os.X_OK):
        return f"work_dir {path} is not accessible on {agent_name} (permission denied)"
    return None


class TimeLimit:
    """A task's time limit, from the moment its bash started; 0 seconds: none."""

    def __init__(self, limit_s: int):
        self.limit_s = limit_s
        self.deadline: Optional[float] = None

    def start(self) -> None:
        if self.limit_s > 0:
            self.deadline = time.monotonic() + self.limit_s

    def is_just_reached(self) -> bool:
        """True once: at the first check past the limit."""
        if self.deadline is None or time.monotonic() < self.deadline:
            return False
        self.deadline = None
        return True

    @property
    def reason(self) -> str:
        return f"time limit of {self.limit_s}s reached"
