"""Sub-agent: runs exactly one task under bash and reports it until the server has everything.

The main agent forks it (agent/sub_agent_process.py), so it starts with every module loaded. Then:
register (a 409 or cancel: exit without running), run `bash script.sh` in its own session with its
output going through a pipe into the spool (agent/output_spool.py), and heartbeat usage + new output
until the server answers `finished` (a backlog of UPLOAD_MIN_BYTES or more goes as raw uploads
instead, the end still by heartbeat). The task keeps running while the server is unreachable; the
spool keeps every byte not acknowledged yet (in memory while its disk is full).

A stop signal (SIGTERM) is a cancel: the task is killed, and once it is over the sub-agent delivers
the rest for STOP_DELIVERY_GRACE_S at most, then leaves it in the spool (with end.json) and exits
EXIT_UNDELIVERED; the main agent, or the next one, starts a sub-agent with `deliver_only` that sends it.

Exit codes the main agent reads: EXIT_FINISHED, EXIT_REFUSED (nothing to report), EXIT_UNDELIVERED
(deliver the rest); anything else means the task was lost and the main agent reports it as died.
"""
from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import structlog

from agent import process_tree
from agent.resource_util import ResourceUtil
from agent.server_client import ServerClient, ServerRejected, ServerUnavailable
from agent.output_spool import OutputSpool
from agent.spool import OUTCOME_FINISHED, OUTCOME_REFUSED, Spool, TaskEnd
from agent.sub_agent_output import MAX_CHUNK_BYTES, OutputSending
from agent.sub_agent_stop import DeliveryStopped, Stopping
from agent.task_killer import KILL_CHECK_INTERVAL_S, TaskKiller
from agent.task_start import start_bash, task_environment
from task_common.protocol import (
    ProcessGpuUsage, ProcessUsage, RegisterSub, RegisterSubReply, SubHeartbeat,
    SubHeartbeatReply, TaskAssignment,
)

log = structlog.get_logger()

EXIT_FINISHED = 0
EXIT_REFUSED = 3
EXIT_START_FAILED = 4
# EXIT_UNDELIVERED (sub_agent_stop.py) and EXIT_OUTPUT_LOST (sub_agent_output.py) complete the list.

MIN_POLL_INTERVAL_S = 0.01  # spool size checks while the task is talkative (and at its start)
MAX_POLL_INTERVAL_S = 0.1  # ... slowing down to this while it is quiet; its exit wakes us at once
OUTPUT_FLUSH_INTERVAL_S = 0.2  # new output is sent at most this often (usage keeps its own interval)
KILL_GRACE_S = 10.0
REGISTER_GIVE_UP_S = 600.0  # a sub-agent that cannot register this long exits without running the task
PIPE_DRAIN_S = 2.0  # after the task's last process: time for the pipe's last bytes (a stray holder: go on)
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


@dataclass
class Handover:
    """One task for one sub-agent, as the main agent hands it over."""

    sub_agent_id: str
    main_agent_id: str
    task: TaskAssignment
    cpu_ids: list[int] = field(default_factory=list)  # cores to pin the task to; [] = no pinning
    heartbeat_interval_s: float = 1.0
    deliver_only: bool = False  # the task ended under an earlier sub-agent: send what its spool holds


class SubAgent(Stopping, OutputSending):
    def __init__(self, config: SubAgentConfig, handover: Handover, resources: ResourceUtil):
        self.config, self.handover, self.task, self.resources = config, handover, handover.task, resources
        self.client = ServerClient(config.server_url, config.token, max_delay_s=HEARTBEAT_RETRY_MAX_DELAY_S,
                                   retry_for_s=RETRY_WINDOW_S)
        self.spool = Spool(config.state_dir, handover.sub_agent_id)
        self.interval_s = handover.heartbeat_interval_s
        self.killer = TaskKiller(marker=handover.sub_agent_id, grace_s=config.kill_grace_s)
        self.proc: Optional[subprocess.Popen] = None
        self.exit_fd: Optional[int] = None  # a pidfd of bash: readable once it exited
        self.output: Optional[OutputSpool] = None
        self.acked = 0  # bytes the server holds
        self.backlog = False  # the last chunk was capped: send the next one right away
        self.upload_backlog = False  # the same for the last upload
        # Uploads stop once the server stops the task (its heartbeat path then settles a broken disk) or
        # refuses one as too large; output then rides in heartbeats only, as it always can.
        self.can_upload = True
        self.task_rc: Optional[int] = None  # bash's return code, once it exited
        self.returncode: Optional[int] = None  # reported once no task process is left
        self.final_size: Optional[int] = None
        self.is_final_reported = False
        self.next_leftover_check = 0.0
        self.eof_deadline: Optional[float] = None  # set once no process of the task is left
        self.last_sent = float("-inf")  # any heartbeat
        self.last_output_sent = float("-inf")  # a heartbeat that carried output
        self.last_usage_at = float("-inf")
        self.usage = ProcessUsage()
        self.poll_interval_s = MIN_POLL_INTERVAL_S
        self.seen_size = 0
        self.cancel_requested = False
        self.stop_deadline: Optional[float] = None  # after a stop signal, once the task is over
        self.in_server_call = False
        self.exit_code: Optional[int] = None

    def run(self) -> int:
        """begin (register -> start_task, or resume_delivery) -> until the server says finished, each
        tick: apply_stop_request, check_task, escalate_kill, upload_output and send_heartbeat (when
        due), wait_for_change (no backlog)."""
        code = self.begin()
        if code is not None:
            return code
        while self.exit_code is None:
            try:
                self.apply_stop_request()
                self.check_task()
                self.escalate_kill()
                if self.is_upload_due():
                    self.upload_output()
                if self.exit_code is None and self.is_heartbeat_due():
                    self.send_heartbeat()
            except DeliveryStopped:
                self.leave_undelivered()
            except Exception:
                log.exception("agent_tick_failed")
                time.sleep(1.0)  # a persistent fault must not flood the log
            if self.exit_code is None and not (self.backlog or self.upload_backlog):
                self.wait_for_change()
        return self.exit_code

    def begin(self) -> Optional[int]:
        """Register and start the task (or take up an earlier sub-agent's delivery); an exit code if not."""
        if self.handover.deliver_only:
            return None if self.resume_delivery() else EXIT_START_FAILED
        reply = self.register()
        if reply is None:
            self.spool.finish(OUTCOME_REFUSED)
            return EXIT_REFUSED
        self.acked = reply.log_size
        self.interval_s = reply.heartbeat_interval_s
        return None if self.start_task() else EXIT_START_FAILED

    def register(self) -> Optional[RegisterSubReply]:
        """Ask the server whether to run; retried until it answers. None: do not run the script."""
        message = RegisterSub(sub_agent_id=self.handover.sub_agent_id,
                              main_agent_id=self.handover.main_agent_id, task_id=self.task.task_id,
                              pid=os.getpid(), hostname=socket.gethostname(),
                              monitor_file=str(self.config.log_file))
        give_up_at = time.monotonic() + REGISTER_GIVE_UP_S
        while True:
            if self.cancel_requested:  # stopped before the task started: nothing to run or report
                log.info("sub_agent_refused", code="stopped")
                return None
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

    def start_task(self) -> bool:
        """Start `bash script.sh` (the main agent wrote it) with its output into the spool."""
        env = task_environment(self.task, self.config.server_url, self.handover.sub_agent_id)
        try:
            self.proc, pipe_fd = start_bash(self.spool.script, cwd=self.config.work_dir, env=env,
                                            cpu_ids=self.handover.cpu_ids)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("task_process_start_failed", error=str(exc))
            return False
        self.output = OutputSpool(self.spool.dir)
        self.output.start_reader(pipe_fd)
        self.spool.write_pgid(self.proc.pid)
        self.killer.pgid = self.proc.pid
        with contextlib.suppress(OSError, AttributeError):
            self.exit_fd = os.pidfd_open(self.proc.pid)
        self.last_sent = self.last_usage_at = time.monotonic()  # registering counted as a sign of life
        log.info("task_process_started", pid=self.proc.pid, cpu_ids=self.handover.cpu_ids,
                 gpu_ids=self.task.gpu_ids)
        return True

    def check_task(self) -> None:
        """Notice bash's exit; once no process of the task is left and the pipe gave its last byte,
        fix the return code and size (also in end.json, for a delivery after this sub-agent)."""
        if self.returncode is not None or self.proc is None:
            return
        if self.task_rc is None:
            self.task_rc = self.proc.poll()
            if self.task_rc is None:
                process_tree.reap_exited_children(keep=[self.proc.pid])
                return
            log.info("task_process_exited", returncode=self.task_rc)
        now = time.monotonic()
        if self.eof_deadline is None:
            if now < self.next_leftover_check:
                return
            self.next_leftover_check = now + KILL_CHECK_INTERVAL_S
            if self.killer.has_leftovers():  # the task is over: its background processes go too (GPUs must come free)
                self.request_kill("task ended with processes left behind")
                return
            self.eof_deadline = now + PIPE_DRAIN_S
        if not self.output.eof.is_set() and now < self.eof_deadline:
            return
        self.returncode, self.final_size = self.task_rc, self.spool_size()
        self.spool.write_end(TaskEnd(self.returncode, self.final_size))
        log.info("task_output_complete", returncode=self.returncode, final_size=self.final_size,
                 pipe_closed=self.output.eof.is_set())

    def request_kill(self, reason: str) -> None:
        self.killer.request(reason)

    def escalate_kill(self) -> None:
        if self.returncode is None:
            self.killer.escalate()

    def is_heartbeat_due(self) -> bool:
        if self.backlog or (self.returncode is not None and not self.is_final_reported
                            and not self.is_upload_pending()):  # the end, once the uploads are through
            return True
        now = time.monotonic()
        if self.spool_size() > self.acked and now - self.last_output_sent >= self.config.output_flush_s:
            return True
        return now - self.last_sent >= self.interval_s

    def send_heartbeat(self) -> None:
        """Usage + everything past the server's size (capped); apply the reply's size, cancel, finished."""
        self.sample_usage()
        chunk = self.read_task_output()
        message = SubHeartbeat(sub_agent_id=self.handover.sub_agent_id, task_id=self.task.task_id,
                               usage=self.usage, chunks=[chunk] if chunk else [],
                               returncode=self.returncode, final_size=self.final_size)
        self.last_sent = time.monotonic()
        if chunk:
            self.last_output_sent = self.last_sent
        try:
            with self.server_call():
                reply = self.client.sub_heartbeat(message)
        except ServerUnavailable as exc:
            log.warning("server_request_retried", path="sub_heartbeat", problem=str(exc),
                        pending_bytes=self.spool_size() - self.acked)
            return
        except ServerRejected as exc:
            self.handle_rejected(exc)
            return
        self.handle_reply(reply, sent_bytes=len(chunk.raw()) if chunk else 0)

    def handle_reply(self, reply: SubHeartbeatReply, sent_bytes: int) -> None:
        log.debug("sub_heartbeat_sent", acked=reply.log_size, sent_bytes=sent_bytes)
        self.backlog = sent_bytes == MAX_CHUNK_BYTES and reply.log_size > self.acked
        if not self.take_acknowledged(reply.log_size):
            return
        self.interval_s = reply.next_interval_s
        self.is_final_reported = self.returncode is not None
        self.apply_cancel(reply.cancel)
        if reply.finished:
            self.cleanup(OUTCOME_FINISHED)
            self.exit_code = EXIT_FINISHED

    def apply_cancel(self, cancel: bool) -> None:
        """The server no longer runs the task: kill it (still running) and send the rest by heartbeat."""
        if not cancel:
            return
        self.can_upload = False
        if self.returncode is None:
            self.request_kill("canceled by the server")

    def handle_rejected(self, exc: ServerRejected) -> None:
        """The server no longer counts this task as ours (404/409): stop it and leave quietly."""
        log.error("sub_agent_refused", status=exc.status, code=exc.code, message=exc.message)
        self.killer.kill_now()
        self.cleanup(OUTCOME_REFUSED)
        self.exit_code = EXIT_REFUSED

    def sample_usage(self) -> None:
        """CPU, memory and GPU use of the task's processes, at most once per heartbeat interval."""
        now = time.monotonic()
        if now - self.last_usage_at < self.interval_s or self.returncode is not None:
            return
        self.last_usage_at = now
        me = os.getpid()
        processes = self.resources.tree_processes(me, include_root=False)
        memory = self.resources.get_memory_usage(me, processes=processes)
        self.usage = ProcessUsage(
            cpu_usage=self.resources.get_cpu_usage(me, processes=processes),
            memory_used_mib=memory.used_mib, memory_usage=memory.percent,
            gpus=self.spool.read_gpu_usage() or [ProcessGpuUsage(index=i) for i in self.task.gpu_ids])

    def wait_for_change(self) -> None:
        """Sleep until bash exits or the next check: short while output flows, longer while quiet."""
        size = self.spool_size()
        if size != self.seen_size or self.task_rc is not None:
            self.seen_size, self.poll_interval_s = size, MIN_POLL_INTERVAL_S
        else:
            self.poll_interval_s = min(MAX_POLL_INTERVAL_S, self.poll_interval_s * 1.5)
        if self.exit_fd is not None and self.task_rc is None:
            select.select([self.exit_fd], [], [], self.poll_interval_s)
        elif self.returncode is None and self.output is not None:
            self.output.eof.wait(self.poll_interval_s)  # the pipe's last bytes
        else:
            time.sleep(self.poll_interval_s)

    def cleanup(self, outcome: str) -> None:
        if self.output:
            self.output.close()
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        self.spool.finish(outcome)
        log.info("sub_agent_exited", outcome=outcome, returncode=self.returncode)

