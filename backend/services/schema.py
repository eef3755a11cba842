"""The database schema: brought to this release's head at every start (Alembic, backend/migrations/).

At head, a start costs one read of alembic_version. Otherwise a SQLite database that holds tables is
first copied to `<data-dir>/backups/` (PostgreSQL: not copied; the log says how, with pg_dump), then every
pending revision runs in one transaction (DDL included, on both databases), so a failed upgrade changes
nothing. A first-release database (tables, no alembic_version) upgrades from nothing: the
baseline revision makes only what it lacks. A revision this code does not know (a newer release wrote
it) is refused before anything is written.
"""
from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from backend.services import database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

log = structlog.get_logger()


class SchemaError(Exception):
    """This database cannot be brought to this release's schema; the message says why, in one line."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade_database(url: str, data_dir: str | Path) -> None:
    """Bring the database at `url` to head; raises SchemaError (with nothing changed) when it cannot."""
    shown = make_url(url).render_as_string(hide_password=True)
    engine = None
    try:
        engine = _migration_engine(url)  # ImportError: the URL names a driver that is not installed
        with engine.begin() as connection:
            _upgrade(connection, Path(data_dir))
    except (SQLAlchemyError, sqlite3.Error, OSError, ImportError) as exc:
        raise SchemaError(f"{shown}: {_first_line(exc)}") from exc
    finally:
        if engine is not None:
            engine.dispose()


def _upgrade(connection: Connection, data_dir: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaError(f"schema revision {current} is not one this task_system knows (its latest is {head}): "
                          f"a newer release wrote it; upgrade task_system to open this database")
    tables = inspect(connection).get_table_names()
    backup = _backup(connection.engine.url, data_dir, current, head) if tables else None
    started = time.monotonic()
    config = alembic_config()
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        kept = f"; a copy from before is at {backup}" if backup else ""
        raise SchemaError(f"upgrade to revision {head} failed, nothing was changed: {_first_line(exc)}{kept}") from exc
    log.info("database_migrated", from_revision=current, to_revision=head,
             first_release=current is None and bool(tables), duration_s=round(time.monotonic() - started, 3))


def _migration_engine(url: str) -> Engine:
    """A connection of its own, with SQLite's DDL inside the transaction (pysqlite would autocommit
    each CREATE/ALTER), so that the whole upgrade commits or rolls back as one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, poolclass=NullPool, connect_args=database.connect_args(parsed))
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def take_over_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def begin(conn):
        conn.exec_driver_sql("BEGIN")

    return engine


def _backup(url: URL, data_dir: Path, current: Optional[str], head: str) -> Optional[Path]:
    """Copy a SQLite database aside before its schema changes; for PostgreSQL, say how to (pg_dump)."""
    if url.get_backend_name() != "sqlite":
        log.warning("database_backup_skipped", from_revision=current, to_revision=head,
                    reason="the server copies only SQLite databases; back up PostgreSQL with pg_dump",
                    command=database.backup_command(url))
        return None
    if not url.database or url.database == ":memory:":
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = data_dir / "backups" / f"task_system-before-{head}-{stamp}.db"
    verdict = copy_sqlite(Path(url.database), out)
    if verdict != "ok":
        raise SchemaError(f"the copy taken before upgrading ({out}) failed its integrity check: {verdict}")
    log.info("database_backed_up", path=str(out), size_bytes=out.stat().st_size, from_revision=current,
             to_revision=head)
    return out


def copy_sqlite(db_path: Path, out: Path) -> str:
    """A consistent copy of a SQLite database, even while the server writes to it (SQLite's online
    backup API); returns the copy's integrity_check verdict ("ok")."""
    out.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(out)
    try:
        source.backup(target)
        return target.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        target.close()
        source.close()


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
