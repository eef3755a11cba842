"""The Template table: named bash scripts that new tasks start from."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.types import Int64
from backend.utils.time import isoformat, utcnow


class Template(db.Model):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Int64, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    script_content: Mapped[str] = mapped_column(Text)
    created_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "script_content": self.script_content,
                "created_time": isoformat(self.created_time), "updated_time": isoformat(self.updated_time)}
