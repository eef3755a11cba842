"""Schema migrations, against real files: a data dir written by the first release opens with everything
kept (but the columns a later revision dropped), a new one gets the models' schema, a newer one is
refused untouched, and a start at head is a read."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, create_engine

from backend import models  # noqa: F401 (every table on db.metadata)
from backend.extensions import db
from backend.services import schema
from tests.conftest import ROOT, AgentProcess, ServerProcess, free_port
from tests.helpers import Api, wait_for

FIXTURE = Path(__file__).parent / "fixtures" / "release1_data.tar.gz"
RELEASE1_TABLES = ("tasks", "task_dependencies", "agents", "templates")
# First-release columns a later revision dropped: their values are not kept. 0004: tasks.last_seen_time
# (written, never read; liveness goes by services/last_heard.py).
DROPPED_COLUMNS = {"tasks": {"last_seen_time"}}


@pytest.fixture
def release1_dir(tmp_path: Path) -> Path:
    """The data dir the first release wrote (tests/fixtures/make_release1_data.py): 8 tasks, 2 templates, 5 agents."""
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "data"


def db_file(data_dir: Path) -> Path:
    return data_dir / "database" / "task_system.db"


def read_rows(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, list[dict]]:
    """Every row of the first release's tables (only `columns` of each, when given), read with sqlite3."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return {table: [{k: row[k] for k in (columns[table] if columns else row.keys())}
                        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
                for table in RELEASE1_TABLES}


def revision_of(path: Path) -> str | None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def json_default_differs(context, _inspected_column, metadata_column, inspected_default, _metadata_default,
                         rendered_default):
    """Alembic compares server defaults by asking the database ('{}'::json = '{}'), which PostgreSQL cannot
    answer for json: there the text is compared instead ('{}'::json against {}); None: Alembic's own."""
    if context.dialect.name == "postgresql" and isinstance(metadata_column.type, JSON):
        return (inspected_default or "").split("::")[0].strip("'") != (rendered_default or "").strip("'")
    return None


def schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": json_default_differs})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def logged_events(data_dir: Path) -> list[str]:
    events = []
    for path in sorted((data_dir / "logs" / "system").glob("server.log*")):
        events += [json.loads(line)["event"] for line in path.read_text().splitlines() if line.startswith("{")]
    return events


def iso(stored: str | None) -> str | None:
    """A time as the first release stored it (naive UTC), as the API writes it."""
    return datetime.fromisoformat(stored).replace(tzinfo=timezone.utc).isoformat() if stored else None


@pytest.mark.sqlite_only
def test_release1_data_dir_opens_with_every_task_template_agent_and_log_kept(release1_dir: Path, tmp_path: Path):
    before = read_rows(db_file(release1_dir))
    logs_before = {p.name: p.read_bytes() for p in (release1_dir / "logs" / "tasks").iterdir()}
    assert len(before["tasks"]) == 8 and len(before["templates"]) == 2 and len(before["agents"]) == 5

    server = ServerProcess(release1_dir).start()
    agent = None
    try:
        columns = {table: [c for c in rows[0] if c not in DROPPED_COLUMNS.get(table, ())]
                   for table, rows in before.items()}
        kept = {table: [{c: row[c] for c in columns[table]} for row in rows] for table, rows in before.items()}
        assert read_rows(db_file(release1_dir), columns) == kept
        assert revision_of(db_file(release1_dir)) == schema.head_revision()
        backups = list((release1_dir / "backups").glob(f"task_system-before-{schema.head_revision()}-*.db"))
        assert len(backups) == 1 and read_rows(backups[0]) == before
        assert {p.name: p.read_bytes() for p in (release1_dir / "logs" / "tasks").iterdir()} == logs_before
        assert "database_backed_up" in logged_events(release1_dir) and "database_migrated" in logged_events(release1_dir)

        api = Api(server.url)
        assert_api_serves(api, before)
        assert b"line 3" in api.log(1) and b"oops" in api.log(2) and "训练开始".encode() in api.log(5)

        agent = AgentProcess(server, "release2-box", tmp_path / "work", tmp_path / "state").start()
        task = api.create_task("echo ran on the upgraded database", name="after-upgrade")
        assert api.wait_status(task["id"], ("completed", "failed"), 30)["status"] == "completed"
        assert b"ran on the upgraded database" in api.log(task["id"])
        for task_id in (6, 7, 8):  # still waiting (or blocked) in the first release: now they run
            assert api.wait_status(task_id, ("completed", "failed", "canceled"), 30)["status"] == "completed"
    finally:
        if agent:
            agent.kill()
        server.kill()


def assert_api_serves(api: Api, rows: dict[str, list[dict]]) -> None:
    depends = {}
    for link in rows["task_dependencies"]:
        depends.setdefault(link["task_id"], []).append(link["depends_on_id"])
    for row in rows["tasks"]:
        task = api.task(row["id"])
        for key in ("name", "template_type", "priority", "status", "script_content", "cpu_cores", "gpu_count",
                    "gpu_memory", "agent_id", "sub_agent_id", "exit_code", "status_reason"):
            assert task[key] == row[key], (row["id"], key)
        assert task["gpu_ids"] == json.loads(row["gpu_ids"])
        assert task["depends_on"] == sorted(depends.get(row["id"], []))
        for key in ("created_time", "start_time", "end_time"):
            assert task[key] == iso(row[key]), (row["id"], key)
    templates = {t["name"]: t for t in api.get("/api/templates").json()}
    for row in rows["templates"]:
        assert templates[row["name"]]["script_content"] == row["script_content"]
        assert templates[row["name"]]["created_time"] == iso(row["created_time"])
    for row in rows["agents"]:
        agent = api.get(f"/api/agents/{row['id']}").json()
        for key in ("name", "type", "hostname", "cpu_cores", "task_id", "main_agent_id", "monitor_file"):
            assert agent[key] == row[key], (row["id"], key)
        assert agent["gpu_info"] == json.loads(row["gpu_info"]) and agent["draining"] is False


def drop_indexes_added_after_release1_began(path: Path) -> None:
    """The shape of a database first made before 58eeeb7/9357b37: a narrower queue index, no list or core-less one."""
    with sqlite3.connect(path) as conn:
        conn.executescript("DROP INDEX ix_tasks_coreless; DROP INDEX ix_tasks_list; DROP INDEX ix_tasks_queue;"
                           "CREATE INDEX ix_tasks_queue ON tasks (status, priority, id);")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("start", ["empty", "release1", "release1_without_later_indexes"])
def test_upgraded_schema_equals_the_models(start: str, release1_dir: Path, tmp_path: Path):
    data_dir = tmp_path / "fresh" if start == "empty" else release1_dir
    if start == "release1_without_later_indexes":
        drop_indexes_added_after_release1_began(db_file(release1_dir))
    url = f"sqlite:///{db_file(data_dir)}"
    schema.upgrade_database(url, data_dir)
    assert revision_of(db_file(data_dir)) == schema.head_revision()
    assert schema_differences(url) == []
    assert (data_dir / "backups").is_dir() == (start != "empty")  # an empty database is not copied


def test_in_process_app_gets_the_models_schema(app):
    with app.app_context():
        assert schema_differences(str(db.engine.url)) == []


def stamp_unknown_revision(data_dir: Path) -> Path:
    schema.upgrade_database(f"sqlite:///{db_file(data_dir)}", data_dir)
    with sqlite3.connect(db_file(data_dir)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    conn.close()  # the last connection: SQLite folds the WAL into the file and removes it
    return db_file(data_dir)


@pytest.mark.sqlite_only
def test_database_of_a_newer_release_is_refused_with_one_line_and_left_untouched(tmp_path: Path):
    path = stamp_unknown_revision(tmp_path / "data")
    content, mtime = path.read_bytes(), path.stat().st_mtime_ns
    result = subprocess.run([sys.executable, "app.py", "--data-dir", str(tmp_path / "data"), "--port", str(free_port())],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr.startswith("app.py: error: database: ")
    assert "0999_from_the_future" in result.stderr and "upgrade task_system" in result.stderr
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
    assert not (tmp_path / "data" / "backups").exists()


@pytest.mark.sqlite_only
def test_create_app_refuses_a_newer_database(tmp_path: Path):
    from backend.factory import create_app

    path = stamp_unknown_revision(tmp_path / "data")
    content = path.read_bytes()
    with pytest.raises(schema.SchemaError, match="0999_from_the_future"):
        create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), "RUN_BACKGROUND_JOBS": False})
    assert path.read_bytes() == content


@pytest.mark.sqlite_only
def test_second_start_at_head_makes_no_backup_and_runs_no_migration(release1_dir: Path):
    server = ServerProcess(release1_dir).start()
    server.stop()
    backups = sorted((release1_dir / "backups").iterdir())
    events = logged_events(release1_dir)
    assert len(backups) == 1 and events.count("database_migrated") == 1

    server.start()
    try:
        assert sorted((release1_dir / "backups").iterdir()) == backups
        new_events = logged_events(release1_dir)[len(events):]
        assert "server_started" in new_events
        assert "database_migrated" not in new_events and "database_backed_up" not in new_events
    finally:
        server.kill()
