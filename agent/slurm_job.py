"""A sub-agent's task as a Slurm job (main agent started with --executor slurm): what TaskProcess is
for bash, with the same interface, so the sub-agent's beats, output offsets, resends, stop and end
report stay one implementation (agent/sub_agent.py).

The sub-agent submits the job (sbatch --parsable) and keeps its id in the spool (`slurm.job`): a
restarted main agent starts a sub-agent with `adopt_job` that follows the same job by that id; it is
never submitted twice. The job writes stdout and stderr to one file in the spool (`slurm.out`,
--open-mode=append), which is the output itself: its byte offsets are the task log's, and it is kept
until the server has every byte, so an adopting sub-agent resends from whatever the server holds.
The spool dir must be on a filesystem the compute nodes share (the state dir: e.g. under $HOME).

The state is polled every POLL_INTERVAL_S (scontrol, then sacct); a job not running yet puts Slurm's
reason in queue_note (the task's status_reason). Slurm enforces the time limit itself (--time).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

import structlog

from agent import slurm
from agent.resource_util import ResourceUtil
from agent.spool import Spool, TaskEnd
from task_common.protocol import ProcessUsage, TaskAssignment

log = structlog.get_logger()

POLL_INTERVAL_S = 1.0  # scontrol per job at most this often
USAGE_INTERVAL_S = 10.0  # sstat at most this often (and not at all once it said it has nothing)
JOB_FILE, OUTPUT_FILE, BATCH_FILE = "slurm.job", "slurm.out", "job.sh"


def recorded_job_id(spool: Spool) -> Optional[str]:
    try:
        job_id = (spool.dir / JOB_FILE).read_text().strip()
    except OSError:
        return None
    return job_id if job_id.isdigit() else None


class JobOutput:
    """The job's output file as the sub-agent's output (what Beats and SubAgent use of OutputSpool).
    Nothing is dropped on acknowledgement: the file goes with the spool once the server has it all."""

    def __init__(self, path: Path):
        self.path = path
        self.eof = threading.Event()
        self.base = 0

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, offset: int, max_bytes: int) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return fh.read(max_bytes)
        except FileNotFoundError:
            return b""

    def acknowledge(self, offset: int) -> None:
        pass

    def flush_held(self) -> bool:
        return True

    def close(self) -> None:
        pass


class SlurmJob:
    def __init__(self, spool: Spool, settings: slurm.SlurmSettings, task: TaskAssignment):
        self.spool, self.settings, self.task = spool, settings, task
        self.output = JobOutput(spool.dir / OUTPUT_FILE)
        self.job_id: Optional[str] = None
        self.job: Optional[slurm.JobState] = None  # the last state read
        self.is_gone = False  # Slurm no longer knows the job
        self.polled_at = self.usage_at = float("-inf")
        self.cancel_reason: Optional[str] = None
        self.memory_mib: Optional[float] = 0.0  # None: sstat has nothing (no job accounting)
        self.queue_note: Optional[str] = None  # Slurm's reason while the job does not run yet; "" after
        self.stop_reason: Optional[str] = None
        self.returncode: Optional[int] = None

    def start(self, *, cwd: Path, env: dict[str, str], cpu_ids: list[int]) -> bool:
        """Submit the job (cpu_ids: Slurm pins); False when sbatch refused it (said in the job's output)."""
        env = {k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES"}  # Slurm sets it for its GPUs
        batch = self.spool.dir / BATCH_FILE
        batch.write_text("#!/bin/bash\n" + self.task.script_content, encoding="utf-8")
        args = slurm.sbatch_args(self.settings, task_id=self.task.task_id, cpu_cores=self.task.cpu_cores,
                                 gpu_count=self.task.gpu_count, time_limit_s=self.task.time_limit_s,
                                 cwd=str(cwd), output=str(self.output.path), script=str(batch))
        try:
            self.job_id = slurm.submit(args, env)
        except slurm.SlurmUnavailable as exc:
            log.error("slurm_job_submit_failed", error=str(exc))
            return False
        (self.spool.dir / JOB_FILE).write_text(self.job_id)
        structlog.contextvars.bind_contextvars(slurm_job_id=self.job_id)
        log.info("slurm_job_submitted", cpu_cores=self.task.cpu_cores, gpu_count=self.task.gpu_count,
                 time_limit_s=self.task.time_limit_s)
        return True

    def adopt(self) -> bool:
        """Follow the job an earlier sub-agent of this task submitted (its id in the spool)."""
        self.job_id = recorded_job_id(self.spool)
        if self.job_id is None:
            return False
        structlog.contextvars.bind_contextvars(slurm_job_id=self.job_id)
        log.info("slurm_job_adopted", output_size=self.output.size)
        return True

    def resume(self, end: TaskEnd) -> bool:
        self.returncode = end.returncode
        self.output.eof.set()
        return self.output.size >= end.final_size

    @property
    def size(self) -> int:
        return self.output.size

    def has_exited(self) -> bool:
        """Has the job reached a final state (or been forgotten by Slurm)? Polled every POLL_INTERVAL_S."""
        if self.returncode is not None:
            return True
        if time.monotonic() - self.polled_at < POLL_INTERVAL_S:
            return False
        self.polled_at = time.monotonic()
        try:
            job = slurm.query(self.job_id)
        except slurm.SlurmUnavailable as exc:
            log.warning("slurm_unavailable", error=str(exc))
            return False
        self.note_state(job)
        if job is not None and not job.is_final:
            return False
        self.returncode, reason = slurm.describe_end(job, job_id=self.job_id,
                                                     was_cancelled=self.cancel_reason is not None)
        self.stop_reason = self.stop_reason or reason
        return True

    def note_state(self, job: Optional[slurm.JobState]) -> None:
        if job != self.job:
            log.info("slurm_job_state", state=job.state if job else None, reason=job.reason if job else None)
        self.job = job
        if job is not None:
            self.queue_note = slurm.pending_note(job)

    def fixed_end(self) -> Optional[TaskEnd]:
        """Slurm wrote the job's last byte before it called the job final: the end is fixed at once."""
        end = TaskEnd(self.returncode, self.output.size, self.stop_reason)
        log.info("task_output_complete", returncode=end.returncode, final_size=end.final_size,
                 stop_reason=end.stop_reason)
        return end

    def kill(self, reason: str) -> None:
        """scancel (once): the job's end is then read from Slurm as any other."""
        if self.cancel_reason is not None or self.job_id is None:
            return
        self.cancel_reason = reason
        try:
            slurm.cancel(self.job_id)
        except slurm.SlurmUnavailable as exc:
            log.warning("slurm_unavailable", error=str(exc))
            self.cancel_reason = None  # tried again on the next request
            return
        log.info("slurm_job_cancelled", reason=reason)

    def stop(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.stop_reason = reason
            self.kill(reason)

    def escalate_kill(self) -> None:
        pass  # Slurm escalates itself (KillWait)

    def kill_now(self) -> None:
        self.kill("the server no longer runs the task")

    def usage(self, resources: ResourceUtil, gpu_ids: list[int]) -> ProcessUsage:
        """Memory from sstat where Slurm gathers it; CPU and GPUs are not seen from the login node."""
        now = time.monotonic()
        if self.memory_mib is not None and self.job_id and now - self.usage_at >= USAGE_INTERVAL_S \
                and self.job is not None and self.job.state == "RUNNING":
            self.usage_at = now
            try:
                self.memory_mib = slurm.memory_used_mib(self.job_id)
            except slurm.SlurmUnavailable:
                pass
        return ProcessUsage(memory_used_mib=self.memory_mib or 0.0)

    def wait_for_change(self) -> None:
        time.sleep(0.1)

    def close(self) -> None:
        pass
