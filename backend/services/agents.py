"""Agent use cases: registration, queries for the UI, liveness (check_agents_status), and what
people do with a main agent: drain, resume, forget.

Heartbeats live in services/heartbeats.py.
"""
from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Optional

import structlog
from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType, Task, TaskStatus
from backend.services import beat_buffer, last_heard, logs, signals
from backend.services import identity as identity_service
from backend.services import tasks as task_service
from backend.services.errors import Conflict, NotFound
from backend.services.unit_of_work import after_commit, unit_of_work
from task_common import protocol as p
from task_common.protocol_v1 import PROTOCOL_1
from backend.utils.time import utcnow

log = structlog.get_logger()

_server_started_monotonic = time.monotonic()
STALL_TOLERANCE_S = 1.0  # the liveness thread may run this much later than planned before it counts as a stall


def mark_server_started() -> None:
    """Agents get a full grace period after the server (re)starts before anything is declared lost."""
    global _server_started_monotonic
    _server_started_monotonic = time.monotonic()


def check_for_server_stall(late_s: float) -> None:
    """A liveness tick late by more than STALL_TOLERANCE_S means this process did not run (SIGSTOP, a
    frozen VM, swapping): agents looked silent because we were, so they get the restart grace."""
    if late_s > STALL_TOLERANCE_S:
        log.warning("server_stall_detected", late_s=round(late_s, 1))
        mark_server_started()


def in_restart_grace() -> bool:
    return time.monotonic() - _server_started_monotonic < current_app.config["RESTART_GRACE_S"]


def check_protocol_version(version: int, agent_id: Optional[str]) -> None:
    if version != p.PROTOCOL_VERSION:
        log.warning("protocol_version_mismatch", agent_version=version, server_version=p.PROTOCOL_VERSION,
                    agent_id=agent_id)
        raise Conflict("protocol_version_mismatch",
                       f"Agent speaks protocol {version}, the server speaks {p.PROTOCOL_VERSION}; update the agent.")


def check_sub_agent_protocol(version: int, sub_agent_id: str) -> None:
    """A sub-agent may speak protocol 1 too: the previous release forked it, and a main agent restarted on
    new code adopted it; it runs the old code until its task is over (task_common/protocol_v1.py)."""
    if version != PROTOCOL_1:
        check_protocol_version(version, sub_agent_id)


def create_main_agent(msg: p.RegisterMain) -> p.RegisterMainReply:
    """Register (or re-register, keeping its id) a main agent. An id another server gave (msg.server_id)
    is not kept: its old sub-agents could otherwise pass for this server's."""
    check_protocol_version(msg.protocol_version, msg.agent_id)
    server_id = identity_service.get_server_id()
    claimed_id = msg.agent_id if msg.server_id in (None, server_id) else None
    with unit_of_work():
        agent = db.session.get(Agent, claimed_id) if claimed_id else None
        if agent is None or agent.type != AgentType.MAIN.value:
            # An id that is unknown is kept; one that names a sub-agent is not this agent's: a fresh one.
            agent_id = claimed_id if claimed_id and agent is None else uuid.uuid4().hex[:12]
            agent = Agent(id=agent_id, type=AgentType.MAIN.value, created_time=utcnow())
            db.session.add(agent)
        now = utcnow()
        agent.name, agent.hostname, agent.monitor_file = msg.name, msg.hostname, msg.monitor_file
        agent.status, agent.started_time, agent.last_heartbeat_time = AgentStatus.ONLINE.value, now, now
        agent.cpu_cores, agent.memory_total_mib = msg.cpu_cores, msg.memory_total_mib
        agent.gpu_info = [g.to_dict() for g in msg.gpus]
        agent.is_simulated_gpu = any(g.simulated for g in msg.gpus)
        log.info("agent_registered", agent_id=agent.id, agent_type="main", name=msg.name,
                 cpu_cores=msg.cpu_cores, gpus=len(msg.gpus), simulated_gpus=agent.is_simulated_gpu)
    cfg = current_app.config
    return p.RegisterMainReply(agent_id=agent.id, heartbeat_interval_s=cfg["MAIN_HEARTBEAT_INTERVAL_S"],
                               sub_heartbeat_interval_s=cfg["SUB_HEARTBEAT_INTERVAL_S"], server_id=server_id)


def create_sub_agent(msg: p.RegisterSub) -> p.RegisterSubReply:
    """Register the sub-agent that will run one task. The first sub-agent for a task wins."""
    check_sub_agent_protocol(msg.protocol_version, msg.sub_agent_id)
    with unit_of_work():
        task = db.session.get(Task, msg.task_id, options=[lazyload(Task.dependency_links)])
        if task is None:
            raise NotFound("task_not_found", f"Task {msg.task_id} does not exist.")
        structlog.contextvars.bind_contextvars(task_id=task.id)
        if task.agent_id != msg.main_agent_id:
            raise Conflict("task_not_assigned", f"Task {task.id} is not placed on agent {msg.main_agent_id}.")
        if task.sub_agent_id not in (None, msg.sub_agent_id):
            log.warning("sub_agent_refused", sub_agent_id=msg.sub_agent_id, running_sub_agent=task.sub_agent_id)
            raise Conflict("task_already_started", f"Task {task.id} is already run by sub-agent {task.sub_agent_id}.")
        same_id = db.session.get(Agent, msg.sub_agent_id)
        if same_id is not None and same_id.type != AgentType.SUB.value:
            raise Conflict("sub_agent_id_taken", f"{msg.sub_agent_id} is a main agent's id; a sub-agent needs its own.")
        cancel = task.status != TaskStatus.RUNNING.value
        if not cancel:
            task.sub_agent_id, task.handover_acked, task.last_seen_time = msg.sub_agent_id, True, utcnow()
            last_heard.hear_sub_agent(msg.sub_agent_id, task.id)
            _upsert_sub_agent(msg, task, same_id)
        log.info("sub_agent_registered", sub_agent_id=msg.sub_agent_id, agent_id=msg.main_agent_id,
                 cancel=cancel)
    # msg.task_id, not task.id: after the commit that would reload the whole row (bench: throughput)
    return p.RegisterSubReply(sub_agent_id=msg.sub_agent_id, log_size=logs.log_size(msg.task_id), cancel=cancel,
                              heartbeat_interval_s=current_app.config["SUB_HEARTBEAT_INTERVAL_S"])


def _upsert_sub_agent(msg: p.RegisterSub, task: Task, agent: Optional[Agent]) -> None:
    """`agent`: the sub-agent's row when it registered before (a retried registration), else None."""
    main_has_simulated_gpus = db.session.scalar(select(Agent.is_simulated_gpu).where(Agent.id == msg.main_agent_id))
    if agent is None:
        agent = Agent(id=msg.sub_agent_id, type=AgentType.SUB.value, name=f"task-{task.id}",
                      created_time=utcnow(), started_time=utcnow())
        db.session.add(agent)
    agent.hostname, agent.monitor_file = msg.hostname, msg.monitor_file
    agent.status, agent.last_heartbeat_time = AgentStatus.ONLINE.value, utcnow()
    agent.task_id, agent.main_agent_id, agent.cpu_cores = task.id, msg.main_agent_id, task.cpu_cores
    agent.is_simulated_gpu = bool(main_has_simulated_gpus)


def get_agent_by_id(agent_id: str) -> Agent:
    beat_buffer.flush()  # the latest usage readings
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent_not_found", f"Agent {agent_id} does not exist.")
    return agent


def get_all_agents(*, all_sub_agents: bool = False,
                   main_agent_id: Optional[str] = None) -> list[tuple[Agent, list[Agent]]]:
    """Main agents (or just one) with their sub-agents: online ones, plus recently finished unless
    all_sub_agents."""
    beat_buffer.flush()  # the latest usage readings
    mains_query = select(Agent).where(Agent.type == AgentType.MAIN.value)
    subs_query = select(Agent).where(Agent.type == AgentType.SUB.value)
    if main_agent_id is not None:
        mains_query = mains_query.where(Agent.id == main_agent_id)
        subs_query = subs_query.where(Agent.main_agent_id == main_agent_id)
    mains = list(db.session.scalars(mains_query.order_by(Agent.created_time)))
    if not all_sub_agents:
        since = utcnow() - timedelta(seconds=current_app.config["RECENT_SUB_AGENTS_S"])
        subs_query = subs_query.where((Agent.status == AgentStatus.ONLINE.value) | (Agent.last_heartbeat_time >= since))
    by_main: dict[str, list[Agent]] = {}
    for sub in db.session.scalars(subs_query.order_by(Agent.created_time.desc())):
        by_main.setdefault(sub.main_agent_id, []).append(sub)
    return [(main, by_main.get(main.id, [])) for main in mains]


def check_agents_status() -> None:
    """Liveness, by this process's monotonic clock (services/last_heard.py), never the wall clock:
    agents silent past AGENT_OFFLINE_AFTER_S go offline; running tasks silent past the lease are
    judged by _check_silent_tasks."""
    beat_buffer.flush()  # judge by every beat received so far
    with unit_of_work():
        running = dict(db.session.execute(select(Task.id, Task.agent_id).where(
            Task.status == TaskStatus.RUNNING.value)).all())
        agents = dict(db.session.execute(select(Agent.id, Agent.status).where(
            (Agent.type == AgentType.MAIN.value) | (Agent.status == AgentStatus.ONLINE.value))).all())
        now = last_heard.clock()
        last_heard.keep_only(running, agents, now)  # seeds the ones this process never heard with now
        if in_restart_grace():
            return
        _mark_silent_agents_offline([a for a, status in agents.items() if status == AgentStatus.ONLINE.value], now)
        _check_silent_tasks(running, now)


def _mark_silent_agents_offline(online_ids: list[str], now: float) -> None:
    offline_after_s = current_app.config["AGENT_OFFLINE_AFTER_S"]
    silent = [agent_id for agent_id in online_ids if now - last_heard.agent_heard(agent_id) > offline_after_s]
    if not silent:
        return
    for agent in db.session.scalars(select(Agent).where(Agent.id.in_(silent))):
        agent.status = AgentStatus.OFFLINE.value
        log.info("agent_went_offline", agent_id=agent.id, agent_type=agent.type,
                 silent_s=round(now - last_heard.agent_heard(agent.id), 1))


def _check_silent_tasks(running: dict[int, Optional[str]], now: float) -> None:
    """A task silent past the lease fails at once if its main agent was heard since (and did not report
    it running). If its main agent is silent too, the box is unreachable, not the task dead: the task
    keeps running, noted "agent unreachable since", and fails once silent for AGENT_LOST_AFTER_S."""
    cfg = current_app.config
    before, notes = last_heard.unreachable_notes(), {}
    for task_id, agent_id in running.items():
        heard = last_heard.task_heard(task_id)
        silent = now - heard
        if silent <= cfg["SUB_AGENT_LEASE_S"]:
            if task_id in before:
                log.info("agent_reached_again", task_id=task_id, agent_id=agent_id)
        elif agent_id is None or last_heard.agent_heard(agent_id) > heard:
            log.error("sub_agent_lost", task_id=task_id, agent_id=agent_id, silent_s=round(silent, 1))
            _fail_lost_task(task_id, f"agent lost: no sign of the task for {silent:.0f} s (its sub-agent is silent "
                                     f"and main agent {agent_id} does not report it running)")
        elif silent > cfg["AGENT_LOST_AFTER_S"]:
            log.error("agent_lost", task_id=task_id, agent_id=agent_id, silent_s=round(silent, 1))
            _fail_lost_task(task_id, f"agent lost: main agent {_agent_label(agent_id)} unreachable for {silent:.0f} s "
                                     f"(nothing from it or the task's sub-agent; the limit, AGENT_LOST_AFTER_S, "
                                     f"is {cfg['AGENT_LOST_AFTER_S']:g} s)")
        elif task_id in before:
            notes[task_id] = before[task_id]
        else:
            log.warning("agent_went_unreachable", task_id=task_id, agent_id=agent_id, silent_s=round(silent, 1))
            notes[task_id] = utcnow() - timedelta(seconds=silent)  # the wall clock only for people to read
    last_heard.set_unreachable(notes)


def _fail_lost_task(task_id: int, reason: str) -> None:
    task = db.session.get(Task, task_id)
    task_service.fail_task(task, reason)
    task.holds_resources = False


def _agent_label(agent_id: str) -> str:
    """`name (id)` for a status_reason a person reads; the id alone if the row is gone."""
    name = db.session.scalar(select(Agent.name).where(Agent.id == agent_id))
    return f"{name} ({agent_id})" if name else agent_id


def drain_agent(agent_id: str) -> Agent:
    """The main agent takes no new tasks (heartbeats._assign); the ones it runs finish. Idempotent."""
    return _set_draining(agent_id, True)


def resume_agent(agent_id: str) -> Agent:
    """Undo drain_agent: the agent takes tasks again, from its current long poll on. Idempotent."""
    return _set_draining(agent_id, False)


def _set_draining(agent_id: str, draining: bool) -> Agent:
    with unit_of_work(keep_loaded=True):
        agent = _get_main_agent(agent_id, "drained or resumed")
        if agent.draining != draining:  # only a change is logged
            agent.draining = draining
            log.info("agent_drained" if draining else "agent_resumed")
            if not draining:  # wake its long-polling heartbeat: waiting tasks may fit now
                after_commit(lambda: signals.notify(signals.WORK))
    return agent


def forget_agent(agent_id: str) -> None:
    """Delete an offline main agent and its sub-agents. Their tasks keep agent_id and sub_agent_id;
    if the box comes back with that id it simply registers again (create_main_agent)."""
    with unit_of_work():
        agent = _get_main_agent(agent_id, "forgotten")
        if agent.is_online:
            raise Conflict("agent_online", f"Agent {agent_id} is online; stop it before forgetting it.")
        # Its tasks' sub-agents may still run (and beat) while their main agent is gone; wait for them
        # to finish or be declared lost (AGENT_LOST_AFTER_S once nothing of the box is heard).
        running = list(db.session.scalars(select(Task.id).where(Task.agent_id == agent_id,
                                                                Task.status == TaskStatus.RUNNING.value)))
        if running:
            raise Conflict("agent_has_running_tasks",
                           f"Agent {agent_id} still has running tasks ({', '.join(map(str, running))}); "
                           "forget it once they finished.")
        subs = db.session.execute(delete(Agent).where(Agent.type == AgentType.SUB.value,
                                                      Agent.main_agent_id == agent_id)).rowcount
        db.session.delete(agent)
        log.info("agent_forgotten", sub_agents=subs)


def _get_main_agent(agent_id: str, action: str) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent_not_found", f"Agent {agent_id} does not exist.")
    structlog.contextvars.bind_contextvars(agent_id=agent.id)
    if agent.type != AgentType.MAIN.value:
        raise Conflict("agent_not_main", f"Agent {agent_id} is a sub-agent; only a main agent can be {action}.")
    return agent
