"""The server on PostgreSQL (make test-postgres: TASK_SYSTEM_TEST_DATABASE=postgresql, tests/pg.py): two
agents racing for many tasks run each exactly once, a database of an older release is upgraded (with the
pg_dump advice logged instead of a file copy), one of a newer release is refused, and times are UTC
whatever the PostgreSQL server's own time zone (the test cluster's is not UTC)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from backend.services import schema
from tests import pg
from tests.conftest import ROOT, ServerProcess, free_port
from tests.helpers import Api, wait_for
from tests.test_migrations import logged_events, schema_differences

pytestmark = pytest.mark.skipif(not pg.enabled(), reason="PostgreSQL only (TASK_SYSTEM_TEST_DATABASE=postgresql)")

RACE_TASKS = 500


def test_two_agents_racing_for_500_tasks_run_each_exactly_once(client: Api, start_agent, tmp_path: Path):
    runs = tmp_path / "runs.txt"  # each run appends its task id: O_APPEND lines do not interleave
    ids = [client.create_task(f"echo $TASK_ID >> {runs}; echo ran", name=f"race-{n}", cpu_cores=0 if n % 5 == 0 else 1)["id"]
           for n in range(RACE_TASKS)]
    for name in ("racer-1", "racer-2"):
        start_agent(name=name, cpu_cores=8, simulate_gpus=None)

    def finished() -> int:
        page = client.get("/api/tasks", params={"status": "completed,failed,canceled", "page_size": 1}).json()
        return page["total"] == RACE_TASKS and page["total"]
    wait_for(finished, 240, interval_s=1, message=f"all {RACE_TASKS} tasks to finish")

    counted = Counter(int(line) for line in runs.read_text().split())
    assert sorted(counted) == sorted(ids) and set(counted.values()) == {1}, counted.most_common(3)
    tasks = [t for page in range(1, RACE_TASKS // 200 + 2)
             for t in client.get("/api/tasks", params={"page": page, "page_size": 200}).json()["items"]]
    assert Counter(t["status"] for t in tasks) == {"completed": RACE_TASKS}
    assert len({t["agent_id"] for t in tasks}) == 2  # both agents ran some
    assert all(client.log(task_id) == b"ran\n" for task_id in ids[::50])


def test_times_are_utc_whatever_the_database_server_zone(client: Api):
    before = datetime.now(timezone.utc)
    created = datetime.fromisoformat(client.create_task("true")["created_time"])
    assert abs((created - before).total_seconds()) < 60


def test_an_older_database_is_upgraded_and_the_log_says_how_to_back_it_up(data_dir: Path):
    url = pg.current.database_for(data_dir)
    config = schema.alembic_config()
    engine = create_engine(url)
    with engine.begin() as connection:  # the schema of the release before 0007, with a task in it
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(text("INSERT INTO tasks (name, template_type, priority, status, created_time, script_content,"
                                " cpu_cores, gpu_count, gpu_memory, gpu_ids, holds_resources, handover_acked)"
                                " VALUES ('old', 'custom', 3, 'completed', now(), 'true', 1, 0, 0, '[]', false, false)"))
    engine.dispose()

    server = ServerProcess(data_dir).start()
    try:
        assert Api(server.url).task(1)["name"] == "old"
        assert schema_differences(url) == []
        assert "database_backup_skipped" in logged_events(data_dir) and "database_migrated" in logged_events(data_dir)
        assert "pg_dump --format=custom" in (data_dir / "logs" / "system" / "server.log").read_text()
        assert not (data_dir / "backups").exists()
    finally:
        server.kill()


def test_a_database_of_a_newer_release_is_refused_with_one_line(data_dir: Path):
    url = pg.current.database_for(data_dir)
    schema.upgrade_database(url, data_dir)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999_from_the_future'"))
    engine.dispose()
    result = subprocess.run([sys.executable, "app.py", "--data-dir", str(data_dir), "--port", str(free_port()),
                             "--database-url", url], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "0999_from_the_future" in result.stderr and "upgrade task_system" in result.stderr
