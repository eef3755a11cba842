"""The server's identity: a random id made once per database (table server_identity), read once per app.

Agents keep what they remember per identity (agent/state.py), so a server on the same URL with a
reset or another database is never taken for the one they ran tasks for.
"""
from __future__ import annotations

import uuid

import structlog
from flask import current_app
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import ServerIdentity
from backend.services.unit_of_work import unit_of_work
from backend.utils.time import utcnow

log = structlog.get_logger()

IDENTITY_ROW_ID = 1
_EXTENSION_KEY = "task_system.server_id"  # per app: tests build many apps, on other databases, in one process


def get_server_id() -> str:
    """This database's server id, made on first need; cached in the app (it never changes)."""
    server_id = current_app.extensions.get(_EXTENSION_KEY)
    if server_id is None:
        server_id = current_app.extensions[_EXTENSION_KEY] = _read_or_create()
    return server_id


def _read_or_create() -> str:
    try:
        with unit_of_work():
            row = db.session.get(ServerIdentity, IDENTITY_ROW_ID)
            if row is None:
                row = ServerIdentity(id=IDENTITY_ROW_ID, server_id=uuid.uuid4().hex, created_time=utcnow())
                db.session.add(row)
                log.info("server_identity_created", server_id=row.server_id)
            server_id = row.server_id
    except IntegrityError:  # another server process on the same database made it first: theirs it is
        server_id = db.session.get(ServerIdentity, IDENTITY_ROW_ID).server_id
    return server_id
