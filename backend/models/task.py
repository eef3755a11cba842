"""The Task table, its statuses and its dependency links."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Optional

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.types import Int64
from backend.utils.time import as_utc, isoformat, utcnow


class TaskStatus(str, Enum):
    BLOCKED = "blocked"
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED})


class TaskDependency(db.Model):
    """Task `task_id` may run only after task `depends_on_id` completed."""

    __tablename__ = "task_dependencies"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True, index=True)


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        # The scheduler's scan, in order; the size columns let SQLite skip tasks that do not fit
        # without reading their rows (a full agent otherwise reads every waiting row per heartbeat).
        Index("ix_tasks_queue", "status", "priority", "id", "cpu_cores", "gpu_count", "gpu_memory"),
        # The rescan for tasks that need no core, once an agent's cores are full: only those rows, so
        # it does not walk every waiting task (bench: scale). Partial, so that the planner can never
        # pick it for the scan above; scheduler.py names it (INDEXED BY) in its own query.
        Index("ix_tasks_coreless", "status", "priority", "id", "gpu_count", "gpu_memory",
              sqlite_where=text("cpu_cores = 0"), postgresql_where=text("cpu_cores = 0")),
        # The task list: status + name filters answered from the index, newest first (bench: scale).
        Index("ix_tasks_list", "status", "id", "name"),
        Index("ix_tasks_placement", "agent_id", "holds_resources"),  # an agent's reserved resources
    )

    id: Mapped[int] = mapped_column(Int64, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template_type: Mapped[str] = mapped_column(String(200), index=True)
    priority: Mapped[int] = mapped_column(Int64, default=3)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.WAITING.value)
    created_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    script_content: Mapped[str] = mapped_column(Text)
    cpu_cores: Mapped[int] = mapped_column(Int64, default=1)
    gpu_count: Mapped[int] = mapped_column(Int64, default=0)
    gpu_memory: Mapped[int] = mapped_column(Int64, default=0)  # MiB on each GPU; 0 = whole GPUs
    start_time: Mapped[Optional[datetime]] = mapped_column(DateTime)
    end_time: Mapped[Optional[datetime]] = mapped_column(DateTime)
    agent_id: Mapped[Optional[str]] = mapped_column(String(64))  # the main agent it was placed on
    sub_agent_id: Mapped[Optional[str]] = mapped_column(String(64))  # the sub-agent that runs it
    log_file: Mapped[Optional[str]] = mapped_column(String(500))
    exit_code: Mapped[Optional[int]] = mapped_column(Int64)
    status_reason: Mapped[Optional[str]] = mapped_column(Text)
    gpu_ids: Mapped[list] = mapped_column(JSON, default=list)
    # Placement bookkeeping: the server's record of what runs where is the truth for free resources.
    # agent_id, sub_agent_id, gpu_ids and these are written only by services/placements.py (its state machine).
    holds_resources: Mapped[bool] = mapped_column(Boolean, default=False)
    handover_acked: Mapped[bool] = mapped_column(Boolean, default=False)  # the agent has it
    # Hand-overs agents refused (e.g. "already ran here"): past a few, the task fails with the reason.
    handover_refusals: Mapped[int] = mapped_column(Int64, default=0, server_default="0")
    # How it runs, besides its script: checked by the api (schemas.TaskRunSettings), carried to the agent.
    env: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    work_dir: Mapped[Optional[str]] = mapped_column(String(1000))  # None: the agent's --work-dir
    time_limit_s: Mapped[int] = mapped_column(Int64, default=0, server_default="0")  # 0 = none
    notify: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")  # URLs told when it ends
    # A retry is a new task; the old one keeps its record and points at it (services/retries.py).
    retry_of: Mapped[Optional[int]] = mapped_column(Int64, index=True)
    retried_as: Mapped[Optional[int]] = mapped_column(Int64)
    # Read from its output (services/task_readings.py): {"percent", "current", "total", "eta_s", "rate", "updated_time"}
    progress: Mapped[Optional[dict]] = mapped_column(JSON)

    dependency_links: Mapped[list[TaskDependency]] = relationship(
        foreign_keys=[TaskDependency.task_id], lazy="selectin", cascade="all, delete-orphan")
    # The other direction, loaded only when asked (lists preload it: services/tasks.get_task_in_page);
    # the scheduler's hot paths never touch it.
    dependent_links: Mapped[list[TaskDependency]] = relationship(
        foreign_keys=[TaskDependency.depends_on_id], lazy="select", viewonly=True)

    @property
    def depends_on(self) -> list[int]:
        return sorted(link.depends_on_id for link in self.dependency_links)

    @property
    def dependents(self) -> list[int]:
        return sorted(link.task_id for link in self.dependent_links)

    @property
    def status_enum(self) -> TaskStatus:
        return TaskStatus(self.status)

    def execution_time(self, now: Optional[datetime] = None) -> Optional[float]:
        """Seconds run so far (or in total, once ended); None before it started."""
        if self.start_time is None:
            return None
        end = as_utc(self.end_time) or now or utcnow()
        return round((end - as_utc(self.start_time)).total_seconds(), 3)

    def to_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "template_type": self.template_type,
            "priority": self.priority, "depends_on": self.depends_on, "status": self.status,
            "created_time": isoformat(self.created_time), "script_content": self.script_content,
            "cpu_cores": self.cpu_cores, "gpu_count": self.gpu_count, "gpu_memory": self.gpu_memory,
            "start_time": isoformat(self.start_time), "end_time": isoformat(self.end_time),
            "execution_time": self.execution_time(), "agent_id": self.agent_id,
            "sub_agent_id": self.sub_agent_id, "log_file": self.log_file, "exit_code": self.exit_code,
            "status_reason": self.status_reason, "gpu_ids": list(self.gpu_ids or []),
            "env": dict(self.env or {}), "work_dir": self.work_dir, "time_limit_s": self.time_limit_s or 0,
            "notify": list(self.notify or []), "dependents": self.dependents,
            "retry_of": self.retry_of, "retried_as": self.retried_as, "progress": self.progress,
        }
