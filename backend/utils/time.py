"""Aware UTC times only. Serialise with isoformat(), which includes +00:00."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: Optional[datetime]) -> Optional[datetime]:
    """SQLite returns naive datetimes; every stored time is UTC, so attach the zone back."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def isoformat(value: Optional[datetime]) -> Optional[str]:
    value = as_utc(value)
    return value.isoformat() if value is not None else None


def sqlite_datetime(value: datetime) -> str:
    """A UTC time as SQLAlchemy's SQLite DateTime stores it, for the few raw SQL statements."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
