"""Where a task runs and whether it holds room there: the placement state machine. This module is the
only writer of a task's placement columns (agent_id, gpu_ids, holds_resources, handover_acked,
sub_agent_id); the scheduler counts the room of every task that holds some (scheduler.capacity_of).

  unplaced --place--> placed --acknowledge--> acknowledged --release--> released
                        |----release--------------------------------->^
                        |----withdraw--> unplaced  (the agent said it never started it: back to the queue)

A placement is independent of the task's status: a canceled task keeps its room until its process is
gone (its agent stops reporting it), and a released task keeps agent_id and sub_agent_id as its record.
Every change goes through transition(), which checks ALLOWED. Changes are logged at debug level: the
info-level lines of the same moments (task_assigned, sub_agent_registered, task_status_changed) say it.

One statement applies a change to many tasks at once, for a main agent's report (bench: fleet):
acknowledge_reported(), whose WHERE keeps it inside ALLOWED.
"""
from __future__ import annotations

from enum import Enum
from typing import Iterable, Optional

import structlog
from sqlalchemy import bindparam, update

from backend.extensions import db
from backend.models import Task
from backend.services.errors import Conflict

log = structlog.get_logger()


class Placement(str, Enum):
    UNPLACED = "unplaced"  # in no agent's hands (never placed, or withdrawn)
    PLACED = "placed"  # handed to agent_id, not confirmed yet: the hand-over is resent until it is
    ACKNOWLEDGED = "acknowledged"  # its agent reported it running, or its sub-agent registered
    RELEASED = "released"  # its process is gone (or never started): it holds no room any more


P = Placement
ALLOWED = {
    P.UNPLACED: {P.PLACED},
    P.PLACED: {P.ACKNOWLEDGED, P.RELEASED, P.UNPLACED},
    # ACKNOWLEDGED again: its sub-agent registers after its agent reported it (or retries its registration).
    P.ACKNOWLEDGED: {P.ACKNOWLEDGED, P.RELEASED},
    P.RELEASED: set(),
}


def state_of(task: Task) -> Placement:
    if task.holds_resources:
        return P.ACKNOWLEDGED if task.handover_acked else P.PLACED
    return P.RELEASED if task.agent_id else P.UNPLACED


def transition(task: Task, new: Placement, *, agent_id: Optional[str] = None, gpu_ids: Optional[list[int]] = None,
               sub_agent_id: Optional[str] = None) -> None:
    """The only place a task's placement changes: checks ALLOWED, writes the columns, logs.
    agent_id and gpu_ids go with PLACED; sub_agent_id, when known, with ACKNOWLEDGED."""
    old = state_of(task)
    if new not in ALLOWED[old]:
        raise Conflict("invalid_placement", f"Task {task.id}'s placement cannot go from {old.value} to {new.value}.")
    if new is P.PLACED:
        task.agent_id, task.gpu_ids, task.holds_resources = agent_id, list(gpu_ids or []), True
        task.handover_acked, task.sub_agent_id = False, None
    elif new is P.ACKNOWLEDGED:
        task.handover_acked = True
        task.sub_agent_id = sub_agent_id or task.sub_agent_id
    elif new is P.RELEASED:
        task.holds_resources = False
    else:
        task.agent_id = task.sub_agent_id = None
        task.gpu_ids, task.holds_resources, task.handover_acked = [], False, False
    if new is not old:
        log.debug("task_placement_changed", task_id=task.id, old=old.value, new=new.value, agent_id=task.agent_id)


def place(task: Task, agent_id: str, gpu_ids: list[int]) -> None:
    """Hand the task to a main agent, with these GPUs: its room there is taken from now on."""
    transition(task, P.PLACED, agent_id=agent_id, gpu_ids=gpu_ids)


def acknowledge(task: Task, sub_agent_id: str) -> None:
    """Its sub-agent registered: the agent has it, and this sub-agent runs it."""
    transition(task, P.ACKNOWLEDGED, sub_agent_id=sub_agent_id)


def withdraw(task: Task) -> None:
    """Back to the queue (its agent never started it); nothing to do for a task that was never placed."""
    if state_of(task) is not P.UNPLACED:
        transition(task, P.UNPLACED)


def release(task: Task) -> None:
    """Its process is gone, or never started: its room is free. Nothing to do when it holds none."""
    if task.holds_resources:
        transition(task, P.RELEASED)


def release_if_unacknowledged(task: Task) -> None:
    """A hand-over no agent confirmed reached no process: nothing to wait for (a canceled task)."""
    if state_of(task) is P.PLACED:
        transition(task, P.RELEASED)


_T = Task.__table__
# Placed -> acknowledged only: a task acknowledged already is left alone, so a report of tasks running
# as before writes no row.
_ACKNOWLEDGE_REPORTED = (update(_T).where(_T.c.id.in_(bindparam("ids", expanding=True)),
                                          _T.c.holds_resources.is_(True), _T.c.handover_acked.is_not(True))
                         .values(handover_acked=True))


def acknowledge_reported(task_ids: Iterable[int]) -> None:
    """A main agent reports these tasks running: each one that holds room is acknowledged (placed ->
    acknowledged, or stays so). One statement, not an ORM flush of every running task (bench: fleet);
    loaded Task objects do not see it."""
    ids = list(task_ids)
    if ids:
        db.session.connection().execute(_ACKNOWLEDGE_REPORTED, {"ids": ids})

