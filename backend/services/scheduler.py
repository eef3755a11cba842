"""Which waiting tasks fit on a main agent, and on which of its GPUs.

The server's record of placed tasks (Task.holds_resources on that agent) is the truth for free
resources; measured GPU memory is a second check for tasks that share a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from sqlalchemy import select, text
from sqlalchemy.orm import defer, lazyload

from backend.extensions import db
from backend.models import Agent, Task, TaskStatus

SCAN_BATCH = 16  # rows per fetch: most heartbeats take the first few candidates (bench: scale)
MAX_SCAN = 2000


@dataclass
class GpuSlot:
    index: int
    total_mib: int
    measured_free_mib: int
    reserved_mib: int = 0
    exclusive: bool = False  # held whole by a task that asked for gpu_memory = 0
    holders: int = 0

    def can_take(self, memory_mib: int) -> bool:
        if self.exclusive:
            return False
        if memory_mib == 0:
            return self.holders == 0
        return (self.total_mib - self.reserved_mib >= memory_mib and
                self.measured_free_mib >= memory_mib)

    def take(self, memory_mib: int) -> None:
        self.holders += 1
        if memory_mib == 0:
            self.exclusive = True
        else:
            self.reserved_mib += memory_mib
            self.measured_free_mib -= memory_mib


@dataclass
class Capacity:
    free_cores: int
    gpus: list[GpuSlot] = field(default_factory=list)

    def place(self, task: Task) -> Optional[list[int]]:
        """Reserve room for task and return its GPU ids, or None when it does not fit."""
        if task.cpu_cores > self.free_cores:
            return None
        fitting = [g for g in self.gpus if g.can_take(task.gpu_memory)]
        if len(fitting) < task.gpu_count:
            return None
        # Shared requests pack onto the fullest GPU that still fits; whole-GPU requests take the lowest.
        if task.gpu_memory:
            fitting.sort(key=lambda g: (g.total_mib - g.reserved_mib, g.index))
        chosen = fitting[:task.gpu_count]
        for gpu in chosen:
            gpu.take(task.gpu_memory)
        self.free_cores -= task.cpu_cores
        return sorted(g.index for g in chosen)

    def max_gpu_request(self) -> tuple[int, int]:
        """(most GPUs any task could still get, most MiB a shared request could get on one GPU)."""
        usable = [g for g in self.gpus if not g.exclusive]
        best_mib = max((min(g.total_mib - g.reserved_mib, g.measured_free_mib) for g in usable), default=0)
        return len(usable), best_mib


def placed_tasks(agent_id: str) -> list[Task]:
    return list(db.session.scalars(
        select(Task).where(Task.agent_id == agent_id, Task.holds_resources.is_(True))
        .options(lazyload(Task.dependency_links), defer(Task.script_content), defer(Task.status_reason))))


def capacity_of(agent: Agent, placed: Optional[list[Task]] = None) -> Capacity:
    """Free room on the agent; `placed` is placed_tasks(agent.id) read earlier in this unit of work
    (read once per heartbeat: bench scale/fleet), re-checked since a task may have let go of its place."""
    gpus = {g["index"]: GpuSlot(g["index"], g.get("memory_total", 0),
                                g.get("memory_total", 0) - g.get("memory_used", 0))
            for g in agent.gpu_info or []}
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


# _candidates() for tasks that need no core, on the partial index that holds only them (models/task.py):
# SQLite uses a partial index only when told, and only for the literal condition it was made with.
_CORELESS = text("SELECT * FROM tasks INDEXED BY ix_tasks_coreless WHERE status = :status AND cpu_cores = 0 "
                 "AND gpu_count <= :max_gpus AND (gpu_count = 0 OR gpu_memory <= :max_mib) ORDER BY priority, id")


def _candidates(cap: Capacity) -> Iterator[Task]:
    """Waiting tasks that could fit by count, in priority order (1 first), FIFO within a priority."""
    max_gpus, max_mib = cap.max_gpu_request()
    if cap.free_cores <= 0:
        query = select(Task).from_statement(_CORELESS.bindparams(
            status=TaskStatus.WAITING.value, max_gpus=max_gpus, max_mib=max_mib))
    else:
        query = select(Task).where(Task.status == TaskStatus.WAITING.value, Task.cpu_cores <= cap.free_cores,
                                   Task.gpu_count <= max_gpus, (Task.gpu_count == 0) | (Task.gpu_memory <= max_mib)
                                   ).order_by(Task.priority, Task.id)
    yield from db.session.scalars(query.options(lazyload(Task.dependency_links))
                                  .execution_options(yield_per=SCAN_BATCH))


def find_task_for_agent(agent: Agent, cap: Capacity, limit: int,
                        skip: Iterable[int] = ()) -> list[tuple[Task, list[int]]]:
    """Tasks to hand to this agent now, each with its GPU ids; a task that does not fit is skipped,
    and so is every task in `skip` (ones this agent just said it could not start).

    The scan stops once the agent's cores are full (then only tasks that need no core, GPU-only
    work, are looked at) or after MAX_SCAN candidates, so a heartbeat stays fast however many tasks
    wait; what is left is looked at on the next heartbeat.
    """
    chosen: list[tuple[Task, list[int]]] = []
    budget = MAX_SCAN
    coreless_only = cap.free_cores <= 0  # then _candidates() yields only tasks that need no core
    while True:
        taken = {task.id for task, _ in chosen} | set(skip)
        for task in _candidates(cap):
            budget -= 1
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
