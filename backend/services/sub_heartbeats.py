"""A sub-agent's heartbeat (task_common/protocol.py SubHeartbeat): one path for every beat, GPU task or not.

  1. refuse a stranger   - sub_output.refuse_stranger: one indexed read, no session, before any byte is stored
  2. hear it             - services/last_heard.py: what liveness decides by
  3. store its output    - sub_output.store: the body's bytes past the stored size
  4. record its usage    - services/beat_buffer.py: in memory, written once per liveness tick
     ... or, for the beat that carries the task's end or whose output the disk refused, settle it
     in one unit of work instead (_settle): its usage, and the end once every byte is stored, or
     the task failed for its log's storage.
  5. answer              - the stored size, cancel (the task no longer runs: the one cancel channel),
                           finished (the end and every byte are recorded: the sub-agent may exit)

Protocol 1 sub-agents (forked by the previous release, still running after an upgrade) send output
base64 in a JSON heartbeat or as a raw upload (task_common/protocol_v1.py): handle_v1_heartbeat and
handle_v1_upload take them through the same steps.

The task's placement and the sub-agent's status change through their owners (services/placements.py by
way of task_service.finish_task, services/agent_status.py): in _record_usage (the sub-agent online) and
_record_end (the task finished and its room released, the sub-agent offline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import structlog
from flask import current_app
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import Agent, Task, TaskStatus
from backend.services import agent_status
from backend.services import agents as agent_service
from backend.services import beat_buffer, last_heard, sub_output, task_readings
from backend.services import tasks as task_service
from backend.services.unit_of_work import unit_of_work
from backend.utils.time import utcnow
from task_common import protocol as p
from task_common import protocol_v1 as v1


@dataclass(frozen=True)
class _End:
    returncode: int
    final_size: int
    stop_reason: Optional[str] = None  # the sub-agent stopped the task itself (its time limit): failed


@dataclass(frozen=True)
class _Beat:
    """What a beat of either protocol comes down to."""

    task_id: int
    sub_agent_id: str
    pieces: list[tuple[int, bytes]]  # (offset in the task's log, bytes)
    usage: Optional[p.ProcessUsage]  # None: not reported (a protocol 1 upload)
    end: Optional[_End]
    queue_note: Optional[str] = None  # why the task does not run yet (Slurm); "" clears it; None: no news


def handle_sub_heartbeat(beat: p.SubHeartbeat, body: bytes) -> p.SubHeartbeatReply:
    """A protocol 2 beat: usage (and the end) in `beat`, output from beat.offset in `body`."""
    agent_service.check_protocol_version(beat.protocol_version, beat.sub_agent_id)
    end = _End(beat.returncode, beat.final_size, beat.stop_reason) if beat.returncode is not None else None
    return _handle(_Beat(beat.task_id, beat.sub_agent_id, [(beat.offset, body)], beat.usage(), end,
                         beat.queue_note))


def handle_v1_heartbeat(msg: v1.SubHeartbeatV1) -> p.SubHeartbeatReply:
    """Protocol 1's JSON heartbeat: base64 chunks, usage, and the end once final_size came with it."""
    agent_service.check_sub_agent_protocol(msg.protocol_version, msg.sub_agent_id)
    has_end = msg.returncode is not None and msg.final_size is not None
    end = _End(msg.returncode, msg.final_size) if has_end else None
    return _handle(_Beat(msg.task_id, msg.sub_agent_id, [(c.offset, c.raw()) for c in msg.chunks], msg.usage, end))


def handle_v1_upload(upload: v1.OutputUploadV1, body: bytes) -> p.SubHeartbeatReply:
    """Protocol 1's raw upload: output only."""
    agent_service.check_sub_agent_protocol(upload.protocol_version, upload.sub_agent_id)
    return _handle(_Beat(upload.task_id, upload.sub_agent_id, [(upload.offset, body)], None, None))


def _handle(beat: _Beat) -> p.SubHeartbeatReply:
    structlog.contextvars.bind_contextvars(task_id=beat.task_id, sub_agent_id=beat.sub_agent_id)
    status = sub_output.refuse_stranger(beat.task_id, beat.sub_agent_id)
    last_heard.hear_sub_agent(beat.sub_agent_id, beat.task_id)
    size, storage_error = sub_output.store(beat.task_id, beat.pieces)
    task_readings.read_beat(beat.task_id, beat.pieces, beat.usage)
    finished = False
    if beat.end is not None or storage_error:
        finished, status = _settle(beat, size, storage_error)
    elif beat.usage is not None:
        beat_buffer.record(beat_buffer.Beat(beat.sub_agent_id, utcnow(), beat.usage))
    if beat.queue_note is not None and not finished:
        status = _record_queue_note(beat)
    return p.SubHeartbeatReply(log_size=size, cancel=not finished and status != TaskStatus.RUNNING.value,
                               finished=finished, next_interval_s=current_app.config["SUB_HEARTBEAT_INTERVAL_S"])


def _settle(beat: _Beat, size: int, storage_error: Optional[str]) -> tuple[bool, str]:
    """Record the beat at once: (finished, the task's status). A task failed for its log's storage gives
    up the rest of its output: its sub-agent (and resources) would otherwise wait for a broken disk."""
    with unit_of_work():
        sub, task = _get_sub_and_task(beat)
        if beat.usage is not None:
            _record_usage(sub, beat.usage)
        if storage_error:
            sub_output.fail_for_storage_error(task, storage_error)
        finished = beat.end is not None and (size >= beat.end.final_size or bool(storage_error))
        if finished:
            _record_end(sub, task, beat.end)
        return finished, task.status


def _record_queue_note(beat: _Beat) -> str:
    """A running task's status_reason is its executor's word on why it does not run yet (a Slurm job
    pending: "Slurm: PENDING (Resources)"); sent only when it changes, so one small write then."""
    with unit_of_work():
        _, task = _get_sub_and_task(beat)
        if task.status == TaskStatus.RUNNING.value:
            task_service.note_running(task, beat.queue_note or None)
        return task.status


def _get_sub_and_task(beat: _Beat) -> tuple[Agent, Task]:
    sub = db.session.get(Agent, beat.sub_agent_id)
    task = db.session.get(Task, beat.task_id, options=[lazyload(Task.dependency_links)])
    if sub is None or task is None or task.sub_agent_id != beat.sub_agent_id:
        raise sub_output.not_running(beat.task_id, beat.sub_agent_id)
    return sub, task


def _record_usage(sub: Agent, usage: p.ProcessUsage) -> None:
    """What beat_buffer.flush writes for the other beats, written now."""
    agent_status.set_online(sub, "heartbeat")
    sub.last_heartbeat_time = utcnow()
    sub.cpu_usage, sub.memory_usage, sub.memory_used_mib = usage.cpu_usage, usage.memory_usage, usage.memory_used_mib
    main = db.session.get(Agent, sub.main_agent_id) if usage.gpus else None
    sub.gpu_info = beat_buffer.sub_agent_gpu_info(main.gpu_info if main else None, usage.gpus)


def _record_end(sub: Agent, task: Task, end: _End) -> None:
    if end.stop_reason:  # stopped by its agent (time limit): failed for that, whatever bash returned
        task_service.fail_task(task, end.stop_reason)
    task_service.finish_task(task, end.returncode)
    agent_status.set_offline(sub, "its task ended")
    task_readings.forget(task.id)
    sub.available_cpu_cores = sub.cpu_cores  # holds no core now
