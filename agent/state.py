"""The main agent's memory across restarts: `<state-dir>/state.json`.

It keeps the agent_id the server gave (so a restarted agent is the same agent) and, per running task,
the sub-agent process that runs it (so a restarted agent adopts it instead of starting it again).
Written atomically (temp file + rename): a crash mid-write leaves the previous version.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

STATE_FILE_NAME = "state.json"


@dataclass
class TaskRecord:
    task_id: int
    sub_agent_id: str
    pid: int
    create_time: float  # psutil's process start time: tells our sub-agent from a reused pid
    cpu_cores: int = 0
    cpu_ids: list[int] = field(default_factory=list)
    gpu_ids: list[int] = field(default_factory=list)


@dataclass
class AgentState:
    agent_id: Optional[str] = None
    tasks: dict[int, TaskRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> "AgentState":
        """The saved state, or an empty one when there is none (or it cannot be read)."""
        try:
            raw = json.loads((Path(state_dir) / STATE_FILE_NAME).read_text())
            tasks = {int(k): TaskRecord(**v) for k, v in raw.get("tasks", {}).items()}
            return cls(agent_id=raw.get("agent_id"), tasks=tasks)
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, state_dir: Path) -> None:
        path = Path(state_dir) / STATE_FILE_NAME
        tmp = path.with_suffix(".tmp")
        body = {"agent_id": self.agent_id,
                "tasks": {str(k): asdict(v) for k, v in sorted(self.tasks.items())}}
        tmp.write_text(json.dumps(body, indent=2))
        os.replace(tmp, path)
