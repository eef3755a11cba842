"""The server's own disk fills up (its database's directory): a request that must write answers 507
Insufficient Storage with a message that says the disk is full, never a generic 500; the server
stays up and works again once there is space.

The fault is real: data/database is a 1 MiB tmpfs mounted for the test (this needs root; elsewhere
the test is skipped with the reason)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

from .test_log_storage_failure import fill_up, mount


@pytest.fixture
def database_dir(data_dir: Path):
    path = data_dir / "database"
    path.mkdir(parents=True)
    try:
        mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {getattr(exc, 'stderr', exc)}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def server(data_dir: Path, database_dir: Path):
    proc = ServerProcess(data_dir).start()
    yield proc
    proc.kill()


@pytest.mark.timeout(60)
def test_a_full_database_disk_answers_507_and_the_server_recovers(client, server, database_dir):
    filler = fill_up(database_dir)
    body = {"name": "big", "template_type": "custom", "script_content": "echo " + "x" * 300_000}
    resp = client.post("/api/tasks", json=body)
    assert resp.status_code == 507, resp.text
    error = resp.json()["error"]
    assert error["code"] == "insufficient_storage" and "disk" in error["message"] and "full" in error["message"]
    assert server.is_healthy()

    filler.unlink()
    assert client.post("/api/tasks", json=body).status_code == 201
