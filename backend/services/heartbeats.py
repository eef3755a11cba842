"""Heartbeats: handle_heartbeat for main agents (hand over tasks, ask for kills) and sub-agents
(store output, report usage, record how the task ended)."""
from __future__ import annotations

import time
from typing import Optional

import structlog
from flask import current_app
from sqlalchemy import bindparam, update
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType, Task, TaskStatus
from backend.services import agents as agent_service
from backend.services import beat_buffer, last_heard, scheduler, signals, sub_output
from backend.services import identity as identity_service
from backend.services import tasks as task_service
from backend.services.errors import NotFound
from backend.services.unit_of_work import unit_of_work
from task_common import protocol as p
from backend.utils.time import sqlite_datetime, utcnow

log = structlog.get_logger()

MAX_TASKS_PER_REPLY = 64
# A task whose hand-over agents refused this many times fails (with the last reason) instead of going
# back to waiting once more: a refusal that keeps happening is never a loop.
MAX_HANDOVER_REFUSALS = 3


def handle_main_heartbeat(msg: p.MainHeartbeat) -> p.MainHeartbeatReply:
    """Record the agent's state, settle its reports, hand over what fits; long-poll while nothing does."""
    agent_service.check_protocol_version(msg.protocol_version, msg.agent_id)
    interval = current_app.config["MAIN_HEARTBEAT_INTERVAL_S"]
    deadline = time.monotonic() + min(msg.wait_s, current_app.config["LONG_POLL_MAX_S"])
    with signals.Watch(signals.WORK) as work:  # from before the first look: no wake-up is missed
        reply = _settle_and_assign(msg, interval, deadline, work)
    reply.server_id = identity_service.get_server_id()
    return reply


def _settle_and_assign(msg: p.MainHeartbeat, interval: float, deadline: float,
                       work: signals.Watch) -> p.MainHeartbeatReply:
    with unit_of_work():
        agent = db.session.get(Agent, msg.agent_id)
        if agent is None or agent.type != AgentType.MAIN.value:
            return p.MainHeartbeatReply(known=False, next_interval_s=interval)
        _record_main_state(agent, msg)
        placed = scheduler.placed_tasks(agent.id)  # read once: reconcile and capacity both use it
        start, kill = _reconcile_placements(agent, msg, placed)
        refused = {r.task_id for r in msg.rejected}  # not handed straight back to the agent that refused it
        start += _assign(agent, refused, placed)  # also sets available_cpu_cores
    while not start and time.monotonic() < deadline:
        work.wait(deadline - time.monotonic())
        with unit_of_work():
            start = _assign(db.session.get(Agent, msg.agent_id), refused)
    return p.MainHeartbeatReply(start=start, kill_task_ids=kill, next_interval_s=interval)


def _record_main_state(agent: Agent, msg: p.MainHeartbeat) -> None:
    structlog.contextvars.bind_contextvars(agent_id=agent.id)
    if not agent.is_online:
        log.info("agent_came_back", agent_id=agent.id)
    agent.status, agent.last_heartbeat_time = AgentStatus.ONLINE.value, utcnow()
    agent.cpu_cores, agent.cpu_usage, agent.memory_usage = msg.cpu_cores, msg.cpu_usage, msg.memory_usage
    agent.memory_used_mib, agent.memory_total_mib = msg.memory_used_mib, msg.memory_total_mib
    agent.gpu_info = [g.to_dict() for g in msg.gpus]
    agent.is_simulated_gpu = any(g.simulated for g in msg.gpus)
    if msg.disk_problem != agent.disk_problem:
        if msg.disk_problem:
            log.warning("agent_disk_full", agent_id=agent.id, problem=msg.disk_problem)
        else:
            log.info("agent_disk_recovered", agent_id=agent.id)
        agent.disk_problem = msg.disk_problem


def _reconcile_placements(agent: Agent, msg: p.MainHeartbeat,
                          placed: list[Task]) -> tuple[list[p.TaskAssignment], list[int]]:
    """Compare what the server placed on this agent with what it reports; return (resend, kill)."""
    alive = set(msg.running_task_ids)
    died = {r.task_id: r.reason for r in msg.died}
    rejected = {r.task_id: r.reason for r in msg.rejected}
    resend, kill, seen = [], [], []
    for task in placed:
        running = task.status == TaskStatus.RUNNING.value
        if task.id in died:
            task.holds_resources = False
            task_service.fail_task(task, died[task.id] or "sub-agent died")
        elif task.id in rejected and running and task.sub_agent_id is None:
            _handle_refusal(agent, task, rejected[task.id])
        elif task.id in alive:
            seen.append(task.id)
            if not running:
                kill.append(task.id)
        elif running and not task.handover_acked:
            log.info("task_handover_resent", task_id=task.id)
            resend.append(_assignment(task))
        elif not running:
            task.holds_resources = False  # ended and its process is gone from the box
    last_heard.hear_main_agent(agent.id, seen)  # what liveness decides by; the columns are for display
    if seen:  # one statement instead of an ORM flush of every running task (bench: fleet)
        db.session.connection().execute(_TOUCH_PLACED, {"ids": seen, "now": utcnow()})
    return resend, kill


def _handle_refusal(agent: Agent, task: Task, reason: str) -> None:
    """A hand-over the agent did not start: back to waiting, or failed once MAX_HANDOVER_REFUSALS were refused."""
    reason = reason or "no reason given"
    task.handover_refusals = (task.handover_refusals or 0) + 1
    log.warning("task_handover_rejected", task_id=task.id, reason=reason, refusals=task.handover_refusals)
    if task.handover_refusals >= MAX_HANDOVER_REFUSALS:
        task.holds_resources = False  # no process of it ever ran
        task_service.fail_task(task, f"refused by agent {agent.id}: {reason}")
    else:
        task_service.transition(task, TaskStatus.WAITING, f"agent {agent.id} did not start it: {reason}")


_TOUCH_PLACED = (update(Task.__table__).where(Task.__table__.c.id.in_(bindparam("ids", expanding=True)))
                 .values(handover_acked=True, last_seen_time=bindparam("now")))


def _assign(agent: Agent, skip: set[int], placed: Optional[list[Task]] = None) -> list[p.TaskAssignment]:
    """Hand over every waiting task that fits (find_task_for_agent), recording where it runs, and
    set the agent's available_cpu_cores. A draining agent gets nothing, nor one whose disk is full
    (its tasks wait until it clears, or go elsewhere); its free room is still shown."""
    cap = scheduler.capacity_of(agent, placed)
    found = [] if agent.draining or agent.disk_problem else \
        scheduler.find_task_for_agent(agent, cap, MAX_TASKS_PER_REPLY, skip)
    out = []
    for task, gpu_ids in found:
        task_service.transition(task, TaskStatus.RUNNING, None)
        task.agent_id, task.gpu_ids, task.holds_resources = agent.id, gpu_ids, True
        task.handover_acked, task.sub_agent_id, task.last_seen_time = False, None, utcnow()
        last_heard.hear_task(task.id)
        log.info("task_assigned", task_id=task.id, agent_id=agent.id, gpu_ids=gpu_ids, cpu_cores=task.cpu_cores)
        out.append(_assignment(task))
    agent.available_cpu_cores = max(cap.free_cores, 0)
    return out


def _assignment(task: Task) -> p.TaskAssignment:
    return p.TaskAssignment(task_id=task.id, name=task.name, script_content=task.script_content,
                            cpu_cores=task.cpu_cores, gpu_ids=list(task.gpu_ids or []), gpu_memory=task.gpu_memory)


def handle_sub_heartbeat(msg: p.SubHeartbeat) -> p.SubHeartbeatReply:
    """Store new output and record usage (both outside the write lock: the common beat's writes wait
    in services/beat_buffer.py); once all output is in, record the end."""
    agent_service.check_protocol_version(msg.protocol_version, msg.sub_agent_id)
    structlog.contextvars.bind_contextvars(task_id=msg.task_id, sub_agent_id=msg.sub_agent_id)
    interval = current_app.config["SUB_HEARTBEAT_INTERVAL_S"]
    status = sub_output.refuse_stranger(msg.task_id, msg.sub_agent_id)  # before its bytes reach a task's log
    last_heard.hear_sub_agent(msg.sub_agent_id, msg.task_id)
    size, storage_error = sub_output.store_chunks(msg.task_id, [(c.offset, c.raw()) for c in msg.chunks])
    if msg.returncode is None and not msg.usage.gpus and not storage_error:  # the common beat
        usage = msg.usage
        beat_buffer.record(beat_buffer.Beat(msg.task_id, msg.sub_agent_id, sqlite_datetime(utcnow()),
                                            usage.cpu_usage, usage.memory_usage, usage.memory_used_mib))
        return p.SubHeartbeatReply(log_size=size, cancel=status != TaskStatus.RUNNING.value, finished=False,
                                   next_interval_s=interval)
    with unit_of_work():
        sub, task = _get_sub_and_task(msg)
        _record_sub_state(sub, task, msg)
        if storage_error:
            sub_output.fail_for_storage_error(task, storage_error)
        # A task failed for its log storage gives up the rest of its output: the sub-agent (and the
        # task's resources) would otherwise wait for a broken disk until its main agent kills it.
        finished = msg.returncode is not None and msg.final_size is not None and (
            size >= msg.final_size or bool(storage_error))
        if finished:
            task_service.finish_task(task, msg.returncode)
            sub.status, sub.available_cpu_cores = AgentStatus.OFFLINE.value, sub.cpu_cores  # holds no core now
        cancel = not finished and task.status != TaskStatus.RUNNING.value
    return p.SubHeartbeatReply(log_size=size, cancel=cancel, finished=finished, next_interval_s=interval)


def _get_sub_and_task(msg: p.SubHeartbeat) -> tuple[Agent, Task]:
    sub = db.session.get(Agent, msg.sub_agent_id)
    task = db.session.get(Task, msg.task_id, options=[lazyload(Task.dependency_links)])
    if sub is None or task is None or task.sub_agent_id != msg.sub_agent_id:
        raise _not_running(msg)
    return sub, task


def _not_running(msg: p.SubHeartbeat) -> NotFound:
    return sub_output.not_running(msg.task_id, msg.sub_agent_id)


def _record_sub_state(sub: Agent, task: Task, msg: p.SubHeartbeat) -> None:
    now = utcnow()
    sub.status, sub.last_heartbeat_time, task.last_seen_time = AgentStatus.ONLINE.value, now, now
    usage = msg.usage
    sub.cpu_usage, sub.memory_usage, sub.memory_used_mib = usage.cpu_usage, usage.memory_usage, usage.memory_used_mib
    if not usage.gpus:
        sub.gpu_info = []
        return
    main_gpus = {g["index"]: g for g in (db.session.get(Agent, sub.main_agent_id).gpu_info or [])}
    sub.gpu_info = [{**{k: main_gpus.get(g.index, {}).get(k) for k in ("name", "uuid", "memory_total", "simulated")},
                     "index": g.index, "memory_used": g.memory_used, "utilization": g.utilization}
                    for g in usage.gpus]
