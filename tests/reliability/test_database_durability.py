"""The SQLite database survives the server being killed mid-write, and the documented backup
command takes a consistent copy while the server is busy writing."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT
from tests.helpers import wait_for

WRITERS = 4


class TaskWriters:
    """Threads that create tasks as fast as the server takes them, remembering every 201's id."""

    def __init__(self, url: str, writers: int = WRITERS):
        self.url, self.stop = url, threading.Event()
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.write, args=(n,), daemon=True) for n in range(writers)]

    def __enter__(self) -> "TaskWriters":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def write(self, writer: int) -> None:
        session, count = requests.Session(), 0
        while not self.stop.is_set():
            count += 1
            body = {"name": f"w{writer}-{count}", "template_type": "durability",
                    "script_content": f"echo {writer} {count}\n" + "#" * 2000,
                    "depends_on": self.acked[-1:]}  # dependency rows are written in the same transaction
            try:
                resp = session.post(self.url + "/api/tasks", json=body, timeout=10)
            except requests.RequestException:
                continue  # the server is down: keep trying, like a client would
            if resp.status_code == 201:
                self.acked.append(resp.json()["id"])
            elif resp.status_code != 400:  # 400: the dependency failed meanwhile, a legitimate answer
                self.errors.append(f"{resp.status_code}: {resp.text[:200]}")


def db_path(data_dir: Path) -> Path:
    return data_dir / "database" / "task_system.db"


def check_database(path: Path) -> int:
    """integrity_check and foreign_key_check pass; returns the number of tasks."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        return conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    finally:
        conn.close()


def kill_mid_write(server, data_dir: Path, rounds: int) -> tuple[int, int]:
    with TaskWriters(server.url) as writers:
        for _ in range(rounds):
            acked_before = len(writers.acked)
            wait_for(lambda: len(writers.acked) >= acked_before + 50, 30, message="50 more tasks written")
            server.kill()  # kill -9 of the whole server while 4 writers are mid-request
            check_database(db_path(data_dir))  # the file as the crash left it (WAL recovered on open)
            server.start()
        wait_for(lambda: len(writers.acked) >= acked_before + 100, 30, message="writes to go on after restart")
    assert not writers.errors, writers.errors[:5]
    rows = check_database(db_path(data_dir))
    resp = requests.get(server.url + "/api/tasks", params={"template_type": "durability", "page_size": 1}, timeout=10)
    assert resp.json()["total"] == rows
    conn = sqlite3.connect(db_path(data_dir))
    stored = {row[0] for row in conn.execute("SELECT id FROM tasks")}
    conn.close()
    missing = sorted(set(writers.acked) - stored)
    assert not missing, f"tasks acknowledged with 201 but lost in the crash: {missing[:20]}"
    return len(writers.acked), rows


@pytest.mark.timeout(120)
def test_database_survives_kill_9_mid_write_with_every_acknowledged_task(server, data_dir):
    """4 threads create tasks (with dependency rows) nonstop; the server is killed -9 mid-write and
    restarted: integrity_check and foreign_key_check pass, and every task answered 201 exists."""
    acked, rows = kill_mid_write(server, data_dir, rounds=1)
    print(f"{acked} tasks acknowledged, {rows} rows, 0 lost")


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_database_survives_ten_kills_mid_write(server, data_dir):
    """Soak: ten kill -9 / restart rounds under 4 writers: the file stays intact, nothing acknowledged is lost."""
    acked, rows = kill_mid_write(server, data_dir, rounds=10)
    print(f"10 kills: {acked} tasks acknowledged, {rows} rows, 0 lost")


@pytest.mark.timeout(120)
def test_backup_command_copies_a_consistent_database_under_write_load(server, data_dir, tmp_path):
    """`scripts/backup_db.py --data-dir D --out F` (what `make backup` runs), three times while 4
    threads write: each copy passes integrity_check and foreign_key_check, its tasks are exactly
    ids 1..N (a snapshot, no torn transaction), and N lies between the acknowledged counts
    before and after the backup."""
    with TaskWriters(server.url) as writers:
        wait_for(lambda: len(writers.acked) >= 100, 30, message="100 tasks written before the first backup")
        for n in range(3):
            acked_before = len(writers.acked)
            out = tmp_path / f"backup-{n}.db"
            result = subprocess.run([sys.executable, "scripts/backup_db.py", "--data-dir", str(data_dir),
                                     "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
            acked_after = len(writers.acked)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == str(out)
            rows = check_database(out)
            conn = sqlite3.connect(out)
            ids = [row[0] for row in conn.execute("SELECT id FROM tasks ORDER BY id")]
            conn.close()
            assert ids == list(range(1, rows + 1))
            assert acked_before <= rows <= acked_after + WRITERS, (acked_before, rows, acked_after)
            time.sleep(0.2)  # let the writers add more between copies (load, not an outcome wait)
    assert not writers.errors, writers.errors[:5]
