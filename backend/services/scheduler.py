"""Which waiting tasks fit on a main agent, and on which of its GPUs.

The server's record of placed tasks (Task.holds_resources on that agent) is the truth for free
resources (capacity.py); measured GPU memory is a second check for tasks that share a GPU. Room
kept for a waiting task that fits nowhere yet (reservations.py) goes to no task behind it.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

from sqlalchemy import select
from sqlalchemy.orm import defer, lazyload

from backend.extensions import db
from backend.models import Agent, Task
from backend.services import reservations, task_queue
from backend.services.capacity import Capacity, Hold, Request, gpu_slots
from task_common.protocol import INT64_MAX

SCAN_BATCH = 16  # rows per fetch: most heartbeats take the first few candidates (bench: scale)
MAX_SCAN = 2000


def placed_tasks(agent_id: str) -> list[Task]:
    return list(db.session.scalars(
        select(Task).where(Task.agent_id == agent_id, Task.holds_resources.is_(True))
        .options(lazyload(Task.dependency_links), defer(Task.script_content), defer(Task.status_reason))))


def capacity_of(agent: Agent, placed: Optional[list[Task]] = None) -> Capacity:
    """Free room on the agent; `placed` is placed_tasks(agent.id) read earlier in this unit of work
    (read once per heartbeat: bench scale/fleet), re-checked since a task may have let go of its place."""
    gpus = gpu_slots(agent.gpu_info)
    cap = Capacity(free_cores=agent.cpu_cores, gpus=list(gpus.values()))
    placed = placed_tasks(agent.id) if placed is None else [
        t for t in placed if t.holds_resources and t.agent_id == agent.id]
    for task in placed:
        cap.free_cores -= task.cpu_cores
        for index in task.gpu_ids or []:
            if index in gpus:
                gpus[index].holders += 1
                if task.gpu_memory == 0:
                    gpus[index].exclusive = True
                else:
                    gpus[index].reserved_mib += task.gpu_memory
    return cap


def _candidates(cap: Capacity) -> Iterator[Task]:
    """Waiting tasks that could fit by count, in the queue's order (task_queue.py); only those that need
    no core once the cores are full, read from their own index."""
    max_gpus, max_mib = cap.max_gpu_request()
    if cap.free_cores <= 0:
        query = task_queue.coreless_candidates(db.engine.dialect, max_gpus=max_gpus, max_mib=max_mib)
    else:
        query = task_queue.candidates(free_cores=cap.free_cores, max_gpus=max_gpus, max_mib=max_mib)
    yield from db.session.scalars(query.options(lazyload(Task.dependency_links))
                                  .execution_options(yield_per=SCAN_BATCH))


def find_tasks_for_slots(limit: int, skip: Iterable[int] = ()) -> list[tuple[Task, list[int]]]:
    """For a Slurm agent: the first `limit` waiting tasks in the queue's order, whatever they ask for
    (Slurm places them: no GPU ids), except those in `skip`. Room kept elsewhere is no concern of it."""
    if limit <= 0:
        return []
    skip = set(skip)
    query = task_queue.candidates(free_cores=INT64_MAX, max_gpus=INT64_MAX, max_mib=INT64_MAX)
    chosen = []
    for task in db.session.scalars(query.options(lazyload(Task.dependency_links)).limit(limit + len(skip))):
        if task.id not in skip and len(chosen) < limit:
            chosen.append((task, []))
    return chosen


def find_task_for_agent(agent: Agent, cap: Capacity, limit: int,
                        skip: Iterable[int] = ()) -> list[tuple[Task, list[int]]]:
    """Tasks to hand to this agent now, each with its GPU ids; a task that does not fit is skipped,
    and so is every task in `skip` (ones this agent just said it could not start). Room this agent
    keeps for a task that fits nowhere yet (reservations.py) is not given to any task behind it.
    Afterwards `cap` is the agent's free room (the kept room counts as free there)."""
    skip = set(skip)
    head = reservations.head_of_queue()
    held: list[Hold] = []
    try:
        if not head:
            return []  # nothing waits: no scan (bench: fleet)
        return _scan(cap, limit, skip, reservations.hold_for(agent, cap, skip=skip, rows=head), held)
    finally:
        for hold in reversed(held):
            cap.release(hold)
        reservations.note_free_room(agent.id, cap)


def _scan(cap: Capacity, limit: int, skip: set[int], keep: Optional[Request],
          held: list[Hold]) -> list[tuple[Task, list[int]]]:
    """Place candidates in order; `keep` has its room held (recorded in `held`) from the first
    candidate behind it on.

    The scan stops once the agent's cores are full (then only tasks that need no core, GPU-only
    work, are looked at) or after MAX_SCAN candidates, so a heartbeat stays fast however many tasks
    wait; what is left is looked at on the next heartbeat.
    """
    chosen: list[tuple[Task, list[int]]] = []
    budget = MAX_SCAN
    coreless_only = cap.free_cores <= 0  # then _candidates() yields only tasks that need no core
    while True:
        taken = {task.id for task, _ in chosen} | skip
        for task in _candidates(cap):
            budget -= 1
            if keep is not None and task_queue.position(keep) < task_queue.position(task):
                held.append(cap.hold(keep))
                keep = None
            gpu_ids = cap.place(task) if task.id not in taken else None
            if gpu_ids is not None:
                chosen.append((task, gpu_ids))
            if len(chosen) >= limit or budget <= 0:
                return chosen
            if not coreless_only and cap.free_cores <= 0:
                break  # the cores are full: rescan for the tasks that need none
        else:
            return chosen
        coreless_only = True
