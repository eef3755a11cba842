"""Liveness: which agents went silent and which running tasks are lost, judged once a tick
(backend/factory.py) by this process's monotonic clock (services/last_heard.py), never the wall clock.

Agents silent past AGENT_OFFLINE_AFTER_S go offline. A running task silent past SUB_AGENT_LEASE_S
fails at once if its main agent was heard since (and did not report it); if its main agent is silent
too the box is unreachable, not the task dead: it keeps running, noted "agent unreachable since", and
fails once silent for AGENT_LOST_AFTER_S. After the server starts (or stalls) nothing is judged for
RESTART_GRACE_S.
"""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Optional

import structlog
from flask import current_app
from sqlalchemy import select

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType, Task, TaskStatus
from backend.services import agent_status, beat_buffer, last_heard, placements, task_readings, waiting_reasons
from backend.services import tasks as task_service
from backend.services.unit_of_work import unit_of_work
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


def check_agents_status() -> None:
    """One tick: silent agents go offline, silent running tasks are judged (_check_silent_tasks); then
    what was read off running tasks (progress, usage samples) is written, and why tasks wait."""
    beat_buffer.flush()  # judge by every beat received so far
    try:
        _judge()
    finally:
        task_readings.flush()
        waiting_reasons.refresh()


def _judge() -> None:
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
        silent_s = round(now - last_heard.agent_heard(agent.id), 1)
        agent_status.set_offline(agent, "silent", silent_s=silent_s)


def _check_silent_tasks(running: dict[int, Optional[str]], now: float) -> None:
    """Each running task silent past the lease: failed, noted unreachable, or (heard again) its note dropped."""
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
    placements.release(task)


def _agent_label(agent_id: str) -> str:
    """`name (id)` for a status_reason a person reads; the id alone if the row is gone."""
    name = db.session.scalar(select(Agent.name).where(Agent.id == agent_id))
    return f"{name} ({agent_id})" if name else agent_id
