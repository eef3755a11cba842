"""Start one main agent on this machine, in the foreground.

    python setup_master_agent.py --server http://HOST:5000 [--name NAME] [--cpu-cores N]
        [--work-dir DIR] [--simulate-gpus COUNTxMIB] [--state-dir DIR] [--token TOKEN]
        [--kill-grace-s S] [--log-level LEVEL]
        [--executor slurm [--slurm-partition P] [--slurm-account A] [--slurm-option ARG]... [--slurm-max-jobs N]]

A bad flag (or a blank TASK_SYSTEM_TOKEN) stops it with one line naming it, exit code 2; so does a
state dir another main agent holds (same --name, or same --state-dir), naming that agent's pid.
Stops on SIGINT/SIGTERM: the first takes no new tasks and leaves running ones to finish (a restarted
agent adopts them); a second one also kills the running tasks.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from agent.main_agent import AgentError, MainAgent, MainAgentConfig
from agent.resource_util import ResourceUtil, parse_simulated_gpus
from agent.slurm import DEFAULT_MAX_JOBS, SlurmSettings
from agent.state import StateDirInUse, lock_state_dir
from task_common.logging import configure_logging

ROOT = Path(__file__).resolve().parent


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), as the server's app.py does."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _server_url(value: str) -> str:
    parsed = urlparse(value)
    try:
        is_url = parsed.scheme in ("http", "https") and bool(parsed.hostname) and (parsed.port or 0) >= 0
    except ValueError:  # a port that is not a number in 0..65535
        is_url = False
    if not is_url:
        raise argparse.ArgumentTypeError(f"expected a URL such as http://host:5000, got {value!r}")
    return value.rstrip("/")


def _non_negative(kind):
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise argparse.ArgumentTypeError(f"must be a number, 0 or more, got {value!r}")
        return number
    return parse


def _simulated_gpus(value: str) -> str:
    try:
        parse_simulated_gpus(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be blank")
    return value


def dir_problem(path: Path) -> str | None:
    """Why the agent could not write there, or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if os.access(path, os.W_OK | os.X_OK) else "not writable"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked; the token defaults to $TASK_SYSTEM_TOKEN, and both directories exist."""
    parser = ArgumentParser(prog="setup_master_agent.py", description="Start a task_system main agent on this machine.")
    parser.add_argument("--server", required=True, type=_server_url, help="server URL, e.g. http://host:5000")
    parser.add_argument("--name", default=socket.gethostname(), type=_not_blank, help="agent name (default: hostname)")
    parser.add_argument("--cpu-cores", type=_non_negative(int), default=None,
                        help="cores to offer (default: detected, honouring cgroup quotas and affinity)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "user_code",
                        help="working directory of tasks (default: user_code/ of this checkout)")
    parser.add_argument("--simulate-gpus", type=_simulated_gpus, default=None, metavar="COUNTxMIB",
                        help="declare simulated GPUs instead of reading NVML, e.g. 2x81920")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="agent id, running tasks, spool and logs (default: data/agents/<name>/)")
    parser.add_argument("--token", type=_not_blank, default=None, help="server token (default: $TASK_SYSTEM_TOKEN)")
    parser.add_argument("--kill-grace-s", type=_non_negative(float), default=10.0,
                        help="seconds between SIGTERM and SIGKILL when a task is killed")
    parser.add_argument("--output-flush-s", type=_non_negative(float), default=0.2,
                        help="send new task output at most this often")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _add_slurm_arguments(parser)
    args = parser.parse_args(argv)
    if args.executor == "slurm" and shutil.which("sbatch") is None:
        parser.error("--executor slurm: sbatch is not on PATH (run the agent on a Slurm login node)")
    if args.token is None:
        args.token = os.environ.get("TASK_SYSTEM_TOKEN")
        if args.token is not None and not args.token.strip():
            parser.error("TASK_SYSTEM_TOKEN: must not be blank (unset it for a server without a token)")
    args.work_dir = args.work_dir.resolve()
    args.state_dir = (args.state_dir or ROOT / "data" / "agents" / args.name).resolve()
    for flag, path in (("--work-dir", args.work_dir), ("--state-dir", args.state_dir)):
        problem = dir_problem(path)
        if problem:
            parser.error(f"{flag} {path}: {problem}")
    return args


def _add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=["local", "slurm"], default="local",
                        help="run tasks here (local) or hand each to sbatch (slurm; on a login node)")
    parser.add_argument("--slurm-partition", type=_not_blank, default=None, help="sbatch --partition")
    parser.add_argument("--slurm-account", type=_not_blank, default=None, help="sbatch --account")
    parser.add_argument("--slurm-option", action="append", default=[], metavar="ARG",
                        help="another sbatch argument, e.g. --slurm-option=--qos=high (repeatable)")
    parser.add_argument("--slurm-max-jobs", type=_non_negative(int), default=DEFAULT_MAX_JOBS,
                        help=f"tasks submitted to Slurm at once (default {DEFAULT_MAX_JOBS})")


def _slurm_settings(args: argparse.Namespace) -> SlurmSettings | None:
    if args.executor != "slurm":
        return None
    return SlurmSettings(partition=args.slurm_partition, account=args.slurm_account,
                         options=list(args.slurm_option), max_jobs=args.slurm_max_jobs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir, work_dir = args.state_dir, args.work_dir
    try:
        lock_fd = lock_state_dir(state_dir)  # before the log: that file is the other agent's too
    except StateDirInUse as exc:
        print(f"setup_master_agent.py: error: {exc}", file=sys.stderr, flush=True)
        return 2
    log_file = configure_logging("main-agent", state_dir / "logs", args.log_level)
    _say(f"main agent {args.name!r}: logs in {log_file}")
    resources = ResourceUtil(simulate_gpus=parse_simulated_gpus(args.simulate_gpus)
                             if args.simulate_gpus else None)
    slurm = _slurm_settings(args)
    cores = args.cpu_cores if args.cpu_cores is not None else resources.get_cpu_core_count()
    config = MainAgentConfig(
        server_url=args.server, name=args.name, cpu_cores=slurm.max_jobs if slurm else cores,
        work_dir=work_dir, state_dir=state_dir, token=args.token,
        kill_grace_s=args.kill_grace_s, output_flush_s=args.output_flush_s,
        log_level=args.log_level, log_file=log_file, slurm=slurm)
    try:
        MainAgent(config, resources, lock_fd=lock_fd).run()
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        resources.close()
        _say(f"main agent {args.name!r} stopped; logs in {log_file}")
    return 0


def _say(line: str) -> None:
    """Print to stdout, which may be a file on the agent's full disk: that is no reason to crash."""
    try:
        print(line, flush=True)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
