"""Main agents' heartbeats: hand over tasks, ask for kills. (Sub-agents' heartbeats: services/sub_heartbeats.py.)"""
from __future__ import annotations

import time
from typing import Optional

import structlog
from flask import current_app

from backend.extensions import db
from backend.models import Agent, AgentType, Task, TaskStatus
from backend.services import agent_status
from backend.services import agents as agent_service
from backend.services import gpu_view, last_heard, placements, scheduler, signals
from backend.services import identity as identity_service
from backend.services import tasks as task_service
from backend.services.unit_of_work import unit_of_work
from task_common import protocol as p
from backend.utils.time import utcnow

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
        start += _assign(agent, refused, placed, msg.slurm_slots)  # also sets available_cpu_cores
    while not start and time.monotonic() < deadline:
        work.wait(deadline - time.monotonic())
        with unit_of_work():
            start = _assign(db.session.get(Agent, msg.agent_id), refused, slurm_slots=msg.slurm_slots)
    return p.MainHeartbeatReply(start=start, kill_task_ids=kill, next_interval_s=interval)


def _record_main_state(agent: Agent, msg: p.MainHeartbeat) -> None:
    structlog.contextvars.bind_contextvars(agent_id=agent.id)
    agent_status.set_online(agent, "heartbeat")
    agent.last_heartbeat_time = utcnow()
    agent.cpu_cores, agent.cpu_usage, agent.memory_usage = msg.cpu_cores, msg.cpu_usage, msg.memory_usage
    agent.memory_used_mib, agent.memory_total_mib = msg.memory_used_mib, msg.memory_total_mib
    agent.gpu_info = [g.to_dict() for g in msg.gpus]
    agent.is_simulated_gpu = any(g.simulated for g in msg.gpus)
    gpu_view.record(agent.id, msg.gpus)
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
            placements.release(task)
            task_service.fail_task(task, died[task.id] or "sub-agent died")
        elif task.id in rejected and running and placements.state_of(task) is placements.Placement.PLACED:
            _handle_refusal(agent, task, rejected[task.id])
        elif task.id in alive:
            seen.append(task.id)
            if not running:
                kill.append(task.id)
        elif running and not task.handover_acked:
            log.info("task_handover_resent", task_id=task.id)
            resend.append(_assignment(task))
        elif not running:
            placements.release(task)  # ended and its process is gone from the box
    last_heard.hear_main_agent(agent.id, seen)  # what liveness decides by; the columns are for display
    placements.acknowledge_reported(seen)
    return resend, kill


def _handle_refusal(agent: Agent, task: Task, reason: str) -> None:
    """A hand-over the agent did not start: back to waiting, or failed once MAX_HANDOVER_REFUSALS were refused."""
    reason = reason or "no reason given"
    task.handover_refusals = (task.handover_refusals or 0) + 1
    log.warning("task_handover_rejected", task_id=task.id, reason=reason, refusals=task.handover_refusals)
    if task.handover_refusals >= MAX_HANDOVER_REFUSALS:
        placements.release(task)  # no process of it ever ran
        task_service.fail_task(task, f"refused by agent {agent.id}: {reason}")
    else:
        task_service.transition(task, TaskStatus.WAITING, f"agent {agent.id} did not start it: {reason}")


def _assign(agent: Agent, skip: set[int], placed: Optional[list[Task]] = None,
            slurm_slots: Optional[int] = None) -> list[p.TaskAssignment]:
    """Hand over every waiting task that fits (find_task_for_agent), recording where it runs, and
    set the agent's available_cpu_cores. A draining agent gets nothing, nor one whose disk is full
    (its tasks wait until it clears, or go elsewhere); its free room is still shown. A Slurm agent
    (slurm_slots) takes the first waiting tasks, as many as it has slots: Slurm places them."""
    if slurm_slots is not None:
        found = [] if agent.draining or agent.disk_problem else \
            scheduler.find_tasks_for_slots(min(slurm_slots, MAX_TASKS_PER_REPLY), skip)
        agent.available_cpu_cores = max(slurm_slots - len(found), 0)
        return [_place(agent, task, gpu_ids) for task, gpu_ids in found]
    cap = scheduler.capacity_of(agent, placed)
    found = [] if agent.draining or agent.disk_problem else \
        scheduler.find_task_for_agent(agent, cap, MAX_TASKS_PER_REPLY, skip)
    out = []
    for task, gpu_ids in found:
        out.append(_place(agent, task, gpu_ids))
    agent.available_cpu_cores = max(cap.free_cores, 0)
    return out


def _place(agent: Agent, task: Task, gpu_ids: list[int]) -> p.TaskAssignment:
    task_service.transition(task, TaskStatus.RUNNING, None)
    placements.place(task, agent.id, gpu_ids)
    last_heard.hear_task(task.id)
    log.info("task_assigned", task_id=task.id, agent_id=agent.id, gpu_ids=gpu_ids, cpu_cores=task.cpu_cores)
    return _assignment(task)


def _assignment(task: Task) -> p.TaskAssignment:
    return p.TaskAssignment(task_id=task.id, name=task.name, script_content=task.script_content,
                            cpu_cores=task.cpu_cores, gpu_ids=list(task.gpu_ids or []), gpu_memory=task.gpu_memory,
                            env=dict(task.env or {}), work_dir=task.work_dir, time_limit_s=task.time_limit_s or 0,
                            gpu_count=task.gpu_count)
