"""Room kept for a waiting task that fits nowhere now, so that tasks behind it in the queue cannot take
that room piece by piece (a 2-GPU task waited forever while each freed GPU went to the next 1-GPU task).

The rule (README "Scheduling"). Walking the waiting tasks in order (priority, then id), a task that does
not fit the heartbeating agent now, once the tasks ahead of it that do are placed, gets a target: an
online main agent, not draining, whose whole room could hold it, and where it lacks the fewest GPUs,
then cores, now (then the lowest id). The target sticks until the task starts, the agent can no longer
be one, or the task lacks more there than it did (a more urgent task took room): then it is chosen
again. The target keeps the task's room from every task behind it; they may still use what is left
(cores it does not need, other GPUs, memory it does not need on a shared GPU). There is no grace: with no
run times known, nothing behind it may use the kept room. A task that fits no agent gets no target and
holds nothing back; nor does one that needs at most one core and no GPU (the next core that frees
anywhere is its). At most MAX_RESERVATIONS tasks have a target at once, each on its own agent; the
first in order always gets one while some agent could hold it, so the head of the queue never starves.

State lives in this process (app.py: the server is one process): each agent's free room after its last
hand-over, and each task's target. A restart only means choosing again.
"""
from __future__ import annotations

from typing import Optional

import structlog
from sqlalchemy import select

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType
from backend.services import task_queue
from backend.services.capacity import Capacity, Request, whole_room

log = structlog.get_logger()

HEAD_ROWS = 32  # waiting tasks looked at per heartbeat, read from the covering index ix_tasks_queue
MAX_RESERVATIONS = 4  # tasks with a target at once, each on its own agent
_NO_ROOM = Capacity(free_cores=0)  # an agent not seen since the server started: taken as full
ELIGIBLE = (Agent.type == AgentType.MAIN.value, Agent.status == AgentStatus.ONLINE.value,
             Agent.draining.isnot(True), Agent.disk_problem.is_(None))  # a full disk takes no task either
_HEAD = task_queue.head(HEAD_ROWS)

# task id -> (the agent that keeps room for it, the least (GPUs, cores) it has lacked there)
_targets: dict[int, tuple[str, tuple[int, int]]] = {}
_free_room: dict[str, Capacity] = {}  # agent id -> its free room after its last hand-over


def targets() -> dict[int, str]:
    """Task id -> the agent that keeps room for it now (a copy; services/waiting_reasons.py reads it)."""
    return {task_id: agent_id for task_id, (agent_id, _) in _targets.items()}


def note_free_room(agent_id: str, cap: Capacity) -> None:
    """Remember an agent's free room after its hand-overs: targets are chosen on other agents' heartbeats."""
    _free_room[agent_id] = cap.copy()


def head_of_queue() -> list[Request]:
    """The first waiting tasks in order: one read of the queue index's own columns (ix_tasks_queue)."""
    db.session.flush()  # a Core statement does not autoflush; the scan's query would flush next anyway
    return list(db.session.connection().execute(_HEAD))  # Core: a tenth of the ORM's cost (bench: scale)


def hold_for(agent: Agent, cap: Capacity, *, skip: set[int], rows: list[Request]) -> Optional[Request]:
    """The task among rows (head_of_queue()) whose room this agent keeps now, or None; `cap` (its free
    room) is not changed."""
    for task_id in _targets.keys() - {row.id for row in rows}:
        del _targets[task_id]  # started, canceled, or no longer near the head
    walk = _Walk(agent, cap.copy())
    for row in rows:
        if row.id in skip or walk.trial.place(row) is not None or _is_next_for_any_core(row):
            continue  # it starts here now (the scan places it first), or this agent refused it
        if walk.target(row) == agent.id:
            return row
        if len(walk.taken) >= MAX_RESERVATIONS:
            return None
    return None


def _is_next_for_any_core(row: Request) -> bool:
    """At most one core and no GPU: first in line for the next core that frees anywhere, it needs no room
    kept (and the common queue of 1-core tasks costs no more per heartbeat: bench scale)."""
    return row.cpu_cores <= 1 and not row.gpu_count


class _Walk:
    """One heartbeat's look at the head of the queue, from one agent; reads other agents at most once."""

    def __init__(self, agent: Agent, trial: Capacity):
        self.agent, self.trial = agent, trial  # trial: its free room once the tasks ahead are placed
        self.taken: set[str] = set()  # agents keeping room for a task ahead
        self._usable: Optional[set[str]] = None  # current targets that may still be one
        self._rooms: Optional[dict[str, tuple[Capacity, Capacity]]] = None

    def target(self, row: Request) -> Optional[str]:
        """The agent that keeps room for row; None when it fits no agent, fits one now (which starts
        it), or every agent that could hold it keeps room for a task ahead."""
        target, lacked = _targets.get(row.id, (None, None))
        if target is None or target in self.taken or not self._may_keep(row, target, lacked):
            target = self._choose(row)
        if target is not None:
            self.taken.add(target)
        return target

    def _may_keep(self, row: Request, target: str, lacked: tuple[int, int]) -> bool:
        """Whether the target stays: this agent while its whole room holds the task, another while online
        and not draining (it checks its own room when it beats); either while the task lacks no more there."""
        if target == self.agent.id:
            if whole_room(self.agent.cpu_cores, self.agent.gpu_info).shortfall(row) != (0, 0):
                return False
            lacks = self.trial.shortfall(row)
        else:
            if self._usable is None:
                self._usable = set(db.session.scalars(
                    select(Agent.id).where(Agent.id.in_({aid for aid, _ in _targets.values()}), *ELIGIBLE)))
            if target not in self._usable:
                return False
            lacks = _free_room.get(target, _NO_ROOM).shortfall(row)
        _targets[row.id] = (target, min(lacks, lacked))
        return lacks <= lacked

    def _choose(self, row: Request) -> Optional[str]:
        _targets.pop(row.id, None)
        rooms = self._eligible_rooms()
        able = [aid for aid, (whole, _) in rooms.items()
                if aid not in self.taken and whole.shortfall(row) == (0, 0)]
        if not able:
            return None
        best = min(able, key=lambda aid: (rooms[aid][1].shortfall(row), aid))
        lacks = missing_gpus, missing_cores = rooms[best][1].shortfall(row)
        if lacks == (0, 0):
            return None  # it fits there now: that agent's next heartbeat starts it
        _targets[row.id] = best, lacks
        log.info("task_resources_reserved", task_id=row.id, agent_id=best,
                 missing_gpus=missing_gpus, missing_cores=missing_cores)
        return best

    def _eligible_rooms(self) -> dict[str, tuple[Capacity, Capacity]]:
        """Agent id -> (whole room, free room now) for every agent that may be a target."""
        if self._rooms is None:
            rows = db.session.execute(select(Agent.id, Agent.cpu_cores, Agent.gpu_info).where(*ELIGIBLE))
            self._rooms = {r.id: (whole_room(r.cpu_cores, r.gpu_info), _free_room.get(r.id, _NO_ROOM))
                           for r in rows}
            self._rooms[self.agent.id] = (whole_room(self.agent.cpu_cores, self.agent.gpu_info), self.trial)
            for gone in _free_room.keys() - self._rooms.keys():
                del _free_room[gone]  # offline, draining or forgotten: noted again when it hands over
        return self._rooms
