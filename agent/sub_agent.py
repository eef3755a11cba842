"""Sub-agent: runs exactly one task under bash and reports it until the server has everything.

The main agent forks it (agent/sub_agent_process.py), so it starts with every module loaded. Then:
register (a 409 or cancel: exit without running), run `bash script.sh` in its own session with the
output going straight into a spool file, and heartbeat usage + new output until the server answers
`finished` (a backlog of UPLOAD_MIN_BYTES or more goes as raw uploads instead, the end still by
heartbeat). The task keeps running while the server is unreachable; the spool keeps every byte.

Exit codes the main agent reads: EXIT_FINISHED, EXIT_REFUSED (nothing to report); anything else
means the task was lost and the main agent reports it as died.
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
from agent.spool import OUTCOME_FINISHED, OUTCOME_REFUSED, Spool
from agent.task_killer import KILL_CHECK_INTERVAL_S, TaskKiller
from task_common.protocol import (
    OutputChunk, OutputUpload, ProcessGpuUsage, ProcessUsage, RegisterSub, RegisterSubReply, SubHeartbeat,
    SubHeartbeatReply, TaskAssignment,
)

log = structlog.get_logger()

EXIT_FINISHED = 0
EXIT_REFUSED = 3
EXIT_START_FAILED = 4

MIN_POLL_INTERVAL_S = 0.01  # spool size checks while the task is talkative (and at its start)
MAX_POLL_INTERVAL_S = 0.1  # ... slowing down to this while it is quiet; its exit wakes us at once
OUTPUT_FLUSH_INTERVAL_S = 0.2  # new output is sent at most this often (usage keeps its own interval)
MAX_CHUNK_BYTES = 4 * 1024 * 1024  # output inside one heartbeat (base64 in JSON)
UPLOAD_MIN_BYTES = 64 * 1024  # a backlog this large goes as raw uploads (no base64/JSON: bench log_volume)
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024  # per upload; under the server's default MAX_REQUEST_BYTES (16 MiB)
KILL_GRACE_S = 10.0
REGISTER_GIVE_UP_S = 600.0  # a sub-agent that cannot register this long exits without running the task
TASK_NICE = 5  # tasks run this much below the agents, so a saturated box still heartbeats
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


class SubAgent:
    def __init__(self, config: SubAgentConfig, handover: Handover, resources: ResourceUtil):
        self.config, self.handover, self.task, self.resources = config, handover, handover.task, resources
        self.client = ServerClient(config.server_url, config.token, max_delay_s=HEARTBEAT_RETRY_MAX_DELAY_S,
                                   retry_for_s=RETRY_WINDOW_S)
        self.spool = Spool(config.state_dir, handover.sub_agent_id)
        self.interval_s = handover.heartbeat_interval_s
        self.killer = TaskKiller(marker=handover.sub_agent_id, grace_s=config.kill_grace_s)
        self.proc: Optional[subprocess.Popen] = None
        self.exit_fd: Optional[int] = None  # a pidfd of bash: readable once it exited
        self.reader = None
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
        self.last_sent = float("-inf")  # any heartbeat
        self.last_output_sent = float("-inf")  # a heartbeat that carried output
        self.last_usage_at = float("-inf")
        self.usage = ProcessUsage()
        self.poll_interval_s = MIN_POLL_INTERVAL_S
        self.seen_size = 0
        self.cancel_requested = False
        self.exit_code: Optional[int] = None

    def run(self) -> int:
        """register -> start_task -> until the server says finished, each tick: apply_stop_request,
        check_task, escalate_kill, upload_output and send_heartbeat (when due), wait_for_change (no backlog)."""
        reply = self.register()
        if reply is None:
            self.spool.finish(OUTCOME_REFUSED)
            return EXIT_REFUSED
        self.acked = reply.log_size
        self.interval_s = reply.heartbeat_interval_s
        if not self.start_task():
            return EXIT_START_FAILED
        while self.exit_code is None:
            try:
                self.apply_stop_request()
                self.check_task()
                self.escalate_kill()
                if self.is_upload_due():
                    self.upload_output()
                if self.exit_code is None and self.is_heartbeat_due():
                    self.send_heartbeat()
            except Exception:
                log.exception("agent_tick_failed")
                time.sleep(1.0)  # a persistent fault must not flood the log
            if self.exit_code is None and not (self.backlog or self.upload_backlog):
                self.wait_for_change()
        return self.exit_code

    def register(self) -> Optional[RegisterSubReply]:
        """Ask the server whether to run; retried until it answers. None: do not run the script."""
        message = RegisterSub(sub_agent_id=self.handover.sub_agent_id,
                              main_agent_id=self.handover.main_agent_id, task_id=self.task.task_id,
                              pid=os.getpid(), hostname=socket.gethostname(),
                              monitor_file=str(self.config.log_file))
        give_up_at = time.monotonic() + REGISTER_GIVE_UP_S
        while True:
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
        """Write the script to the spool and start `bash script.sh` with stdout+stderr on one spool fd."""
        self.spool.create(self.task.script_content)
        try:
            with open(self.spool.output, "wb") as out, _pinned_children(self.handover.cpu_ids):
                self.proc = subprocess.Popen(
                    ["bash", str(self.spool.script)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=self.config.work_dir, env=self.task_environment(), start_new_session=True)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("task_process_start_failed", error=str(exc))
            return False
        _lower_priority(self.proc.pid)
        self.spool.write_pgid(self.proc.pid)
        self.killer.pgid = self.proc.pid
        self.reader = open(self.spool.output, "rb")
        with contextlib.suppress(OSError, AttributeError):
            self.exit_fd = os.pidfd_open(self.proc.pid)
        self.last_sent = self.last_usage_at = time.monotonic()  # registering counted as a sign of life
        log.info("task_process_started", pid=self.proc.pid, cpu_ids=self.handover.cpu_ids,
                 gpu_ids=self.task.gpu_ids)
        return True

    def task_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TASK_ID=str(self.task.task_id), TASK_NAME=self.task.name,
                   TASK_SERVER_URL=self.config.server_url, PYTHONUNBUFFERED="1",
                   CUDA_DEVICE_ORDER="PCI_BUS_ID",
                   CUDA_VISIBLE_DEVICES=",".join(str(i) for i in self.task.gpu_ids))
        if self.task.cpu_cores > 0:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.task.cpu_cores)
        env[process_tree.MARKER_ENV] = self.handover.sub_agent_id
        return env

    def apply_stop_request(self) -> None:
        """SIGTERM to the sub-agent (the main agent's kill, or its second stop signal) is a cancel."""
        if self.cancel_requested and self.returncode is None:
            self.request_kill("sub-agent received SIGTERM")

    def check_task(self) -> None:
        """Notice bash's exit; once no process of the task is left, fix the return code and size."""
        if self.returncode is not None or self.proc is None:
            return
        if self.task_rc is None:
            self.task_rc = self.proc.poll()
            if self.task_rc is None:
                process_tree.reap_exited_children(keep=[self.proc.pid])
                return
            log.info("task_process_exited", returncode=self.task_rc)
        now = time.monotonic()
        if now < self.next_leftover_check:
            return
        self.next_leftover_check = now + KILL_CHECK_INTERVAL_S
        if self.killer.has_leftovers():  # the task is over: its background processes go too (GPUs must come free)
            self.request_kill("task ended with processes left behind")
            return
        self.returncode = self.task_rc
        self.final_size = self.spool_size()
        log.info("task_output_complete", returncode=self.returncode, final_size=self.final_size)

    def request_kill(self, reason: str) -> None:
        self.killer.request(reason)

    def escalate_kill(self) -> None:
        if self.returncode is None:
            self.killer.escalate()

    def is_upload_due(self) -> bool:
        if not self.is_upload_pending():
            return False
        return self.upload_backlog or self.returncode is not None or \
            time.monotonic() - self.last_output_sent >= self.config.output_flush_s

    def is_upload_pending(self) -> bool:
        return self.can_upload and self.spool_size() - self.acked >= UPLOAD_MIN_BYTES

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
        self.acked = reply.log_size
        self.interval_s = reply.next_interval_s
        self.is_final_reported = self.returncode is not None
        self.apply_cancel(reply.cancel)
        if reply.finished:
            self.cleanup(OUTCOME_FINISHED)
            self.exit_code = EXIT_FINISHED

    def upload_output(self) -> None:
        """Up to UPLOAD_CHUNK_BYTES of the backlog as a raw upload; apply the reply's size and cancel."""
        self.reader.seek(self.acked)
        offset, raw = self.acked, self.reader.read(UPLOAD_CHUNK_BYTES)
        upload = OutputUpload(sub_agent_id=self.handover.sub_agent_id, task_id=self.task.task_id, offset=offset)
        self.last_output_sent = time.monotonic()
        self.upload_backlog = False
        try:
            reply = self.client.upload_output(upload, raw)
        except ServerUnavailable as exc:
            log.warning("server_request_retried", path="upload_output", problem=str(exc),
                        pending_bytes=self.spool_size() - self.acked)
            return
        except ServerRejected as exc:
            if exc.status == 413:  # a server with a smaller MAX_REQUEST_BYTES: heartbeats only from now on
                log.warning("output_upload_refused", status=exc.status, sent_bytes=len(raw))
                self.can_upload = False
            else:
                self.handle_rejected(exc)
            return
        log.debug("output_uploaded", offset=offset, sent_bytes=len(raw), acked=reply.log_size)
        self.upload_backlog = len(raw) == UPLOAD_CHUNK_BYTES and reply.log_size > self.acked
        self.acked = reply.log_size
        self.is_final_reported = False  # the end is reported (again) with the stored size it now has
        self.apply_cancel(reply.cancel)

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

    def read_task_output(self) -> Optional[OutputChunk]:
        """The spooled output past what the server holds, at most MAX_CHUNK_BYTES, unless uploads take it."""
        if self.reader is None or self.spool_size() <= self.acked or self.is_upload_pending():
            return None
        self.reader.seek(self.acked)
        return OutputChunk.from_bytes(self.acked, self.reader.read(MAX_CHUNK_BYTES))

    def spool_size(self) -> int:
        return os.fstat(self.reader.fileno()).st_size if self.reader else 0

    def wait_for_change(self) -> None:
        """Sleep until bash exits or the next check: short while output flows, longer while quiet."""
        size = self.spool_size()
        if size != self.seen_size or self.task_rc is not None:
            self.seen_size, self.poll_interval_s = size, MIN_POLL_INTERVAL_S
        else:
            self.poll_interval_s = min(MAX_POLL_INTERVAL_S, self.poll_interval_s * 1.5)
        if self.exit_fd is not None and self.task_rc is None:
            select.select([self.exit_fd], [], [], self.poll_interval_s)
        else:
            time.sleep(self.poll_interval_s)

    def cleanup(self, outcome: str) -> None:
        if self.reader:
            self.reader.close()
            self.reader = None
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        self.spool.finish(outcome)
        log.info("sub_agent_exited", outcome=outcome, returncode=self.returncode)


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
