"""Main agent: one per machine (and name). Never runs tasks itself; starts one sub-agent per task.

It registers with a stable id (kept in the state file), heartbeats machine usage and the tasks it
runs, forks a sub-agent for each new assignment (deduplicated by task id, across restarts too),
reports sub-agents that died, and adopts the sub-agents a previous run of itself left running.

What it remembers is per server identity (agent/state.py): when the server behind the URL turns out
to be another one (a reset database, another server), it takes up that server's memory and leaves
the old server's tasks out of everything it reports; their sub-agents, still on the box, keep
counting against the cores and GPUs it offers until they exit.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import structlog

from agent import process_tree
from agent.disk import DiskWatch, SubAgentLogs
from agent.main_agent_subs import SubAgentSteps
from agent.cpu_limits import usable_cpu_ids
from agent.resource_util import ResourceUtil
from agent.server_client import ServerClient, ServerRejected, ServerUnavailable
from agent.slurm import SlurmSettings, free_slots
from agent.state import STATE_FILE_NAME, AgentState
from agent.sub_agent_process import CpuPool, SubAgentTable
from task_common.protocol import MainHeartbeat, MainHeartbeatReply, RegisterMain, TaskReport

log = structlog.get_logger()

DEFAULT_HEARTBEAT_INTERVAL_S = 2.0  # until the server says otherwise
HEARTBEAT_RETRY_MAX_DELAY_S = 2.0  # short: the server restarts with a lease that is only seconds long
HEARTBEAT_RETRY_WINDOW_S = 5.0  # then the tick ends, local duties run, and the next tick retries
MIN_LONG_POLL_S = 0.1  # a reply faster than this (without work) means the server did not hold it


class AgentError(Exception):
    """A problem the person starting the agent must fix (e.g. a wrong token)."""


@dataclass
class MainAgentConfig:
    server_url: str
    name: str
    cpu_cores: int
    work_dir: Path
    state_dir: Path
    token: Optional[str] = None
    kill_grace_s: float = 10.0
    output_flush_s: float = 0.2
    log_level: str = "INFO"
    log_file: Path = Path()
    slurm: Optional[SlurmSettings] = None  # --executor slurm: tasks become Slurm jobs; cpu_cores = max jobs


class MainAgent(SubAgentSteps):
    def __init__(self, config: MainAgentConfig, resources: ResourceUtil,
                 client: Optional[ServerClient] = None, lock_fd: Optional[int] = None):
        self.config, self.resources, self.lock_fd = config, resources, lock_fd  # lock_state_dir's
        self.client = client or ServerClient(config.server_url, config.token,
                                             max_delay_s=HEARTBEAT_RETRY_MAX_DELAY_S,
                                             retry_for_s=HEARTBEAT_RETRY_WINDOW_S)
        self.state = AgentState.load(config.state_dir)
        self.state_changed = False  # saved by save_state() at the end of the tick
        self.is_state_save_failing = False
        self.disk = DiskWatch(config.name, [config.state_dir, config.work_dir])
        self.sub_agent_logs = SubAgentLogs(config.state_dir / "logs", [
            task_id for memory in (self.state.current, *self.state.other_servers.values()) for task_id in memory.tasks])
        self.cpus = CpuPool([] if config.slurm else usable_cpu_ids()[:config.cpu_cores])  # Slurm pins its own
        self.subs = SubAgentTable(self.state)
        self.started = 0  # sub-agents the last start_assigned started
        self.reply: Optional[MainHeartbeatReply] = None
        self.interval_s = DEFAULT_HEARTBEAT_INTERVAL_S
        self.sub_interval_s = 1.0
        self.sent_at = 0.0
        self.waited_s = 0.0
        self.gpu_shared_at = 0.0
        self.stop_signals = 0
        self.wakeup_r, self.wakeup_w = os.pipe()

    @property
    def stopping(self) -> bool:
        return self.stop_signals > 0

    def run(self) -> None:
        """Adopt what a previous run left, register, then tick until the first stop signal.

        Each tick, in order:
          1. reap_finished        - notice exited sub-agents; a lost one is reported and its task killed,
                                    one that left output undelivered is followed by a delivering one
          2. share_gpu_usage      - NVML's reading of each task's processes, for its sub-agent to report
          3. disk.check           - a full disk where the agent writes (state dir, work dir) becomes the
                                    heartbeat's disk_problem: the server hands us no task until it clears
          4. send_heartbeat       - usage, running/died/rejected tasks; long-polls while capacity is free;
                                    a reply from another server switches memories (follow_server_identity)
          5. start_assigned       - create_sub_agent (a fork) per new assignment, never a task twice;
                                    one that already ran here, or that the disk refuses, is refused and reported
          6. apply_cancels        - kill_task_ids: a sub-agent that did not end its task is stopped
          7. sleep_until_next_tick - at once only after starting a task (or a held long poll)
        The state file is saved once per tick that started or reaped a sub-agent (save_state); a disk
        that refuses it is a disk problem, and the save is tried again each tick.
        Only this loop catches unexpected errors (agent_tick_failed) and goes on.
        """
        process_tree.become_child_subreaper()
        self.install_signal_handlers()
        log.info("main_agent_started", name=self.config.name, cpu_cores=self.config.cpu_cores,
                 state_dir=str(self.config.state_dir), work_dir=str(self.config.work_dir))
        self.adopt_sub_agents()
        self.register()
        while not self.stopping:
            try:
                self.reap_finished()
                self.share_gpu_usage()
                self.disk.check()
                self.send_heartbeat()
                self.start_assigned()
                self.apply_cancels()
            except Exception:
                log.exception("agent_tick_failed")
                self.reply, self.sent_at = None, time.monotonic()  # next tick one interval later
            finally:
                self.save_state()
            self.sleep_until_next_tick()
        self.cleanup()

    # -- start and stop ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, self.on_stop_signal)
        signal.signal(signal.SIGTERM, self.on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the tick sleep via the wakeup fd

    def on_stop_signal(self, signum, _frame) -> None:
        """First signal: take no new tasks and stop; running tasks go on. Second: kill them too."""
        self.stop_signals += 1
        if self.stop_signals > 1:
            self.terminate_sub_agents()

    def register(self) -> None:
        """Register (with our id at this server, if any) until the server answers; 4xx is fatal.
        An answer from another server than our memory's switches to that server's memory first."""
        gpus = self.resources.get_gpu_info()
        memory = self.resources.get_machine_memory_usage()
        while not self.stopping:
            message = RegisterMain(agent_id=self.state.current.agent_id, server_id=self.state.server_id,
                                   name=self.config.name, hostname=socket.gethostname(),
                                   cpu_cores=self.subs.cores_left(self.config.cpu_cores),
                                   memory_total_mib=int(memory.total_mib), gpus=self.subs.gpus_left(gpus),
                                   monitor_file=str(self.config.log_file))
            try:
                reply = self.client.register_main(message)
            except ServerUnavailable as exc:
                log.warning("server_request_retried", path="register_main", problem=str(exc))
                continue
            except ServerRejected as exc:
                raise AgentError(f"the server refused to register this agent: {exc}") from exc
            if self.follow_server_identity(reply.server_id) and self.state.current.agent_id not in (
                    None, reply.agent_id):
                continue  # this server knew us before, under the id it gave then
            self.state.current.agent_id = reply.agent_id
            self.state_changed = True
            self.save_state()
            self.interval_s, self.sub_interval_s = reply.heartbeat_interval_s, reply.sub_heartbeat_interval_s
            structlog.contextvars.bind_contextvars(agent_id=reply.agent_id)
            log.info("agent_registered", name=self.config.name, cpu_cores=self.config.cpu_cores,
                     gpus=len(gpus), adopted_tasks=sorted(self.subs.current))
            return

    def follow_server_identity(self, server_id: Optional[str]) -> bool:
        """True when the server is another one than our memory's: its memory is taken up, the old
        server's sub-agents go on (counted, never reported) and its pending reports are dropped."""
        old = self.state.server_id
        if server_id is None:  # a server from before identities: nothing to compare
            return False
        if not self.state.use_server(server_id):
            self.state_changed = self.state_changed or old is None  # adopted a memory of no known server
            return False
        log.warning("server_identity_changed", old=old, new=server_id,
                    old_tasks_running=sorted(self.state.memory(old).tasks))
        self.reply, self.state_changed = None, True
        return True

    def cleanup(self) -> None:
        """Stop without touching running tasks: their sub-agents go on and a restarted agent adopts them."""
        log.info("main_agent_stopping", running_task_ids=sorted(self.subs.current),
                 tasks_killed=self.stop_signals > 1)
        self.state_changed = True
        self.save_state()
        self.client.close()

    def save_state(self) -> None:
        """Once per tick, not per sub-agent: a rename per task was the main agent's largest cost at
        ~30 tasks/s (bench: throughput). A crash between a fork and this save leaves a sub-agent the
        next run does not adopt; it still reports its task to the server itself. A disk that refuses
        the file is a disk problem (the heartbeat says so); the save is tried again next tick."""
        if not self.state_changed:
            return
        try:
            self.state.save(self.config.state_dir)
        except OSError as exc:
            problem = self.disk.report(self.config.state_dir / STATE_FILE_NAME, exc)
            if not self.is_state_save_failing:
                log.error("state_save_failed", problem=problem)
            self.is_state_save_failing = True
            return
        self.state_changed = self.is_state_save_failing = False

    # -- the tick's steps -------------------------------------------------------------------------

    def send_heartbeat(self) -> None:
        """One heartbeat; long-polls (wait_s) while a task could still fit, so dispatch is immediate."""
        self.reply = None
        message = self.heartbeat_message()
        self.sent_at, self.waited_s = time.monotonic(), message.wait_s
        try:
            reply = self.client.main_heartbeat(message)
        except ServerUnavailable as exc:
            log.warning("server_unreachable", problem=str(exc), running_task_ids=message.running_task_ids)
            return
        except ServerRejected as exc:
            if exc.status != 404:
                raise
            reply = MainHeartbeatReply(known=False, next_interval_s=self.interval_s)
        if self.follow_server_identity(reply.server_id) or not reply.known:
            if not reply.known:
                log.warning("agent_unknown_to_server")
            self.register()
            return
        self.forget_delivered(message)
        self.interval_s, self.reply = reply.next_interval_s, reply
        log.debug("main_heartbeat_sent", start=[a.task_id for a in reply.start],
                  kill=reply.kill_task_ids)

    def forget_delivered(self, message: MainHeartbeat) -> None:
        """The server heard these reports (it answered the heartbeat that carried them)."""
        memory = self.state.current
        for reports, sent in ((memory.died, message.died), (memory.rejected, message.rejected)):
            for report in sent:
                if reports.pop(report.task_id, None) is not None:
                    self.state_changed = True

    def heartbeat_message(self) -> MainHeartbeat:
        memory = self.resources.get_machine_memory_usage()
        return MainHeartbeat(
            agent_id=self.state.current.agent_id, cpu_cores=self.subs.cores_left(self.config.cpu_cores),
            cpu_usage=self.resources.get_machine_cpu_usage(), memory_usage=memory.percent,
            memory_used_mib=int(memory.used_mib), memory_total_mib=int(memory.total_mib),
            gpus=self.subs.gpus_left(self.resources.get_gpu_info()), running_task_ids=sorted(self.subs.current),
            died=[TaskReport(task_id=t, reason=r) for t, r in self.state.current.died.items()],
            rejected=[TaskReport(task_id=t, reason=r) for t, r in self.state.current.rejected.items()],
            wait_s=min(self.interval_s, 60.0) if self.has_free_capacity() else 0.0,
            disk_problem=self.disk.problem, slurm_slots=free_slots(self.config.slurm, len(self.subs.all())))

    def has_free_capacity(self) -> bool:
        slots = free_slots(self.config.slurm, len(self.subs.all()))  # a Slurm agent's room: a count of jobs
        if self.stopping:
            return False
        return slots > 0 if slots is not None else self.subs.cores_held() < self.config.cpu_cores

    def start_assigned(self) -> None:
        """A sub-agent per new hand-over; one we must not run is refused, and the refusal reported."""
        self.started = 0
        for assignment in self.reply.start if self.reply else []:
            task_id = assignment.task_id
            if self.state.current.is_in_hand(task_id):
                continue  # the server resends until it sees our report; never start twice
            if self.state.current.has_finished(task_id):
                self.refuse_handover(task_id, "already ran here")
            elif self.create_sub_agent(assignment):
                self.started += 1

    def refuse_handover(self, task_id: int, reason: str) -> None:
        """Report it (MainHeartbeat.rejected): the server re-queues the task, or fails it after a few."""
        self.state.current.rejected[task_id] = reason
        self.state_changed = True
        log.warning("task_handover_refused", task_id=task_id, reason=reason)

    def sleep_until_next_tick(self) -> None:
        """Right away after starting a task or a held long poll; else until an interval after the last
        send (a hand-over resent or refused is no reason to hurry: the server resends it every beat)."""
        if self.stopping or self.started:
            return
        held = self.reply is not None and self.waited_s > 0 \
            and time.monotonic() - self.sent_at >= MIN_LONG_POLL_S
        deadline = self.sent_at + (MIN_LONG_POLL_S if held else self.interval_s)
        while (remaining := deadline - time.monotonic()) > 0 and not self.stopping:
            readable, _, _ = select.select([self.wakeup_r], [], [], remaining)
            if readable:
                os.read(self.wakeup_r, 512)  # a signal (child exit or stop): tick now
                return

