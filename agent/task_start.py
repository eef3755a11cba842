"""Starting a task's bash: its environment, its cores, its priority, and its output into a pipe.

The output goes into a pipe that the sub-agent reads (agent/output_spool.py), not straight into a
file: when the spool's disk is full the sub-agent still receives every byte (bash's own "No space
left on device" included) and can hold it in memory and send it, where bash writing to a file on
that disk would lose it.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import structlog

from agent import process_tree
from task_common.protocol import TaskAssignment

log = structlog.get_logger()

TASK_NICE = 5  # tasks run this much below the agents, so a saturated box still heartbeats


def task_environment(task: TaskAssignment, server_url: str, sub_agent_id: str) -> dict[str, str]:
    """The agent's environment, then our defaults, then the task's own `env` (its OMP_NUM_THREADS
    wins over ours), then the system's variables, which a task can never override (TASK_*, CUDA_*)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if task.cpu_cores > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(task.cpu_cores)
    env.update(task.env)
    env.update(TASK_ID=str(task.task_id), TASK_NAME=task.name, TASK_SERVER_URL=server_url,
               CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=",".join(str(i) for i in task.gpu_ids))
    env[process_tree.MARKER_ENV] = sub_agent_id
    return env


def start_bash(script: Path, *, cwd: Path, env: dict[str, str], cpu_ids: list[int]) -> tuple[subprocess.Popen, int]:
    """`bash script` in its own session, stdin /dev/null, stdout+stderr into one pipe (so arrival
    order is kept), pinned to cpu_ids and TASK_NICE lower. Returns (process, the pipe's read end)."""
    read_fd, write_fd = os.pipe()  # both close-on-exec: bash gets the write end as its fds 1 and 2 only
    try:
        with _pinned_children(cpu_ids):
            proc = subprocess.Popen(["bash", str(script)], stdin=subprocess.DEVNULL, stdout=write_fd,
                                    stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # ours must go, or the end of the output (EOF) never comes
    _lower_priority(proc.pid)
    return proc, read_fd


def _lower_priority(pgid: int) -> None:
    """TASK_NICE below us for bash's whole process group (so for whatever it started already too).

    Not `nice -n 5 bash`: that exec costs ~1.3 ms of CPU per task, and a preexec_fn a full fork (below).
    """
    try:
        os.setpriority(os.PRIO_PGRP, pgid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + TASK_NICE))
    except OSError as exc:  # the group is already gone (a task that ended at once): nothing to slow down
        log.debug("task_priority_not_set", error=str(exc))


@contextlib.contextmanager
def _pinned_children(cpu_ids: list[int]):
    """Pin ourselves while the task starts, so it inherits the pinning from its first instruction.

    (A preexec_fn would do it in the child, but forces a full fork: ~50 ms instead of ~5 on a busy box.)
    """
    if not cpu_ids:
        yield
        return
    own = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpu_ids)
    except OSError:
        pass  # an unpinned task is still a correct task
    try:
        yield
    finally:
        os.sched_setaffinity(0, own)
