"""Agent use cases: registration, queries for the UI, and what people do with a main agent: drain,
resume, forget.

Heartbeats live in services/heartbeats.py (main agents) and services/sub_heartbeats.py; liveness in
services/liveness.py. An agent's status and draining change only through services/agent_status.py, a
task's placement only through services/placements.py.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Optional

import structlog
from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType, Task, TaskStatus
from backend.services import agent_status, beat_buffer, gpu_view, last_heard, logs, placements, signals
from backend.services import identity as identity_service
from backend.services.errors import Conflict, NotFound
from backend.services.unit_of_work import after_commit, unit_of_work
from task_common import protocol as p
from task_common.protocol_v1 import PROTOCOL_1
from backend.utils.time import as_utc, utcnow

log = structlog.get_logger()


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
        agent_status.set_online(agent, "registered")
        agent.started_time, agent.last_heartbeat_time = now, now
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
            placements.acknowledge(task, msg.sub_agent_id)
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
    agent_status.set_online(agent, "registered")
    agent.last_heartbeat_time = utcnow()
    agent.task_id, agent.main_agent_id, agent.cpu_cores = task.id, msg.main_agent_id, task.cpu_cores
    agent.is_simulated_gpu = bool(main_has_simulated_gpus)


AgentTree = tuple[Agent, Optional[list[Agent]]]  # a main agent and its sub-agents; a sub-agent and None


def get_agent_tree(agent_id: str) -> AgentTree:
    """One agent as people see it: a main agent with all its sub-agents, or a sub-agent alone."""
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent_not_found", f"Agent {agent_id} does not exist.")
    if agent.type == AgentType.MAIN.value:
        return agent, _sub_agents(agent.id, recent_only=False)
    _show_pending_beats([agent], beat_buffer.pending())
    return agent, None


def get_all_agents(*, all_sub_agents: bool = False) -> list[AgentTree]:
    """Every main agent with its sub-agents: online ones, plus recently finished unless all_sub_agents."""
    mains = db.session.scalars(select(Agent).where(Agent.type == AgentType.MAIN.value).order_by(Agent.created_time))
    by_main: dict[str, list[Agent]] = {}
    for sub in _sub_agents(None, recent_only=not all_sub_agents):
        by_main.setdefault(sub.main_agent_id, []).append(sub)
    return [(main, by_main.get(main.id, [])) for main in mains]


def _sub_agents(main_agent_id: Optional[str], *, recent_only: bool) -> list[Agent]:
    """Sub-agents (of one main agent, or all), newest first, showing their latest beats."""
    pending = beat_buffer.pending()
    query = select(Agent).where(Agent.type == AgentType.SUB.value)
    if main_agent_id is not None:
        query = query.where(Agent.main_agent_id == main_agent_id)
    if recent_only:  # a pending beat makes it recent whatever its row says
        since = utcnow() - timedelta(seconds=current_app.config["RECENT_SUB_AGENTS_S"])
        query = query.where((Agent.status == AgentStatus.ONLINE.value) | (Agent.last_heartbeat_time >= since)
                            | Agent.id.in_(list(pending)))
    subs = list(db.session.scalars(query.order_by(Agent.created_time.desc())))
    _show_pending_beats(subs, pending)
    return subs


def _show_pending_beats(subs: list[Agent], pending: dict[str, beat_buffer.Beat]) -> None:
    """Show each sub-agent as the beat buffer's next flush will write it, instead of flushing: a read writes
    nothing. The values are set as if loaded (set_committed_value), so the session has nothing to flush."""
    beats = {sub.id: pending[sub.id] for sub in subs if sub.id in pending and (
        sub.last_heartbeat_time is None or as_utc(sub.last_heartbeat_time) < pending[sub.id].now)}  # as flush()
    if not beats:
        return
    mains = {sub.main_agent_id for sub in subs if sub.id in beats and beats[sub.id].usage.gpus}
    main_gpus = dict(db.session.execute(select(Agent.id, Agent.gpu_info).where(Agent.id.in_(mains))).all()
                     ) if mains else {}
    for sub in subs:
        beat = beats.get(sub.id)
        if beat is None:
            continue
        values = beat_buffer.beat_values(beat, main_gpus.get(sub.main_agent_id))
        for key, value in {"status": AgentStatus.ONLINE.value, **values}.items():
            set_committed_value(sub, key, value)


def drain_agent(agent_id: str) -> AgentTree:
    """The main agent takes no new tasks (heartbeats._assign); the ones it runs finish. Idempotent."""
    return _set_draining(agent_id, True)


def resume_agent(agent_id: str) -> AgentTree:
    """Undo drain_agent: the agent takes tasks again, from its current long poll on. Idempotent."""
    return _set_draining(agent_id, False)


def _set_draining(agent_id: str, draining: bool) -> AgentTree:
    with unit_of_work(keep_loaded=True):
        agent = _get_main_agent(agent_id, "drained or resumed")
        if agent_status.set_draining(agent, draining, "drained by a user" if draining else "resumed by a user"):
            if not draining:  # wake its long-polling heartbeat: waiting tasks may fit now
                after_commit(lambda: signals.notify(signals.WORK))
    return agent, _sub_agents(agent.id, recent_only=False)


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
    gpu_view.forget(agent_id)


def _get_main_agent(agent_id: str, action: str) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent_not_found", f"Agent {agent_id} does not exist.")
    structlog.contextvars.bind_contextvars(agent_id=agent.id)
    if agent.type != AgentType.MAIN.value:
        raise Conflict("agent_not_main", f"Agent {agent_id} is a sub-agent; only a main agent can be {action}.")
    return agent
