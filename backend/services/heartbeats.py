"""Heartbeats: handle_heartbeat for main agents (hand over tasks, ask for kills) and sub-agents
(store output, report usage, record how the task ended)."""
from __future__ import annotations

import time

import structlog
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType, Task, TaskStatus
from backend.services import agents as agent_service
from backend.services import logs, scheduler, signals
from backend.services import tasks as task_service
from backend.services.errors import NotFound
from backend.services.unit_of_work import unit_of_work
from backend.utils import protocol as p
from backend.utils.time import utcnow

log = structlog.get_logger()

MAX_TASKS_PER_REPLY = 64


def handle_main_heartbeat(msg: p.MainHeartbeat) -> p.MainHeartbeatReply:
    """Record the agent's state, settle its reports, hand over what fits; long-poll while nothing does."""
    agent_service.check_protocol_version(msg.protocol_version, msg.agent_id)
    interval = current_app.config["MAIN_HEARTBEAT_INTERVAL_S"]
    deadline = time.monotonic() + min(msg.wait_s, current_app.config["LONG_POLL_MAX_S"])
    seen = signals.version(signals.WORK)
    with unit_of_work():
        agent = db.session.get(Agent, msg.agent_id)
        if agent is None or agent.type != AgentType.MAIN.value:
            return p.MainHeartbeatReply(known=False, next_interval_s=interval)
        _record_main_state(agent, msg)
        start, kill = _reconcile_placements(agent, msg)
        refused = {r.task_id for r in msg.rejected}  # not handed straight back to the agent that refused it
        start += _assign(agent, refused)
    while not start and time.monotonic() < deadline:
        seen = signals.wait(signals.WORK, seen, deadline - time.monotonic())
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


def _reconcile_placements(agent: Agent, msg: p.MainHeartbeat) -> tuple[list[p.TaskAssignment], list[int]]:
    """Compare what the server placed on this agent with what it reports; return (resend, kill)."""
    alive = set(msg.running_task_ids)
    died = {r.task_id: r.reason for r in msg.died}
    rejected = {r.task_id: r.reason for r in msg.rejected}
    resend, kill = [], []
    now = utcnow()
    for task in scheduler.placed_tasks(agent.id):
        running = task.status == TaskStatus.RUNNING.value
        if task.id in died:
            task.holds_resources = False
            task_service.fail_task(task, died[task.id] or "sub-agent died")
        elif task.id in rejected and running and task.sub_agent_id is None:
            log.warning("task_handover_rejected", task_id=task.id, reason=rejected[task.id])
            task_service.transition(task, TaskStatus.WAITING, f"agent {agent.id} did not start it: {rejected[task.id]}")
        elif task.id in alive:
            task.handover_acked, task.last_seen_time = True, now
            if not running:
                kill.append(task.id)
        elif running and not task.handover_acked:
            log.info("task_handover_resent", task_id=task.id)
            resend.append(_assignment(task))
        elif not running:
            task.holds_resources = False  # ended and its process is gone from the box
    _update_available_cores(agent)
    return resend, kill


def _assign(agent: Agent, skip: set[int]) -> list[p.TaskAssignment]:
    """Hand over every waiting task that fits (find_task_for_agent), recording where it runs."""
    cap = scheduler.capacity_of(agent)
    out = []
    for task, gpu_ids in scheduler.find_task_for_agent(agent, cap, MAX_TASKS_PER_REPLY, skip):
        task_service.transition(task, TaskStatus.RUNNING, None)
        task.agent_id, task.gpu_ids, task.holds_resources = agent.id, gpu_ids, True
        task.handover_acked, task.sub_agent_id, task.last_seen_time = False, None, utcnow()
        log.info("task_assigned", task_id=task.id, agent_id=agent.id, gpu_ids=gpu_ids, cpu_cores=task.cpu_cores)
        out.append(_assignment(task))
    agent.available_cpu_cores = max(cap.free_cores, 0)
    return out


def _update_available_cores(agent: Agent) -> None:
    agent.available_cpu_cores = max(scheduler.capacity_of(agent).free_cores, 0)


def _assignment(task: Task) -> p.TaskAssignment:
    return p.TaskAssignment(task_id=task.id, name=task.name, script_content=task.script_content,
                            cpu_cores=task.cpu_cores, gpu_ids=list(task.gpu_ids or []), gpu_memory=task.gpu_memory)


def handle_sub_heartbeat(msg: p.SubHeartbeat) -> p.SubHeartbeatReply:
    """Store new output (outside the write lock), then record usage and, once all is in, the end."""
    agent_service.check_protocol_version(msg.protocol_version, msg.sub_agent_id)
    structlog.contextvars.bind_contextvars(task_id=msg.task_id, sub_agent_id=msg.sub_agent_id)
    _refuse_stranger(msg)  # before writing its bytes into a task's log
    size, storage_error = _store_chunks(msg)
    with unit_of_work():
        sub, task = _get_sub_and_task(msg)
        _record_sub_state(sub, task, msg)
        if storage_error:
            log.error("log_write_failed", error=storage_error)
            task_service.fail_task(task, f"could not store the task's output on the server: {storage_error}")
        # A task failed for its log storage gives up the rest of its output: the sub-agent (and the
        # task's resources) would otherwise wait for a broken disk until its main agent kills it.
        finished = msg.returncode is not None and msg.final_size is not None and (
            size >= msg.final_size or bool(storage_error))
        if finished:
            task_service.finish_task(task, msg.returncode)
            sub.status, sub.available_cpu_cores = AgentStatus.OFFLINE.value, sub.cpu_cores  # holds no core now
        cancel = not finished and task.status != TaskStatus.RUNNING.value
    return p.SubHeartbeatReply(log_size=size, cancel=cancel, finished=finished,
                               next_interval_s=current_app.config["SUB_HEARTBEAT_INTERVAL_S"])


def _refuse_stranger(msg: p.SubHeartbeat) -> None:
    """The cheap check (one column, no objects): heartbeats are the server's most frequent request."""
    if db.session.scalar(select(Task.sub_agent_id).where(Task.id == msg.task_id)) != msg.sub_agent_id:
        raise _not_running(msg)


def _get_sub_and_task(msg: p.SubHeartbeat) -> tuple[Agent, Task]:
    sub = db.session.get(Agent, msg.sub_agent_id)
    task = db.session.get(Task, msg.task_id, options=[lazyload(Task.dependency_links)])
    if sub is None or task is None or task.sub_agent_id != msg.sub_agent_id:
        raise _not_running(msg)
    return sub, task


def _not_running(msg: p.SubHeartbeat) -> NotFound:
    return NotFound("sub_agent_not_found", f"Sub-agent {msg.sub_agent_id} is not running task {msg.task_id}.")


def _store_chunks(msg: p.SubHeartbeat) -> tuple[int, str | None]:
    size = logs.log_size(msg.task_id)
    try:
        for chunk in sorted(msg.chunks, key=lambda c: c.offset):
            size = logs.append_task_log(msg.task_id, chunk.offset, chunk.raw())
    except OSError as exc:
        return logs.log_size(msg.task_id), f"{exc.strerror or exc} ({type(exc).__name__})"
    return size, None


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
