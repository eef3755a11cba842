"""Room on a main agent: free cores and, per GPU, the memory promised to placed tasks and the memory
measured free. Pure bookkeeping, no database: scheduler.py fills it from the placed tasks and places
waiting tasks into it; reservations.py keeps room in it for a task that does not fit yet (hold).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Protocol


class Request(Protocol):
    """What a task asks for: a Task, or a row of those columns."""
    id: int
    priority: int
    cpu_cores: int
    gpu_count: int
    gpu_memory: int


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

    def give_back(self, memory_mib: int, was_exclusive: bool) -> None:
        """Undo take(memory_mib); was_exclusive: the slot's flag before that take."""
        self.holders -= 1
        if memory_mib == 0:
            self.exclusive = was_exclusive
        else:
            self.reserved_mib -= memory_mib
            self.measured_free_mib += memory_mib


@dataclass
class Hold:
    """Room kept for a task that does not fit yet (Capacity.hold); Capacity.release gives it back."""
    cores: int
    memory_mib: int
    gpus: list[tuple[GpuSlot, bool]]  # each GPU held, and whether it was exclusive before


@dataclass
class Capacity:
    free_cores: int
    gpus: list[GpuSlot] = field(default_factory=list)

    def place(self, task: Request) -> Optional[list[int]]:
        """Reserve room for task and return its GPU ids, or None when it does not fit."""
        if self.shortfall(task) != (0, 0):
            return None
        fitting = [g for g in self.gpus if g.can_take(task.gpu_memory)]
        # Shared requests pack onto the fullest GPU that still fits; whole-GPU requests take the lowest.
        if task.gpu_memory:
            fitting.sort(key=lambda g: (g.total_mib - g.reserved_mib, g.index))
        chosen = fitting[:task.gpu_count]
        for gpu in chosen:
            gpu.take(task.gpu_memory)
        self.free_cores -= task.cpu_cores
        return sorted(g.index for g in chosen)

    def shortfall(self, task: Request) -> tuple[int, int]:
        """(GPUs, cores) the task lacks here now; (0, 0) when it fits. A task that needs no core
        fits beside held cores (free_cores may be below 0 then)."""
        gpus = sum(1 for g in self.gpus if g.can_take(task.gpu_memory)) if task.gpu_count else 0
        cores = max(task.cpu_cores - self.free_cores, 0) if task.cpu_cores else 0
        return max(task.gpu_count - gpus, 0), cores

    def hold(self, task: Request) -> Hold:
        """Keep room for a task that does not fit yet, so that no later task takes it: its cores, and
        the GPUs nearest to free for it (free ones first, then the fewest holders). The rest stays usable."""
        able = [g for g in self.gpus if g.total_mib >= task.gpu_memory]
        able.sort(key=lambda g: (not g.can_take(task.gpu_memory), g.holders, g.reserved_mib, g.index))
        held = Hold(task.cpu_cores, task.gpu_memory, [(g, g.exclusive) for g in able[:task.gpu_count]])
        for gpu, _ in held.gpus:
            gpu.take(task.gpu_memory)
        self.free_cores -= task.cpu_cores
        return held

    def release(self, held: Hold) -> None:
        self.free_cores += held.cores
        for gpu, was_exclusive in held.gpus:
            gpu.give_back(held.memory_mib, was_exclusive)

    def copy(self) -> "Capacity":
        return Capacity(self.free_cores, [replace(g) for g in self.gpus])

    def max_gpu_request(self) -> tuple[int, int]:
        """(most GPUs any task could still get, most MiB a shared request could get on one GPU)."""
        usable = [g for g in self.gpus if not g.exclusive]
        best_mib = max((min(g.total_mib - g.reserved_mib, g.measured_free_mib) for g in usable), default=0)
        return len(usable), best_mib


def gpu_slots(gpu_info: Optional[list[dict]], measured: bool = True) -> dict[int, GpuSlot]:
    """index -> slot for an agent's reported GPUs; measured=False ignores the memory in use now."""
    return {g["index"]: GpuSlot(g["index"], g.get("memory_total", 0),
                                g.get("memory_total", 0) - (g.get("memory_used", 0) if measured else 0))
            for g in gpu_info or []}


def whole_room(cpu_cores: int, gpu_info: Optional[list[dict]]) -> Capacity:
    """An agent's room with nothing placed and nothing in use: what it could ever hold."""
    return Capacity(free_cores=cpu_cores, gpus=list(gpu_slots(gpu_info, measured=False).values()))
