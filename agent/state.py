"""The main agent's memory across restarts: `<state-dir>/state.json`.

Kept per server identity (the server_id a server makes once per database), so that a reset or
replaced server behind the same URL is never mixed up with the one before: for each server, the
agent_id it gave (a restarted agent is the same agent), the sub-agent process of each task of it
that runs here (a restarted agent adopts it instead of starting it again), the ids of its tasks
that ran here to the end (a hand-over of one of those again is refused, MAX_FINISHED_IDS kept), and
the reports it has not heard yet (sub-agents lost, hand-overs refused). These are the main agent's
only record of its tasks: agent/sub_agent_process.py's SubAgentTable only adds their processes.

The file's top level is the memory of the server the agent works for now (`server_id`; null until
a server named itself), so a file from before server ids reads as that memory, of a server not
known yet, which the first server that registers the agent adopts; the others are under
`other_servers`. One line of JSON (`python -m json.tool` reads it): indenting 10,000 finished ids
cost 4x the time, once per tick that started or reaped a task. Written atomically (temp file +
rename): a crash mid-write leaves the previous version, and so does a full disk.

One main agent per state dir: lock_state_dir holds an flock on `agent.lock` for the process's life
(two agents started with the same --name would otherwise share and overwrite one memory).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

STATE_FILE_NAME = "state.json"
LOCK_FILE_NAME = "agent.lock"
MAX_FINISHED_IDS = 10_000  # per server: plenty to catch a resent hand-over, and the file stays small
MAX_IDLE_OTHER_SERVERS = 8  # memories of servers left behind that have no task running here


@dataclass
class TaskRecord:
    task_id: int
    sub_agent_id: str
    pid: int
    create_time: float  # psutil's process start time: tells our sub-agent from a reused pid
    cpu_cores: int = 0
    cpu_ids: list[int] = field(default_factory=list)
    gpu_ids: list[int] = field(default_factory=list)
    deliveries: int = 0  # sub-agents started after the first one only to deliver the task's output


@dataclass
class ServerMemory:
    """What the agent remembers of one server: its id there, its tasks running here, its tasks that ran here."""

    agent_id: Optional[str] = None
    tasks: dict[int, TaskRecord] = field(default_factory=dict)  # running here: a sub-agent each
    finished_ids: dict[int, None] = field(default_factory=dict)  # an ordered set: oldest first
    # Reports the server has not heard yet (MainHeartbeat.died / .rejected): task id -> why.
    died: dict[int, str] = field(default_factory=dict)  # its sub-agent was lost
    rejected: dict[int, str] = field(default_factory=dict)  # its hand-over was refused

    def add_finished(self, task_id: int) -> None:
        self.finished_ids[task_id] = None
        while len(self.finished_ids) > MAX_FINISHED_IDS:
            del self.finished_ids[next(iter(self.finished_ids))]

    def has_finished(self, task_id: int) -> bool:
        return task_id in self.finished_ids

    def is_in_hand(self, task_id: int) -> bool:
        """Running here, or reported and the report not heard yet: a hand-over of it is not started again."""
        return task_id in self.tasks or task_id in self.died or task_id in self.rejected

    def to_dict(self) -> dict:
        return {"agent_id": self.agent_id,
                "tasks": {str(k): asdict(v) for k, v in sorted(self.tasks.items())},
                "finished_ids": list(self.finished_ids),
                "died": {str(k): v for k, v in self.died.items()},
                "rejected": {str(k): v for k, v in self.rejected.items()}}

    @classmethod
    def from_dict(cls, raw: dict) -> "ServerMemory":
        memory = cls(agent_id=raw.get("agent_id"),
                     tasks={int(k): TaskRecord(**v) for k, v in raw.get("tasks", {}).items()},
                     died={int(k): str(v) for k, v in raw.get("died", {}).items()},
                     rejected={int(k): str(v) for k, v in raw.get("rejected", {}).items()})
        for task_id in raw.get("finished_ids", []):
            memory.add_finished(int(task_id))
        return memory


@dataclass
class AgentState:
    server_id: Optional[str] = None  # whose memory `current` is; None: no server named itself yet
    current: ServerMemory = field(default_factory=ServerMemory)
    other_servers: dict[str, ServerMemory] = field(default_factory=dict)  # oldest first

    def use_server(self, server_id: str) -> bool:
        """Make server_id's memory the current one; True when that put another server's memory away.
        A memory of no known server yet (first start, a file from before server ids) becomes server_id's."""
        if server_id == self.server_id:
            return False
        if self.server_id is None:
            self.server_id = server_id
            return False
        self.other_servers[self.server_id] = self.current
        self.current = self.other_servers.pop(server_id, None) or ServerMemory()
        self.server_id = server_id
        idle = [key for key, memory in self.other_servers.items() if not memory.tasks]
        for key in idle[:max(0, len(idle) - MAX_IDLE_OTHER_SERVERS)]:
            del self.other_servers[key]
        return True

    def memory(self, server_id: Optional[str] = None) -> ServerMemory:
        """The current server's memory (None), or another server's."""
        return self.current if server_id is None else self.other_servers[server_id]

    @classmethod
    def load(cls, state_dir: Path) -> "AgentState":
        """The saved state, or an empty one when there is none (or it cannot be read)."""
        try:
            raw = json.loads((Path(state_dir) / STATE_FILE_NAME).read_text())
            return cls(server_id=raw.get("server_id"), current=ServerMemory.from_dict(raw),
                       other_servers={str(k): ServerMemory.from_dict(v)
                                      for k, v in raw.get("other_servers", {}).items()})
        except (OSError, ValueError, TypeError, AttributeError):
            return cls()

    def save(self, state_dir: Path) -> None:
        path = Path(state_dir) / STATE_FILE_NAME
        tmp = path.with_suffix(".tmp")
        body = {"server_id": self.server_id, **self.current.to_dict(),
                "other_servers": {k: v.to_dict() for k, v in self.other_servers.items()}}
        try:
            tmp.write_text(json.dumps(body))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # a half-written copy must not hold the space a retry needs
            raise


class StateDirInUse(Exception):
    """Another main agent holds the state dir."""

    def __init__(self, state_dir: Path, pid: Optional[int]):
        holder = f"pid {pid}" if pid else "a process whose pid could not be read"
        super().__init__(f"--state-dir {state_dir} is in use by another main agent ({holder}); "
                         f"give this one another --name or --state-dir")
        self.pid = pid


def lock_state_dir(state_dir: Path) -> int:
    """Lock the state dir for this process's life (flock on agent.lock, which then holds our pid);
    returns the lock's fd, which forked children must close. Raises StateDirInUse."""
    path = Path(state_dir) / LOCK_FILE_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise StateDirInUse(Path(state_dir), pid) from None
    with contextlib.suppress(OSError):  # a full disk: the lock holds all the same, only without our pid
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> Optional[int]:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
