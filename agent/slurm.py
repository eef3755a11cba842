"""Slurm's commands as a Slurm main agent (--executor slurm) uses them, and what their answers mean.

  sbatch --parsable   submit a task's job; the answer is its id (agent/slurm_job.py keeps it in the spool)
  scontrol show job   the job's state, reason and exit code (Slurm keeps a finished job MinJobAge,
                      300 s by default); sacct after that, where accounting exists
  scancel             cancel it
  sstat               its memory use, where job accounting exists; none otherwise (never an error)

describe_end maps a finished job to the task's end: (return code, stop_reason); a stop_reason fails
the task with it (the server's rule for an agent that stopped a task itself).
"""
from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from typing import Optional

import structlog

log = structlog.get_logger()

COMMAND_TIMEOUT_S = 30.0
DEFAULT_MAX_JOBS = 100
# Job states after which Slurm runs nothing more of the job (COMPLETING is not one: it is still ending).
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY",
                          "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"})


class SlurmUnavailable(Exception):
    """A Slurm command failed for a reason other than the answer we asked for (slurmctld down, ...)."""


@dataclass
class SlurmSettings:
    """The main agent's --slurm-* flags."""

    partition: Optional[str] = None
    account: Optional[str] = None
    options: list[str] = field(default_factory=list)  # extra sbatch arguments, as given
    max_jobs: int = DEFAULT_MAX_JOBS


@dataclass(frozen=True)
class JobState:
    state: str  # RUNNING, PENDING, COMPLETED, ... (Slurm's word, without "by <uid>")
    reason: str  # Slurm's Reason ("Resources", "NonZeroExitCode", "None", ...)
    returncode: Optional[int] = None  # Popen-style: -N when a signal N ended it

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


def free_slots(settings: Optional[SlurmSettings], jobs: int) -> Optional[int]:
    """How many more tasks a Slurm agent takes (--slurm-max-jobs less its jobs): Slurm places them,
    whatever each asks for. None for a local agent (its cores and GPUs are its room)."""
    return None if settings is None else max(0, settings.max_jobs - jobs)


def format_time_limit(seconds: int) -> str:
    """sbatch --time: whole minutes, rounded up (Slurm's own granularity)."""
    return str(max(1, math.ceil(seconds / 60)))


def sbatch_args(settings: SlurmSettings, *, task_id: int, cpu_cores: int, gpu_count: int,
                time_limit_s: int, cwd: str, output: str, script: str) -> list[str]:
    args = ["sbatch", "--parsable", f"--job-name=tq-{task_id}", f"--output={output}", f"--error={output}",
            "--open-mode=append", f"--chdir={cwd}", "--export=ALL"]
    if cpu_cores > 0:
        args.append(f"--cpus-per-task={cpu_cores}")
    if gpu_count > 0:
        args.append(f"--gres=gpu:{gpu_count}")
    if time_limit_s > 0:
        args.append(f"--time={format_time_limit(time_limit_s)}")
    if settings.partition:
        args.append(f"--partition={settings.partition}")
    if settings.account:
        args.append(f"--account={settings.account}")
    return [*args, *settings.options, script]


def _run(args: list[str], env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SlurmUnavailable(f"{args[0]}: {exc}") from exc


def submit(args: list[str], env: dict[str, str]) -> str:
    """The job id sbatch answers; SlurmUnavailable (with sbatch's words) when it refuses."""
    done = _run(args, env)
    job_id = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
    if done.returncode != 0 or not job_id.isdigit():
        raise SlurmUnavailable(f"sbatch: {(done.stderr or done.stdout).strip() or f'exit code {done.returncode}'}")
    return job_id


def query(job_id: str) -> Optional[JobState]:
    """The job's state; None when Slurm no longer knows it (neither scontrol nor sacct)."""
    done = _run(["scontrol", "show", "job", "-o", job_id])
    if done.returncode == 0 and done.stdout.strip():
        return _parse_scontrol(done.stdout)
    if "invalid job id" not in done.stderr.lower():
        raise SlurmUnavailable(f"scontrol: {done.stderr.strip() or f'exit code {done.returncode}'}")
    return _query_sacct(job_id)


def _parse_scontrol(text: str) -> JobState:
    fields = dict(item.split("=", 1) for item in text.split() if "=" in item)
    return JobState(fields.get("JobState", "UNKNOWN"), fields.get("Reason", "None"),
                    parse_exit_code(fields.get("ExitCode", "")))


def _query_sacct(job_id: str) -> Optional[JobState]:
    done = _run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,Reason,ExitCode"])
    lines = [line for line in done.stdout.splitlines() if line.count("|") == 2]
    if done.returncode != 0 or not lines:
        return None  # no accounting (or forgotten there too)
    state, reason, exit_code = lines[0].split("|")
    return JobState(state.split()[0], reason or "None", parse_exit_code(exit_code))


def parse_exit_code(value: str) -> Optional[int]:
    """Slurm's "code:signal" as a Popen-style return code."""
    try:
        code, sig = (int(part) for part in value.split(":"))
    except ValueError:
        return None
    return -sig if sig else code


def cancel(job_id: str) -> None:
    done = _run(["scancel", job_id])
    if done.returncode != 0:
        raise SlurmUnavailable(f"scancel: {done.stderr.strip() or f'exit code {done.returncode}'}")


def memory_used_mib(job_id: str) -> Optional[float]:
    """The batch step's MaxRSS (sstat), or None where Slurm gathers no accounting."""
    done = _run(["sstat", "-j", f"{job_id}.batch", "-n", "-P", "-o", "MaxRSS"])
    value = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    try:
        return float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value) / 2**20
    except ValueError:
        return None


def describe_end(job: Optional[JobState], *, job_id: str, was_cancelled: bool) -> tuple[int, Optional[str]]:
    """(return code, stop_reason) of a finished job; a stop_reason fails the task with it."""
    if job is None:
        return 1, f"Slurm no longer knows job {job_id}: its end was not seen"
    returncode = job.returncode if job.returncode is not None else 1
    if job.state == "COMPLETED" or (job.state == "FAILED" and job.reason == "NonZeroExitCode"):
        return returncode, None  # the script's own exit code says it, as for a local task
    if job.state == "CANCELLED" and was_cancelled:
        return returncode or -15, None  # our scancel: the task is canceled already
    returncode = returncode or 1
    reason = "" if job.reason in ("None", "") else f", {job.reason}"
    if job.state == "TIMEOUT":
        return returncode, f"Slurm: TIMEOUT (job {job_id} reached its time limit{reason})"
    return returncode, f"Slurm: {job.state} (job {job_id}{reason})"


def pending_note(job: JobState) -> str:
    """A running task's status_reason while its job does not run yet; "" once it runs."""
    if job.state in ("RUNNING", "COMPLETING") or job.is_final:
        return ""
    return f"Slurm: {job.state}" + ("" if job.reason in ("None", "") else f" ({job.reason})")
