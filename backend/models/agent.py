"""The Agent table: main agents (one per box) and sub-agents (one per running task)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Optional

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.types import Int64
from backend.utils.time import as_utc, isoformat, utcnow


class AgentType(str, Enum):
    MAIN = "main"
    SUB = "sub"


class AgentStatus(str, Enum):
    ONLINE = "online"
    OFFLINE = "offline"


class Agent(db.Model):
    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_tree", "type", "main_agent_id", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8), default=AgentStatus.ONLINE.value)
    hostname: Mapped[str] = mapped_column(String(200), default="")
    created_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)  # this run's start
    last_heartbeat_time: Mapped[Optional[datetime]] = mapped_column(DateTime)
    cpu_cores: Mapped[int] = mapped_column(Int64, default=0)
    available_cpu_cores: Mapped[int] = mapped_column(Int64, default=0)
    cpu_usage: Mapped[float] = mapped_column(Float, default=0.0)
    memory_usage: Mapped[float] = mapped_column(Float, default=0.0)
    memory_used_mib: Mapped[float] = mapped_column(Float, default=0.0)
    memory_total_mib: Mapped[int] = mapped_column(Int64, default=0)
    gpu_info: Mapped[list] = mapped_column(JSON, default=list)
    is_simulated_gpu: Mapped[bool] = mapped_column(Boolean, default=False)
    # A sub-agent's task: the same fact as Task.sub_agent_id, kept on both rows on purpose. Both are written
    # once, together, when the sub-agent registers (services/agents.create_sub_agent) and never change: the
    # task's copy outlives this row (forget_agent deletes it; the task keeps its record) and is the one
    # read that checks each beat's sender; this copy lets the agent tree show it without a join.
    task_id: Mapped[Optional[int]] = mapped_column(Int64, index=True)
    main_agent_id: Mapped[Optional[str]] = mapped_column(String(64))
    monitor_file: Mapped[str] = mapped_column(String(500), default="")
    # A draining main agent takes no new tasks; its running ones finish (POST /api/agents/<id>/drain).
    draining: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why a main agent cannot write where it must ("disk full on <name>: <path>"), from its heartbeats;
    # no task is handed to it while set (heartbeats._assign). None: fine, or an agent that does not say.
    disk_problem: Mapped[Optional[str]] = mapped_column(String(1000))

    @property
    def is_online(self) -> bool:
        return self.status == AgentStatus.ONLINE.value

    def running_time(self, now: Optional[datetime] = None) -> float:
        """Seconds since this run started; frozen at the last heartbeat once offline."""
        end = (now or utcnow()) if self.is_online else (as_utc(self.last_heartbeat_time) or now or utcnow())
        return round(max(0.0, (end - as_utc(self.started_time)).total_seconds()), 1)

    def to_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "type": self.type, "status": self.status,
            "hostname": self.hostname, "created_time": isoformat(self.created_time),
            "last_heartbeat_time": isoformat(self.last_heartbeat_time),
            "running_time": self.running_time(), "cpu_cores": self.cpu_cores,
            "available_cpu_cores": self.available_cpu_cores, "cpu_usage": self.cpu_usage,
            "memory_usage": self.memory_usage, "memory_used_mib": self.memory_used_mib,
            "memory_total_mib": self.memory_total_mib, "gpu_info": list(self.gpu_info or []),
            "is_simulated_gpu": self.is_simulated_gpu, "task_id": self.task_id,
            "main_agent_id": self.main_agent_id, "monitor_file": self.monitor_file,
            "draining": bool(self.draining), "disk_problem": self.disk_problem,
        }
