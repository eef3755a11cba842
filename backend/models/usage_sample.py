"""A task's resource use over its life, as its sub-agent's heartbeats reported it (services/task_readings.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.types import Int64


class UsageSample(db.Model):
    __tablename__ = "task_usage_samples"
    # seq: the sample's slot (wall-clock seconds / the sampling base): thinning keeps the slots that are
    # multiples of a growing stride, so a long task keeps evenly spread samples, a few thousand at most.
    __table_args__ = (Index("ix_usage_samples_task_seq", "task_id", "seq"),)

    id: Mapped[int] = mapped_column(Int64, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    seq: Mapped[int] = mapped_column(Int64)
    time: Mapped[datetime] = mapped_column(DateTime)
    cpu_percent: Mapped[float] = mapped_column(Float)
    memory_mib: Mapped[float] = mapped_column(Float)
    gpus: Mapped[list] = mapped_column(JSON)  # [{"index", "utilization", "memory_used_mib"}]
