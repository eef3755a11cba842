"""Sub-agent: runs exactly one task under bash and reports it until the server has everything.

The main agent forks it (agent/sub_agent_process.py), so it starts with every module loaded. Its
life is a phase machine (agent/sub_agent_phase.py): STARTING (register; a 409 or cancel: exit without
running) -> RUNNING (bash in its own session, its output through a pipe into the spool,
agent/output_spool.py) -> DRAINING (bash exited: leftovers killed, the pipe's last bytes read) ->
REPORTING (the end fixed: heartbeats carry it until the server answers `finished`) -> DONE. All the
while heartbeats carry the task's usage and the output the server lacks (agent/sub_agent_beats.py).
The task keeps running while the server is unreachable; the spool keeps every byte not acknowledged yet.

A cancel comes as `cancel` in a heartbeat's reply. A stop signal (SIGTERM) is a cancel too, and once
the task is over the sub-agent delivers the rest for a grace at most, then leaves it in the spool
and exits EXIT_UNDELIVERED (agent/sub_agent_stop.py); a `deliver_only` sub-agent sends it later.
At its time limit (agent/task_settings.py) the task is stopped as a cancel stops it, and its end
carries a stop_reason, which fails it.

Exit codes the main agent reads: EXIT_FINISHED, EXIT_REFUSED (nothing to report), EXIT_UNDELIVERED
(deliver the rest); anything else means the task was lost and the main agent reports it as died.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import structlog

from agent.resource_util import ResourceUtil
from agent.server_client import ServerClient, ServerRejected, ServerUnavailable
from agent.slurm import SlurmSettings
from agent.slurm_job import SlurmJob
from agent.spool import OUTCOME_FINISHED, OUTCOME_REFUSED, Spool, TaskEnd
from agent.sub_agent_beats import OUTPUT_FLUSH_INTERVAL_S, Beats
from agent.sub_agent_phase import Phase, check_transition
from agent.sub_agent_stop import EXIT_UNDELIVERED, DeliveryStopped, StopRequest
from agent.task_process import TaskProcess
from agent.task_settings import TimeLimit, resolve_work_dir
from agent.task_start import task_environment
from task_common.protocol import RegisterSub, RegisterSubReply, SubHeartbeatReply, TaskAssignment

log = structlog.get_logger()

EXIT_FINISHED = 0
EXIT_REFUSED = 3
EXIT_START_FAILED = 4
EXIT_OUTPUT_LOST = 6  # the server lost output it had acknowledged, which the spool no longer holds
# EXIT_UNDELIVERED (5) is in sub_agent_stop.py.
OUTCOME_OUTPUT_LOST = "output lost"  # none the main agent knows: it reports the task as died

KILL_GRACE_S = 10.0
REGISTER_GIVE_UP_S = 600.0  # a sub-agent that cannot register this long exits without running the task
RETRY_WINDOW_S = 3.0  # a failed heartbeat gives up after this; the loop tries again later
HEARTBEAT_RETRY_MAX_DELAY_S = 2.0


@dataclass
class SubAgentConfig:
    """The main agent's settings that its sub-agents share."""

    server_url: str
    state_dir: Path
    work_dir: Path
    token: Optional[str] = None
    kill_grace_s: float = KILL_GRACE_S
    output_flush_s: float = OUTPUT_FLUSH_INTERVAL_S
    log_level: str = "INFO"
    log_file: Path = Path()
    slurm: Optional[SlurmSettings] = None  # --executor slurm: each task is a Slurm job (agent/slurm_job.py)


@dataclass
class Handover:
    """One task for one sub-agent, as the main agent hands it over."""

    sub_agent_id: str
    main_agent_id: str
    task: TaskAssignment
    cpu_ids: list[int] = field(default_factory=list)  # cores to pin the task to; [] = no pinning
    heartbeat_interval_s: float = 1.0
    deliver_only: bool = False  # the task ended under an earlier sub-agent: send what its spool holds
    adopt_job: bool = False  # its Slurm job was submitted by an earlier sub-agent: follow it (by its id)


class SubAgent:
    def __init__(self, config: SubAgentConfig, handover: Handover, resources: ResourceUtil):
        self.config, self.handover, self.resources = config, handover, resources
        self.client = ServerClient(config.server_url, config.token, max_delay_s=HEARTBEAT_RETRY_MAX_DELAY_S,
                                   retry_for_s=RETRY_WINDOW_S)
        self.spool = Spool(config.state_dir, handover.sub_agent_id)
        self.task = SlurmJob(self.spool, config.slurm, handover.task) if config.slurm else \
            TaskProcess(self.spool, handover.sub_agent_id, config.kill_grace_s)
        self.beats = Beats(self.client, handover.sub_agent_id, handover.task.task_id,
                           interval_s=handover.heartbeat_interval_s, flush_s=config.output_flush_s)
        self.stop = StopRequest()
        self.time_limit = TimeLimit(0 if config.slurm else handover.task.time_limit_s)  # Slurm: --time
        self.phase = Phase.STARTING
        self.end: Optional[TaskEnd] = None  # fixed once the task is over and its output all in the spool
        self.exit_code: Optional[int] = None  # set with DONE

    def run(self) -> int:
        """begin (STARTING), then each tick until DONE: apply_stop_request, step (the phase's own work),
        send_beat when due, wait_for_change (unless a backlog is being sent)."""
        self.begin()
        while self.phase is not Phase.DONE:
            try:
                self.apply_stop_request()
                self.step()
                if self.phase is not Phase.DONE and self.beats.is_due(self.task.size, self.end):
                    self.send_beat()
            except DeliveryStopped:
                self.leave_undelivered()
            except Exception:
                log.exception("agent_tick_failed")
                time.sleep(1.0)  # a persistent fault must not flood the log
            if self.phase is not Phase.DONE and not self.beats.backlog:
                self.task.wait_for_change()
        return self.exit_code

    def move_to(self, phase: Phase, exit_code: Optional[int] = None) -> None:
        check_transition(self.phase, phase)
        log.debug("sub_agent_phase_changed", old=self.phase.value, new=phase.value, exit_code=exit_code)
        self.phase, self.exit_code = phase, exit_code

    # -- STARTING ---------------------------------------------------------------------------------

    def begin(self) -> None:
        """Register and start the task, or take up an earlier sub-agent's delivery."""
        if self.handover.deliver_only or (self.handover.adopt_job and self.spool.read_end() is not None):
            self.resume_delivery()
            return
        if self.handover.adopt_job:
            self.adopt_job()
            return
        reply = self.register()
        if reply is None:
            self.spool.finish(OUTCOME_REFUSED)
            self.move_to(Phase.DONE, EXIT_REFUSED)
            return
        self.beats.acked, self.beats.interval_s = reply.log_size, reply.heartbeat_interval_s
        task = self.handover.task
        env = task_environment(task, self.config.server_url, self.handover.sub_agent_id)
        cwd = resolve_work_dir(self.config.work_dir, task.work_dir)  # the main agent checked it exists
        if not self.task.start(cwd=cwd, env=env, cpu_ids=self.handover.cpu_ids):
            self.move_to(Phase.DONE, EXIT_START_FAILED)
            return
        self.time_limit.start()
        self.beats.last_sent = self.beats.usage_at = time.monotonic()  # registering was a sign of life
        self.move_to(Phase.RUNNING)

    def register(self) -> Optional[RegisterSubReply]:
        """Ask the server whether to run; retried until it answers. None: do not run the script."""
        message = RegisterSub(sub_agent_id=self.handover.sub_agent_id, main_agent_id=self.handover.main_agent_id,
                              task_id=self.handover.task.task_id, pid=os.getpid(), hostname=socket.gethostname(),
                              monitor_file=str(self.config.log_file))
        give_up_at = time.monotonic() + REGISTER_GIVE_UP_S
        while not self.stop.is_requested:  # stopped before the task started: nothing to run or report
            try:
                reply = self.client.register_sub(message)
            except ServerUnavailable as exc:
                if time.monotonic() > give_up_at:  # never started: safe to drop, the server re-queues or fails it
                    log.error("sub_agent_gave_up", problem=str(exc), waited_s=REGISTER_GIVE_UP_S)
                    return None
                log.warning("server_request_retried", path="register_sub", problem=str(exc))
                continue
            except ServerRejected as exc:
                log.info("sub_agent_refused", status=exc.status, code=exc.code)
                return None
            if reply.cancel:
                log.info("sub_agent_refused", code="canceled")
                return None
            log.info("sub_agent_registered", log_size=reply.log_size)
            return reply
        log.info("sub_agent_refused", code="stopped")
        return None

    def resume_delivery(self) -> None:
        """deliver_only: the end and the output an earlier sub-agent of this task left in the spool."""
        end = self.spool.read_end()
        if end is None or not self.task.resume(end):
            log.error("task_output_lost", reason="the spool does not hold the rest of the output",
                      spool_size=self.task.size, final_size=end.final_size if end else None)
            self.move_to(Phase.DONE, EXIT_START_FAILED)
            return
        self.end, self.beats.acked = end, self.task.output.base
        self.beats.last_sent = time.monotonic()
        log.info("sub_agent_delivery_resumed", offset=self.beats.acked, final_size=end.final_size)
        self.move_to(Phase.REPORTING)

    def adopt_job(self) -> None:
        """Follow the Slurm job an earlier sub-agent of this task submitted; output from the server's size."""
        if not self.task.adopt():
            log.error("task_output_lost", reason="the spool holds no Slurm job id")
            self.move_to(Phase.DONE, EXIT_START_FAILED)
            return
        self.beats.last_sent = time.monotonic()
        self.move_to(Phase.RUNNING)

    # -- RUNNING, DRAINING, REPORTING -------------------------------------------------------------

    def step(self) -> None:
        """RUNNING: watch for bash's exit. DRAINING: fix the end once nothing of the task is left and
        the pipe is drained (also in end.json, for a sub-agent that delivers after this one). DRAINING
        starts in the tick that saw bash exit: a task that left nothing behind reports its end at once
        (not a poll interval later: that wait was most of a dependency link's extra time)."""
        if self.phase in (Phase.RUNNING, Phase.DRAINING):
            self.task.escalate_kill()
        if self.phase is Phase.RUNNING and self.task.has_exited():
            self.move_to(Phase.DRAINING)
        elif self.phase is Phase.RUNNING and self.time_limit.is_just_reached():
            log.info("task_time_limit_reached", time_limit_s=self.time_limit.limit_s)
            self.task.stop(self.time_limit.reason)  # as a cancel stops it; the end carries the reason
        if self.phase is Phase.DRAINING:
            self.end = self.task.fixed_end()
            if self.end is not None:
                self.spool.write_end(self.end)
                self.move_to(Phase.REPORTING)

    def send_beat(self) -> None:
        """Usage (while the task runs), output past the server's size and the end (once fixed); then
        apply the reply: its size, cancel and finished."""
        if self.end is None and self.beats.is_usage_due():
            self.beats.set_usage(self.task.usage(self.resources, self.handover.task.gpu_ids))
        self.beats.set_queue_note(self.task.queue_note)
        try:
            with self.stop.server_call():
                reply = self.beats.send(self.task.output, self.end)
        except ServerRejected as exc:
            self.handle_rejected(exc)
            return
        if reply is not None:
            self.apply_reply(reply)

    def apply_reply(self, reply: SubHeartbeatReply) -> None:
        if not self.take_acknowledged(reply.log_size):
            return
        if reply.cancel and self.phase in (Phase.RUNNING, Phase.DRAINING):
            self.task.kill("canceled by the server")
        if reply.finished:
            self.finish(OUTCOME_FINISHED, EXIT_FINISHED)

    def take_acknowledged(self, log_size: int) -> bool:
        """The server holds log_size bytes: the spool drops them. False (and the sub-agent leaves) when
        the server holds fewer than the spool still has: it lost acknowledged output, gone from here too."""
        output = self.task.output
        if output is not None and log_size < output.base:
            log.error("task_output_lost", server_size=log_size, spool_from=output.base)
            self.task.kill_now()
            self.finish(OUTCOME_OUTPUT_LOST, EXIT_OUTPUT_LOST)
            return False
        self.beats.acked = log_size
        if output is not None:
            output.acknowledge(log_size)
        return True

    def handle_rejected(self, exc: ServerRejected) -> None:
        """413: send less per beat. Otherwise the server no longer counts this task as ours (404/409):
        stop it and leave quietly."""
        if exc.status == 413:
            self.beats.shrink()
            return
        log.error("sub_agent_refused", status=exc.status, code=exc.code, message=exc.message)
        self.task.kill_now()
        self.finish(OUTCOME_REFUSED, EXIT_REFUSED)

    def finish(self, outcome: str, exit_code: int) -> None:
        self.task.close()
        self.spool.finish(outcome)
        log.info("sub_agent_exited", outcome=outcome, returncode=self.end.returncode if self.end else None)
        self.move_to(Phase.DONE, exit_code)

    # -- stopping ---------------------------------------------------------------------------------

    def on_stop_signal(self, *_) -> None:
        """SIGTERM: a cancel (apply_stop_request)."""
        self.stop.request(is_end_fixed=self.phase is Phase.REPORTING)

    def apply_stop_request(self) -> None:
        """A stop signal is a cancel: kill the task; once its end is fixed, deliver the rest for the
        grace, then leave it in the spool for a later sub-agent (leave_undelivered)."""
        if not self.stop.is_requested:
            return
        if self.phase in (Phase.RUNNING, Phase.DRAINING):
            self.task.kill("sub-agent received SIGTERM")
        elif self.phase is Phase.REPORTING:
            self.stop.start_grace()
            if self.stop.is_grace_over():
                self.leave_undelivered()

    def leave_undelivered(self) -> None:
        """Exit before the server has everything: the rest stays in the spool with end.json, for the
        sub-agent the main agent starts next (deliver_only). A disk that cannot take it loses it: said."""
        output = self.task.output
        kept = output.flush_held() and self.spool.write_end(self.end)
        output.close()
        level = log.warning if kept else log.error
        level("task_output_left_undelivered", pending_bytes=self.end.final_size - self.beats.acked, kept_on_disk=kept)
        self.move_to(Phase.DONE, EXIT_UNDELIVERED)
