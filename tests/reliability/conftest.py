"""Shared pieces of the reliability suite: fault injection (kill -9, freeze), task scripts that
leave evidence (numbered lines, side-effect files, pid files) and waits over many tasks.

The fixtures of tests/conftest.py (data_dir, server, client, start_agent, main_agent) are reused as
they are; every fault here is real: signals to real processes, a real tmpfs, a real SQLite file.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Iterable

import psutil
import pytest

from tests.conftest import ServerProcess
from tests.helpers import Api, wait_for

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
FINISHED = {"completed", "failed", "canceled"}


# -- task scripts -----------------------------------------------------------------------------------

def numbered_lines_script(lines: int, delay_s: float) -> str:
    """Prints `line 1` .. `line N`, one every delay_s: a log that shows any byte lost or doubled."""
    return f'for i in $(seq 1 {lines}); do echo "line $i"; sleep {delay_s}; done'


def expected_numbered_log(lines: int) -> bytes:
    return "".join(f"line {i}\n" for i in range(1, lines + 1)).encode()


def side_effect_script(shared_file: Path, sleep_s: float = 0.0) -> str:
    """Appends the task's id to a shared file once per run: a task run twice shows up twice."""
    script = f'echo "$TASK_ID" >> "{shared_file}"'
    return script + (f"\nsleep {sleep_s}" if sleep_s else "")


def ids_in(shared_file: Path) -> list[int]:
    if not shared_file.exists():
        return []
    return [int(line) for line in shared_file.read_text().split()]


# -- processes ---------------------------------------------------------------------------------------

def server_processes(server: ServerProcess) -> list[psutil.Process]:
    """The gunicorn master and its worker(s)."""
    master = psutil.Process(server.proc.pid)
    return [master, *master.children(recursive=True)]


def freeze_server(server: ServerProcess) -> list[psutil.Process]:
    """SIGSTOP every server process, worker first: to agents this looks like a network outage
    (connections are accepted by the kernel, nothing is answered)."""
    procs = server_processes(server)
    for proc in reversed(procs):
        proc.send_signal(signal.SIGSTOP)
    return procs


def thaw_server(procs: list[psutil.Process]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGCONT)


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def read_pids(pid_dir: Path) -> dict[str, int]:
    return {path.stem: int(path.read_text().strip()) for path in pid_dir.glob("*.pid")
            if path.read_text().strip()}


def kill_pids(pids: Iterable[int]) -> None:
    """Clean-up for processes a failing test may have left (each by its own pid)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- waiting over many tasks --------------------------------------------------------------------------

def statuses_of(client: Api, ids: Iterable[int]) -> dict[int, dict]:
    """The tasks with these ids, read in pages of 200 (one request per page, not one per task)."""
    wanted = set(ids)
    found: dict[int, dict] = {}
    page = 1
    while True:
        body = client.get("/api/tasks", params={"page": page, "page_size": 200}).json()
        found.update({t["id"]: t for t in body["items"] if t["id"] in wanted})
        if page * 200 >= body["total"]:
            return found
        page += 1


def wait_all_finished(client: Api, ids: list[int], timeout_s: float) -> dict[int, dict]:
    def all_finished():
        tasks = statuses_of(client, ids)
        return len(tasks) == len(ids) and all(t["status"] in FINISHED for t in tasks.values()) and tasks

    return wait_for(all_finished, timeout_s, interval_s=0.25,
                    message=f"{len(ids)} tasks to finish")


def all_running_with_output(client: Api, ids: list[int]) -> bool:
    """Every task runs and the server holds some of its output (so a fault hits tasks mid-stream)."""
    tasks = statuses_of(client, ids).values()
    return len(tasks) == len(ids) and all(
        t["status"] == "running" and client.get(f"/api/tasks/{t['id']}/log", params={"tail": 1}).json()["size"] > 0
        for t in tasks)


def summary(tasks: dict[int, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks.values():
        counts[task["status"]] = counts.get(task["status"], 0) + 1
    return counts


def main_agent_record(client: Api, name: str) -> dict:
    return next(a for a in client.get("/api/agents").json() if a["name"] == name)


@pytest.fixture
def evidence_dir(tmp_path: Path) -> Path:
    """Where task scripts leave side effects and pid files (outside every work dir)."""
    path = tmp_path / "evidence"
    path.mkdir()
    return path


def assert_all_completed_with_exact_logs(client: Api, ids: list[int], lines: int) -> None:
    """Every task completed, and every log holds `line 1..lines` exactly once, in order."""
    tasks_after = wait_all_finished(client, ids, timeout_s=lines * 0.25 + 90)
    assert summary(tasks_after) == {"completed": len(ids)}, \
        {i: (t["status"], t["status_reason"]) for i, t in tasks_after.items() if t["status"] != "completed"}
    expected = expected_numbered_log(lines)
    wrong = {i: client.log(i)[:200] for i in ids if client.log(i) != expected}
    assert not wrong, f"logs with lines lost, doubled or out of order: {wrong}"
