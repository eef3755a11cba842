"""The sub-agent's heartbeat: store new output and record usage (both outside the write lock: the
common beat's writes wait in services/beat_buffer.py); once all output is in, record the end."""
from __future__ import annotations

import structlog
from flask import current_app
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import Agent, AgentStatus, Task, TaskStatus
from backend.services import agents as agent_service
from backend.services import beat_buffer, last_heard, sub_output
from backend.services import tasks as task_service
from backend.services.errors import NotFound
from backend.services.unit_of_work import unit_of_work
from backend.utils.time import sqlite_datetime, utcnow
from task_common import protocol as p

log = structlog.get_logger()


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
