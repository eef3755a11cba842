"""The server's identity: one row, made once per database. Agents keep what they remember (their id,
adopted tasks, finished task ids) per identity, so a reset database or another server is never mixed
up with the one they ran tasks for."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.types import Int64
from backend.utils.time import utcnow


class ServerIdentity(db.Model):
    __tablename__ = "server_identity"

    id: Mapped[int] = mapped_column(Int64, primary_key=True)  # always 1
    server_id: Mapped[str] = mapped_column(String(64))
    created_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
