"""The task log directory fills up or turns read-only: the affected task fails with a clear reason,
the server stays up, and tasks run normally again once the operator fixes the disk.

The fault is real: data/logs/tasks is a 1 MiB tmpfs mounted for the test (this needs root, which
the dev machines and CI have; elsewhere the test is skipped with the reason)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.helpers import wait_for

from .conftest import expected_numbered_log, main_agent_record, numbered_lines_script

CORES = 2


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def task_log_dir(data_dir: Path):
    path = data_dir / "logs" / "tasks"
    path.mkdir(parents=True)
    try:
        mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {getattr(exc, 'stderr', exc)}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def server(data_dir: Path, task_log_dir: Path):
    """The standard server, on a data dir whose task logs live on the small tmpfs."""
    proc = ServerProcess(data_dir).start()
    yield proc
    proc.kill()


def fill_up(directory: Path) -> Path:
    """Write a filler file until the file system refuses: no byte of space is left."""
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def check_task_fails_then_others_run(client, server, affected_script: str, fix) -> dict:
    big = client.create_task(affected_script, name="affected")
    failed = client.wait_status(big["id"], {"failed", "completed"}, timeout_s=30)
    assert failed["status"] == "failed", failed
    assert "could not store the task's output" in failed["status_reason"], failed["status_reason"]
    assert server.is_healthy()
    # the failed task's processes are gone, so its core is free even while the disk is still broken
    wait_for(lambda: main_agent_record(client, "box")["available_cpu_cores"] == CORES, 15,
             message=f"available_cpu_cores back to {CORES} before the fix")

    fix()
    ok = client.create_task(numbered_lines_script(20, 0.01), name="after-fix")
    assert client.wait_status(ok["id"], {"failed", "completed"}, 30)["status"] == "completed"
    assert client.log(ok["id"]) == expected_numbered_log(20)
    return failed


@pytest.mark.timeout(120)
def test_full_log_disk_fails_the_task_with_a_reason_and_server_keeps_going(client, server, start_agent,
                                                                          task_log_dir):
    """The task-log tmpfs is filled to the last byte; a task that prints 100 kB fails with
    'could not store the task's output ... No space left on device'; the server answers throughout
    and frees the task's core at once; after the filler is deleted a new task completes, log exact."""
    start_agent(name="box", cpu_cores=CORES)
    filler = fill_up(task_log_dir)
    failed = check_task_fails_then_others_run(
        client, server, "head -c 100000 /dev/zero | tr '\\0' x; echo", fix=filler.unlink)
    assert "No space left on device" in failed["status_reason"]
    print(failed["status_reason"])


@pytest.mark.timeout(120)
def test_read_only_log_dir_fails_the_task_with_a_reason_and_server_keeps_going(client, server, start_agent,
                                                                             task_log_dir):
    """The task-log directory is remounted read-only; a printing task fails with
    'could not store the task's output ... Read-only file system'; the server answers throughout
    and frees the task's core at once; once writable again a new task completes, log exact."""
    start_agent(name="box", cpu_cores=CORES)
    mount("-o", "remount,ro", str(task_log_dir))
    failed = check_task_fails_then_others_run(
        client, server, "echo hello", fix=lambda: mount("-o", "remount,rw", str(task_log_dir)))
    assert "Read-only file system" in failed["status_reason"]
    print(failed["status_reason"])
