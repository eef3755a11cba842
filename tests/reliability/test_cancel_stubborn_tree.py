"""Cancel reaches every process of a task, even one that ignores SIGTERM and left the task's
process group and session."""
from __future__ import annotations

import psutil
import pytest

from tests.helpers import wait_for

from .conftest import SCRIPTS_DIR, is_gone, kill_pids, read_pids

ROLES = {"bash", "child", "grandchild", "setsid", "setsid_child", "orphan", "scrubbed", "python"}


def processes_with_env(name: str, value: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get(name) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.mark.timeout(90)
def test_cancel_kills_sigterm_ignoring_tree_with_setsid_grandchildren(client, start_agent, evidence_dir):
    """A task whose 8 processes all ignore SIGTERM (children, grandchildren, two setsid'd away, one
    double-forked orphan, one with a scrubbed environment) is canceled: it ends 'canceled' and not
    one of its processes is left (pid files + a psutil scan for its PID_DIR variable)."""
    start_agent(name="box", extra=["--kill-grace-s", "2"])
    script = f'export PID_DIR="{evidence_dir}"\nexec bash "{SCRIPTS_DIR / "stubborn_tree.sh"}"'
    task_id = client.create_task(script, name="stubborn")["id"]
    wait_for(lambda: set(read_pids(evidence_dir)) == ROLES, 30, message="all 8 processes to write pid files")
    pids = read_pids(evidence_dir)
    try:
        assert not [r for r, pid in pids.items() if is_gone(pid)], "a process died before the cancel"
        resp = client.post(f"/api/tasks/{task_id}/cancel")
        assert resp.status_code == 200, resp.text
        try:
            wait_for(lambda: all(is_gone(pid) for pid in pids.values()), 30,
                     message="every process of the task to be gone")
        except AssertionError:
            raise AssertionError(f"left running: { {r: p for r, p in pids.items() if not is_gone(p)} }") from None
        assert processes_with_env("PID_DIR", str(evidence_dir)) == []
        assert client.task(task_id)["status"] == "canceled"
    finally:
        kill_pids(pids.values())
