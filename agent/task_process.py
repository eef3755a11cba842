"""A sub-agent's task: `bash script.sh` and every process it starts, from its start until its end is
fixed. The end is fixed once bash exited, nothing of the task is left (what it left behind is killed:
its GPUs must come free) and the pipe gave its last byte, or PIPE_DRAIN_S after that (a stray
process still holding the pipe).
"""
from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Optional

import structlog

from agent import process_tree
from agent.output_spool import OutputSpool
from agent.resource_util import ResourceUtil
from agent.spool import Spool, TaskEnd
from agent.task_killer import KILL_CHECK_INTERVAL_S, TaskKiller
from agent.task_start import start_bash
from task_common.protocol import ProcessGpuUsage, ProcessUsage

log = structlog.get_logger()

MIN_POLL_INTERVAL_S = 0.01  # spool size checks while the task is talkative (and at its start)
MAX_POLL_INTERVAL_S = 0.1  # ... slowing down to this while it is quiet; its exit wakes us at once
PIPE_DRAIN_S = 2.0  # after the task's last process: time for the pipe's last bytes (a stray holder: go on)


class TaskProcess:
    queue_note: Optional[str] = None  # why it does not run yet: only a Slurm job has one (agent/slurm_job.py)

    def __init__(self, spool: Spool, sub_agent_id: str, kill_grace_s: float):
        self.spool = spool
        self.killer = TaskKiller(marker=sub_agent_id, grace_s=kill_grace_s)
        self.proc: Optional[subprocess.Popen] = None
        self.exit_fd: Optional[int] = None  # a pidfd of bash: readable once it exited
        self.output: Optional[OutputSpool] = None
        self.returncode: Optional[int] = None  # bash's, once it exited
        self.next_leftover_check = 0.0
        self.eof_deadline: Optional[float] = None  # set once no process of the task is left
        self.poll_interval_s = MIN_POLL_INTERVAL_S
        self.seen_size = 0
        self.stop_reason: Optional[str] = None  # the sub-agent stopped the task itself (its time limit)

    def start(self, *, cwd: Path, env: dict[str, str], cpu_ids: list[int]) -> bool:
        """Start `bash script.sh` (the main agent wrote it) with its output going into the spool."""
        try:
            self.proc, pipe_fd = start_bash(self.spool.script, cwd=cwd, env=env, cpu_ids=cpu_ids)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("task_process_start_failed", error=str(exc))
            return False
        self.output = OutputSpool(self.spool.dir)
        self.output.start_reader(pipe_fd)
        self.spool.write_pgid(self.proc.pid)
        self.killer.pgid = self.proc.pid
        with contextlib.suppress(OSError, AttributeError):
            self.exit_fd = os.pidfd_open(self.proc.pid)
        log.info("task_process_started", pid=self.proc.pid, cpu_ids=cpu_ids)
        return True

    def resume(self, end: TaskEnd) -> bool:
        """Take up the output an earlier sub-agent of this task left in the spool; False if it is not all there."""
        self.output = OutputSpool.reopen(self.spool.dir, end.final_size)
        self.returncode = end.returncode
        return self.output.size == end.final_size

    @property
    def size(self) -> int:
        """Bytes of output so far."""
        return self.output.size if self.output else 0

    def has_exited(self) -> bool:
        """Has bash exited? Meanwhile its orphaned descendants that exited are reaped (we are their subreaper)."""
        if self.returncode is None:
            self.returncode = self.proc.poll()
            if self.returncode is None:
                process_tree.reap_exited_children(keep=[self.proc.pid])
                return False
            log.info("task_process_exited", returncode=self.returncode)
        return True

    def fixed_end(self) -> Optional[TaskEnd]:
        """After bash exited: the end once nothing of the task is left and its pipe is drained, else None."""
        now = time.monotonic()
        if self.eof_deadline is None:
            if now < self.next_leftover_check:
                return None
            self.next_leftover_check = now + KILL_CHECK_INTERVAL_S
            if self.killer.has_leftovers():
                self.kill("task ended with processes left behind")
                return None
            self.eof_deadline = now + PIPE_DRAIN_S
        if not self.output.eof.is_set() and now < self.eof_deadline:
            return None
        end = TaskEnd(self.returncode, self.output.size, self.stop_reason)
        log.info("task_output_complete", returncode=end.returncode, final_size=end.final_size,
                 pipe_closed=self.output.eof.is_set(), stop_reason=end.stop_reason)
        return end

    def kill(self, reason: str) -> None:
        """SIGTERM the task's processes now, SIGKILL after the grace (escalate_kill)."""
        self.killer.request(reason)

    def stop(self, reason: str) -> None:
        """Stop the task as a cancel does, and fail it for reason (its end's stop_reason); nothing new
        when a kill is already under way (a cancel came first: that is how it ends)."""
        if self.killer.deadline is None:
            self.stop_reason = reason
            self.kill(reason)

    def escalate_kill(self) -> None:
        self.killer.escalate()

    def kill_now(self) -> None:
        self.killer.kill_now()

    def usage(self, resources: ResourceUtil, gpu_ids: list[int]) -> ProcessUsage:
        """CPU and memory of the task's processes (this sub-agent's tree), and its GPUs as the main agent read them."""
        me = os.getpid()
        processes = resources.tree_processes(me, include_root=False)
        memory = resources.get_memory_usage(me, processes=processes)
        return ProcessUsage(cpu_usage=resources.get_cpu_usage(me, processes=processes),
                            memory_used_mib=memory.used_mib, memory_usage=memory.percent,
                            gpus=self.spool.read_gpu_usage() or [ProcessGpuUsage(index=i) for i in gpu_ids])

    def wait_for_change(self) -> None:
        """Sleep until bash exits or the next check: short while output flows, longer while quiet."""
        size = self.size
        if size != self.seen_size or self.returncode is not None:
            self.seen_size, self.poll_interval_s = size, MIN_POLL_INTERVAL_S
        else:
            self.poll_interval_s = min(MAX_POLL_INTERVAL_S, self.poll_interval_s * 1.5)
        if self.exit_fd is not None and self.returncode is None:
            select.select([self.exit_fd], [], [], self.poll_interval_s)
        elif self.output is not None and not self.output.eof.is_set():
            self.output.eof.wait(self.poll_interval_s)  # the pipe's last bytes: wakes as they arrive
        else:
            time.sleep(self.poll_interval_s)

    def close(self) -> None:
        if self.output:
            self.output.close()
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
