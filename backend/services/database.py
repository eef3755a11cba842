"""What differs between the two databases the server runs on, in one place: SQLite (the embedded
default, a file under the data dir) and PostgreSQL (`postgresql+psycopg://...`). Everything else (models,
migrations, services, the raw statements of services/raw_sql.py) is the same code on both.

- SQLite: pragmas on every connection (WAL, busy timeout, foreign keys); backups are file copies.
- Case-sensitive substring search: SQLite's instr(), PostgreSQL's strpos() (contains_text below;
  LIKE would be case-insensitive on SQLite and need escaping).
- PostgreSQL: every connection's session time zone is UTC, because the columns are `timestamp without
  time zone` holding UTC and psycopg sends aware datetimes, which the server would otherwise convert
  to its own zone; psycopg waits for the server cooperatively under gevent; backups are pg_dump's.
"""
from __future__ import annotations

import selectors
import sys
from typing import Any

from sqlalchemy import ColumnElement, Integer, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=5000", "foreign_keys=ON", "synchronous=NORMAL")
POSTGRESQL_CONNECT_ARGS = {"options": "-c timezone=UTC", "application_name": "task_system"}


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def connect_args(url: str | URL) -> dict[str, Any]:
    """The driver's arguments for every connection the server makes (the app's pool, migrations)."""
    return {} if is_sqlite(url) else dict(POSTGRESQL_CONNECT_ARGS)


def engine_options(url: str, pool_size: int) -> dict[str, Any]:
    """The app's engine: a fixed pool (requests past it wait for a connection)."""
    options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 0}
    if not is_sqlite(url):
        options["connect_args"] = connect_args(url)
    return options


def configure_engine(engine: Engine) -> None:
    """Per-database set-up of the app's engine, in the process that serves requests."""
    if engine.dialect.name == "sqlite":
        _set_sqlite_pragmas(engine)
    else:
        _make_psycopg_cooperative()


def _set_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    engine.dispose()  # connections made before the listener existed get the pragmas too


def _make_psycopg_cooperative() -> None:
    """psycopg chooses how it waits for the server once, when first imported: in C, blocking the whole
    process, unless gevent had patched `select` by then. app.py imports it in gunicorn's master (the
    schema upgrade), before the gevent worker patches, so every query would stall every request.
    Here, in the worker, it is told again: poll and the selector, both gevent's once patched."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("select"):
        return
    from psycopg import waiting

    waiting.wait = waiting.wait_poll
    waiting.DefaultSelector = selectors.DefaultSelector  # connecting


def backup_command(url: str | URL) -> str:
    """The pg_dump command that backs up this PostgreSQL database (the server copies only SQLite files
    itself); the password comes from PGPASSWORD or ~/.pgpass, never the command line."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host")
    flags = [f"--host={host}" if host else "", f"--port={parsed.port}" if parsed.port else "",
             f"--username={parsed.username}" if parsed.username else ""]
    return " ".join(["pg_dump --format=custom", *filter(None, flags),
                     "--file=task_system-$(date -u +%Y%m%dT%H%M%SZ).dump", parsed.database or ""])


class _Position(FunctionElement):
    """The 1-based position of a string in another, 0 when absent: instr() or strpos()."""
    type = Integer()
    inherit_cache = True


@compiles(_Position)
def _instr(element, compiler, **kw) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Position, "postgresql")
def _strpos(element, compiler, **kw) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def contains_text(haystack: ColumnElement[str], needle: str) -> ColumnElement[bool]:
    """haystack holds needle, case and wildcards (% _) as they are, on either database."""
    return _Position(haystack, needle) > 0
