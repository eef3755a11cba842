"""The main agent's steps for its sub-agents (a mixin of MainAgent, agent/main_agent.py): start one
per hand-over, adopt those a previous run left, reap the ones that exited, and follow one that had
to leave before the server had its task's output with one that delivers the rest.

A sub-agent that exited with its task's end and the rest of the output in its spool (end.json: it
was stopped while the server could not be reached, agent/sub_agent_stop.py) is followed by a
`deliver_only` sub-agent under the same id, at once, or by the next main agent when this one is
stopping: MAX_DELIVERIES times at most. Any other sub-agent that ended without the server's
acknowledgement is lost: what is left of its task is killed and the task reported as died.
"""
from __future__ import annotations

import os
import secrets
import signal
import time
from typing import Optional

import structlog

from agent import process_tree
from agent import slurm
from agent.output_spool import OutputSpool
from agent.slurm_job import recorded_job_id
from agent.spool import OUTCOME_FINISHED, OUTCOME_REFUSED, Spool
from agent.state import TaskRecord
from agent.sub_agent import EXIT_FINISHED, EXIT_REFUSED, Handover, SubAgentConfig
from agent.sub_agent_process import (
    SubAgentProcess, describe_sub_agent_exit, find_live_sub_agent, fork_sub_agent, kill_lost_task,
    process_create_time,
)
from agent.task_settings import resolve_work_dir, work_dir_problem
from task_common.protocol import TaskAssignment

log = structlog.get_logger()

MAX_DELIVERIES = 3  # delivering sub-agents per task, after the one that ran it
# A task the server no longer runs is ended by its sub-agent, told by its own heartbeat's reply (the one
# cancel channel). One still there this long (plus the kill grace) after the server listed it in
# kill_task_ids did not: it is stopped (SIGTERM), then SIGKILLed SUB_AGENT_EXIT_GRACE_S after that.
CANCEL_FALLBACK_S = 10.0
SUB_AGENT_EXIT_GRACE_S = 30.0  # after a SIGTERM: time for the sub-agent to report before we SIGKILL it


class SubAgentSteps:
    def adopt_sub_agents(self) -> None:
        """Sub-agents a previous run started and that still run are ours again (whichever server's
        task they run); the others are reaped."""
        for server_id, memory in [(None, self.state.current), *self.state.other_servers.items()]:
            for task_id, record in list(memory.tasks.items()):
                process = find_live_sub_agent(record)
                sub = SubAgentProcess(record, is_child=False, process=process)
                self.subs.add(sub, server_id)
                if process is None:
                    self.handle_sub_agent_exit(sub, None, server_id)
                    continue
                self.cpus.claim(record.cpu_ids)
                log.info("sub_agent_adopted", task_id=task_id, sub_agent_id=record.sub_agent_id, pid=record.pid,
                         other_server_id=server_id)

    def reap_finished(self) -> None:
        for server_id, sub in self.subs.all():
            has_exited, returncode = sub.poll()
            if has_exited:
                self.handle_sub_agent_exit(sub, returncode, server_id)
        process_tree.reap_exited_children(keep=self.subs.child_pids())

    def share_gpu_usage(self) -> None:
        """Sub-agents are forks and must not call NVML (see ResourceUtil.after_fork): read it for them."""
        now = time.monotonic()
        if not self.resources.has_nvml or not self.subs.all() or now - self.gpu_shared_at < self.sub_interval_s:
            return
        self.gpu_shared_at = now
        snapshot = self.resources.get_gpu_processes()
        for _, sub in self.subs.all():
            pids = [sub.record.pid, *process_tree.descendant_pids(sub.record.pid)]
            usage = self.resources.get_process_gpu_usage(pids, sub.record.gpu_ids, snapshot)
            Spool(self.config.state_dir, sub.record.sub_agent_id).write_gpu_usage(usage)

    def apply_cancels(self) -> None:
        """kill_task_ids: tasks the server no longer runs. Their sub-agents end them when their own heartbeat
        says cancel; one still there after CANCEL_FALLBACK_S did not (hung, or cut off from the server):
        SIGTERM it (it kills its task and delivers the output), and SIGKILL it if it hangs."""
        now = time.monotonic()
        for task_id in self.reply.kill_task_ids if self.reply else []:
            sub = self.subs.current.get(task_id)
            if sub is not None and sub.stop_at is None:
                sub.stop_at = now + self.config.kill_grace_s + CANCEL_FALLBACK_S
        for task_id, sub in self.subs.current.items():
            if sub.stop_at is not None and now > sub.stop_at and sub.kill_at is None:
                sub.kill_at = now + self.config.kill_grace_s + SUB_AGENT_EXIT_GRACE_S
                sub.send_signal(signal.SIGTERM)
                log.warning("task_kill_sent", task_id=task_id, signal="SIGTERM", target="sub-agent")
            elif sub.kill_at is not None and now > sub.kill_at:
                sub.send_signal(signal.SIGKILL)  # reaped as lost next tick, which kills the task tree
                log.warning("task_kill_sent", task_id=task_id, signal="SIGKILL", target="sub-agent")

    def terminate_sub_agents(self) -> None:
        for _, sub in self.subs.all():
            sub.send_signal(signal.SIGTERM)  # the sub-agent kills its task and reports the end

    def create_sub_agent(self, assignment: TaskAssignment) -> bool:
        """Write the task's script and fork its sub-agent; False (and the hand-over refused) when
        either failed: a full disk refuses it with "disk full on <agent>: <path>". A task whose
        work_dir is unusable fails instead (fail_for_work_dir)."""
        task_id = assignment.task_id
        if self.fail_for_work_dir(assignment):
            return False
        sub_agent_id = f"sub-{task_id}-{secrets.token_hex(4)}"
        spool = Spool(self.config.state_dir, sub_agent_id)
        try:
            spool.create(assignment.script_content)
        except OSError as exc:
            self.refuse_handover(task_id, self.disk.report(spool.script, exc))
            return False
        cpu_ids = self.cpus.allocate(assignment.cpu_cores)
        handover = Handover(sub_agent_id=sub_agent_id, main_agent_id=self.state.current.agent_id, task=assignment,
                            cpu_ids=cpu_ids, heartbeat_interval_s=self.sub_interval_s)
        try:
            pid = fork_sub_agent(self.sub_agent_config(), handover, self.resources, self.forget_in_child)
        except OSError as exc:
            self.cpus.release(cpu_ids)
            spool.remove()
            log.error("sub_agent_spawn_failed", task_id=task_id, error=str(exc))
            self.refuse_handover(task_id, f"could not start a sub-agent: {exc}")
            return False
        record = TaskRecord(task_id=task_id, sub_agent_id=sub_agent_id, pid=pid, create_time=process_create_time(pid),
                            cpu_cores=assignment.cpu_cores, cpu_ids=cpu_ids, gpu_ids=assignment.gpu_ids)
        self.subs.add(SubAgentProcess(record))
        self.state_changed = True
        log.info("sub_agent_spawned", task_id=task_id, sub_agent_id=record.sub_agent_id, pid=pid,
                 cpu_ids=cpu_ids, gpu_ids=assignment.gpu_ids)
        return True

    def fail_for_work_dir(self, assignment: TaskAssignment) -> bool:
        """True when the task's own work_dir is missing (or no directory we may enter): it is reported
        as died with why, so the server fails it and frees its room; nothing of it starts."""
        if not assignment.work_dir:
            return False  # the agent's --work-dir: the sub-agent creates it
        path = resolve_work_dir(self.config.work_dir, assignment.work_dir)
        problem = work_dir_problem(path, self.config.name)
        if problem is None:
            return False
        self.state.current.died[assignment.task_id] = problem  # MainHeartbeat.died: failed with this reason
        self.state_changed = True
        log.warning("task_work_dir_missing", task_id=assignment.task_id, work_dir=str(path), problem=problem)
        return True

    def sub_agent_config(self) -> SubAgentConfig:
        c = self.config
        return SubAgentConfig(server_url=c.server_url, state_dir=c.state_dir, work_dir=c.work_dir,
                              token=c.token, kill_grace_s=c.kill_grace_s, output_flush_s=c.output_flush_s,
                              log_level=c.log_level, slurm=c.slurm)

    def forget_in_child(self) -> None:
        """In a freshly forked sub-agent: let go of what belongs to the main agent."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for fd in (self.wakeup_r, self.wakeup_w, self.lock_fd):
            if fd is not None:
                os.close(fd)  # the state dir's lock above all: it must end with the main agent
        self.client.close()  # its pooled sockets are the main agent's connections

    def handle_sub_agent_exit(self, sub: SubAgentProcess, returncode: Optional[int],
                              server_id: Optional[str] = None) -> None:
        """Forget an exited sub-agent, or follow it with a delivering one (redeliver); if it ended
        without the server's acknowledgement, kill what is left of its task and report it."""
        record, memory = sub.record, self.state.memory(server_id)
        logger = log if server_id is None else log.bind(other_server_id=server_id, agent_id=memory.agent_id)
        spool = Spool(self.config.state_dir, record.sub_agent_id)
        outcome = spool.read_outcome()
        if outcome == OUTCOME_FINISHED or returncode == EXIT_FINISHED:
            memory.add_finished(record.task_id)
            logger.info("sub_agent_exited", task_id=record.task_id, returncode=returncode, outcome=outcome)
        elif outcome != OUTCOME_REFUSED and returncode != EXIT_REFUSED:
            if server_id is None and self.redeliver(sub, returncode, spool):
                return
            self.report_lost(record, returncode, spool, server_id, logger)
        else:
            logger.info("sub_agent_exited", task_id=record.task_id, returncode=returncode, outcome=outcome)
        self.cpus.release(record.cpu_ids)
        self.subs.remove(record.task_id, server_id)
        self.state_changed = True
        spool.remove()
        self.sub_agent_logs.finished(record.task_id)

    def report_lost(self, record: TaskRecord, returncode: Optional[int], spool: Spool,
                    server_id: Optional[str], logger) -> None:
        reason = describe_sub_agent_exit(returncode)
        if server_id is None:  # another server's: it never hears from us again, its lease settles it
            self.state.current.died[record.task_id] = reason
        if self.config.slurm is not None:
            self.cancel_lost_job(record, spool, logger)
            return
        sent = kill_lost_task(record, spool.read_pgid(), self.subs.child_pids())
        logger.info("task_kill_sent", task_id=record.task_id, signal="SIGKILL", processes=sent)
        logger.error("sub_agent_exited", task_id=record.task_id, returncode=returncode, reason=reason)

    def cancel_lost_job(self, record: TaskRecord, spool: Spool, logger) -> None:
        """A Slurm task whose sub-agent cannot be followed up: its job must not run on unreported."""
        job_id = recorded_job_id(spool)
        try:
            if job_id is not None:
                slurm.cancel(job_id)
        except slurm.SlurmUnavailable as exc:
            logger.warning("slurm_unavailable", task_id=record.task_id, error=str(exc))
        logger.error("sub_agent_exited", task_id=record.task_id, slurm_job_id=job_id,
                     reason=self.state.current.died.get(record.task_id))

    def can_follow_up(self, record: TaskRecord, returncode: Optional[int], spool: Spool) -> bool:
        """A Slurm job: while its id is in the spool (an adoption after the main agent's own restart,
        returncode None, counts against no limit). Else: its end and all its output are in the spool."""
        if self.config.slurm is not None:
            return recorded_job_id(spool) is not None and (returncode is None or record.deliveries < MAX_DELIVERIES)
        end = spool.read_end()
        return end is not None and record.deliveries < MAX_DELIVERIES \
            and OutputSpool.reopen(spool.dir, end.final_size).size == end.final_size

    def redeliver(self, sub: SubAgentProcess, returncode: Optional[int], spool: Spool) -> bool:
        """Its task is over and the rest of its output in the spool: a sub-agent (same id) delivers it;
        or its Slurm job is followed by a sub-agent (same id) that adopts it (can_follow_up)."""
        record = sub.record
        if not self.can_follow_up(record, returncode, spool):
            return False
        if self.stop_signals > 1:
            return True  # killing everything: the record stays in the state file, the next run delivers
        task = TaskAssignment(task_id=record.task_id, name="", script_content="", cpu_cores=record.cpu_cores,
                              gpu_ids=record.gpu_ids)
        handover = Handover(sub_agent_id=record.sub_agent_id, main_agent_id=self.state.current.agent_id or "",
                            task=task, heartbeat_interval_s=self.sub_interval_s,
                            deliver_only=self.config.slurm is None, adopt_job=self.config.slurm is not None)
        try:
            pid = fork_sub_agent(self.sub_agent_config(), handover, self.resources, self.forget_in_child)
        except OSError as exc:
            log.error("sub_agent_spawn_failed", task_id=record.task_id, error=str(exc))
            return False
        record.pid, record.create_time = pid, process_create_time(pid)
        record.deliveries += returncode is not None or self.config.slurm is None
        self.cpus.claim(record.cpu_ids)
        self.subs.add(SubAgentProcess(record))
        self.state_changed = True
        log.warning("sub_agent_delivery_started", task_id=record.task_id, sub_agent_id=record.sub_agent_id,
                    pid=pid, returncode_was=returncode, delivery=record.deliveries)
        return True
