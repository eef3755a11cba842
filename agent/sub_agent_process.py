"""The main agent's side of its sub-agents: starting one (fork_sub_agent: the fork contract), watching
it, tracking them per server (SubAgentTable), killing what a lost one left, handing out CPU cores.

A sub-agent is a fork of the main agent, not `python -m ...`: a fresh interpreter costs ~0.35 s of
CPU for its imports (pydantic, requests, structlog, psutil), which caps a 2-core box at a few
tasks per second and adds the start-up to every dispatch; a fork costs a few ms and shares the
loaded modules copy-on-write.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import psutil
import structlog

from agent import process_tree
from agent.resource_util import ResourceUtil
from agent.state import AgentState, TaskRecord
from agent.sub_agent import EXIT_OUTPUT_LOST, EXIT_START_FAILED, Handover, SubAgent, SubAgentConfig
from agent.sub_agent_stop import EXIT_UNDELIVERED
from task_common.logging import TolerantFileHandler
from task_common.protocol import GpuInfo, describe_returncode

EXIT_CRASHED = 70  # the sub-agent raised: the main agent reports the task as lost
PR_SET_NAME = 15
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}


@dataclass
class SubAgentProcess:
    """One running sub-agent: our forked child or, after a main-agent restart, an adopted process."""

    record: TaskRecord
    is_child: bool = True
    process: Optional[psutil.Process] = None  # for adopted ones (not our children)
    stop_at: Optional[float] = None  # SIGTERM then: the server asked to end its task and it did not (apply_cancels)
    kill_at: Optional[float] = None  # SIGKILL then: it did not stop either

    def poll(self) -> tuple[bool, Optional[int]]:
        """(has exited, Popen-style return code); the code is None for an adopted process."""
        if self.is_child:
            try:
                pid, status = os.waitpid(self.record.pid, os.WNOHANG)
            except ChildProcessError:
                return True, None
            return (False, None) if pid == 0 else (True, os.waitstatus_to_exitcode(status))
        try:
            alive = self.process is not None and self.process.is_running() \
                and self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        return not alive, None

    def send_signal(self, sig: int) -> None:
        try:
            if self.is_child:
                os.kill(self.record.pid, sig)
            elif self.process is not None:
                self.process.send_signal(sig)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass


class SubAgentTable:
    """The sub-agents on this box. Which task each runs, for which server, is the state's alone
    (agent/state.py: each ServerMemory.tasks, saved across restarts); this table adds how to reach
    each process (SubAgentProcess, by sub-agent id). `current`: the tasks of the server the main agent
    works for, the only ones its heartbeats report; the other servers' still count (cores, GPUs)."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self.processes: dict[str, SubAgentProcess] = {}

    @property
    def current(self) -> dict[int, SubAgentProcess]:
        return {task_id: self.processes[r.sub_agent_id] for task_id, r in self.state.current.tasks.items()}

    def all(self) -> list[tuple[Optional[str], SubAgentProcess]]:
        """(None, sub) for the current server's tasks, (server id, sub) for the others'."""
        memories = [(None, self.state.current), *self.state.other_servers.items()]
        return [(server_id, self.processes[r.sub_agent_id]) for server_id, memory in memories
                for r in memory.tasks.values()]

    def add(self, sub: SubAgentProcess, server_id: Optional[str] = None) -> None:
        self.state.memory(server_id).tasks[sub.record.task_id] = sub.record
        self.processes[sub.record.sub_agent_id] = sub

    def remove(self, task_id: int, server_id: Optional[str] = None) -> None:
        record = self.state.memory(server_id).tasks.pop(task_id, None)
        if record is not None:
            self.processes.pop(record.sub_agent_id, None)

    def cores_held(self) -> int:
        return sum(sub.record.cpu_cores for _, sub in self.all())

    def cores_left(self, cpu_cores: int) -> int:
        """What the current server may use of cpu_cores: other servers' tasks still hold theirs."""
        return max(0, cpu_cores - sum(sub.record.cpu_cores for server_id, sub in self.all() if server_id))

    def gpus_left(self, gpus: list[GpuInfo]) -> list[GpuInfo]:
        """The GPUs no other server's task holds (a server sees only its own placements)."""
        held = {index for server_id, sub in self.all() if server_id for index in sub.record.gpu_ids}
        return [gpu for gpu in gpus if gpu.index not in held]

    def child_pids(self) -> set[int]:
        return {sub.record.pid for _, sub in self.all() if sub.is_child}


def kill_lost_task(record: TaskRecord, pgid: Optional[int], sub_agent_pids: set[int]) -> int:
    """Its sub-agent is gone, so nobody reports this task any more: SIGKILL all of it now. Returns the
    processes signalled. Those that left the task's group are found among our children that are no
    sub-agent: orphans of the dead sub-agent (the main agent is a subreaper)."""
    process_tree.kill_group(pgid, signal.SIGKILL)
    orphans = [p for p in psutil.Process().children() if p.pid not in sub_agent_pids]
    processes = process_tree.find_task_processes(pgid=pgid, marker=record.sub_agent_id, roots=orphans)
    return process_tree.signal_processes(processes, signal.SIGKILL)


class ForkContractBroken(RuntimeError):
    """The main agent is not in a state in which forking a sub-agent is safe (see fork_sub_agent)."""


def fork_sub_agent(config: SubAgentConfig, handover: Handover, resources: ResourceUtil,
                   forget_parent: Callable[[], None]) -> int:
    """Fork a sub-agent for one task; returns its pid. forget_parent() drops the main agent's fds.

    The fork contract. A fork copies the whole memory but only the calling thread, so:
      1. The main agent has exactly one thread when it forks (checked here: ForkContractBroken): a lock
         another thread held then (logging's, a connection pool's, the allocator's) stays held for ever
         in the child. So the main agent starts no thread; a sub-agent may (its output reader): it
         only forks to exec bash, and no Python code runs in that child.
      2. The child never calls NVML: the driver's client state is the parent's, and tearing it down in
         a child broke the parent's (ResourceUtil.after_fork drops the handles without a call; checked
         in the child). The main agent reads each task's GPU use for it (main_agent_subs.share_gpu_usage).
      3. No handler of the main agent may run in the child: the stop signals are blocked across the
         fork, and the child installs its own before it unblocks them.
      4. The child is a process of its own at once: new session, stdio on /dev/null and sub-agents.stderr,
         its own log file, the parent's fds closed (forget_parent: the state dir's lock, the wakeup
         pipe, the HTTP pool's sockets); it leaves with os._exit, never into the main agent's loop.
      5. gc.freeze() first: the child's collector leaves the shared objects' pages alone (bench: throughput).
    """
    if threading.active_count() != 1:
        raise ForkContractBroken(f"the main agent runs {threading.active_count()} threads "
                                 f"({', '.join(t.name for t in threading.enumerate())}); a sub-agent is only "
                                 "forked from a single-threaded main agent (agent/sub_agent_process.py)")
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
    except OSError:
        _back_in_parent()
        raise
    if pid:
        _back_in_parent()
        return pid
    code = EXIT_CRASHED
    try:
        forget_parent()
        code = _run_sub_agent(config, handover, resources)
    except BaseException:  # the child must never return into the main agent's loop
        traceback.print_exc()
        sys.stderr.flush()  # os._exit flushes nothing
    finally:
        try:
            logging.shutdown()
        finally:
            os._exit(code)


def _back_in_parent() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    gc.unfreeze()  # the main agent's own garbage must stay collectable


def _run_sub_agent(config: SubAgentConfig, handover: Handover, resources: ResourceUtil) -> int:
    os.setsid()
    log_dir = config.state_dir / "logs"
    _redirect_stdio(log_dir / "sub-agents.stderr")
    for sig in (signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    _set_process_name(f"sub-agent-{handover.task.task_id}")
    config.log_file = _log_to_own_file(log_dir / f"sub-agent-{handover.task.task_id}.log")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=handover.task.task_id, sub_agent_id=handover.sub_agent_id)
    resources.after_fork()
    if resources.has_nvml:
        raise ForkContractBroken("a forked sub-agent holds NVML handles after ResourceUtil.after_fork()")
    config.work_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(config.work_dir)  # a cleanup that looks for processes by working directory finds us too
    agent = SubAgent(config, handover, resources)
    signal.signal(signal.SIGTERM, agent.on_stop_signal)
    signal.signal(signal.SIGALRM, agent.stop.interrupt_hanging_call)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # before bash starts: it inherits the mask
    return agent.run()


def _log_to_own_file(path: Path) -> Path:
    """Keep the logging set up by configure_logging (inherited), but write to this task's own file;
    stderr, now a shared crash file, only gets warnings."""
    root = logging.getLogger()
    for i, handler in enumerate(root.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            own = TolerantFileHandler(path, encoding="utf-8", delay=True)  # a full disk: no crash at start
            own.setFormatter(handler.formatter)
            root.handlers[i] = own
        else:
            handler.setLevel(logging.WARNING)
    return path


def _redirect_stdio(stderr_path) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:  # a full disk: the sub-agent runs all the same, its crash report goes nowhere
        err = os.dup(devnull)
    os.dup2(devnull, 0)
    os.dup2(err, 1)
    os.dup2(err, 2)
    os.close(devnull)
    os.close(err)


def _set_process_name(name: str) -> None:
    """What ps/top show as the command name (15 bytes), so sub-agents are told from the main agent."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def process_create_time(pid: int) -> float:
    """psutil's start time of the process (0.0 once it is gone): with the pid, names one process for good."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return 0.0


def find_live_sub_agent(record: TaskRecord) -> Optional[psutil.Process]:
    """The process a previous run recorded, if it is still that same process and alive."""
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


def describe_sub_agent_exit(returncode: Optional[int]) -> str:
    """Why a task was lost, for people (goes to the task's status_reason)."""
    if returncode is None:
        return "sub-agent exited unexpectedly while its main agent was restarting (exit status unknown)"
    if returncode == EXIT_START_FAILED:
        return "sub-agent could not start bash for the task (see the sub-agent log)"
    if returncode == EXIT_CRASHED:
        return "sub-agent crashed (see the sub-agents.stderr log)"
    if returncode == EXIT_UNDELIVERED:
        return ("sub-agent was stopped before the server had the task's end, and the rest of its output "
                "could not be kept on the agent's disk (see the sub-agent log)")
    if returncode == EXIT_OUTPUT_LOST:
        return "the server lost task output it had acknowledged, which the agent no longer holds"
    return f"sub-agent exited unexpectedly ({describe_returncode(returncode)[1]})"


class CpuPool:
    """Core ids handed to tasks for pinning. A task gets distinct free cores, or is not pinned."""

    def __init__(self, cpu_ids: list[int]):
        self.free = list(cpu_ids)

    def allocate(self, count: int) -> list[int]:
        if count <= 0 or count > len(self.free):
            return []
        taken, self.free = self.free[:count], self.free[count:]
        return taken

    def claim(self, cpu_ids: list[int]) -> None:
        self.free = [c for c in self.free if c not in cpu_ids]

    def release(self, cpu_ids: list[int]) -> None:
        self.free = sorted(set(self.free) | set(cpu_ids))
