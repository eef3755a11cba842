"""A sub-agent whose task is over but whose server is gone gets SIGTERM (its main agent's second stop
signal, the box shutting down, a person's kill): it exits within seconds instead of retrying for
ever, leaving the output the server lacks in its spool, and a main agent (the one still running, or
the next one) starts a sub-agent that delivers it once the server is back: nothing is lost."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from agent.sub_agent_stop import STOP_DELIVERY_GRACE_S
from tests.conftest import ServerProcess
from tests.helpers import wait_for

from .conftest import FINISHED, expected_numbered_log, is_gone, kill_pids, read_pids

LINES = 200


@pytest.fixture
def server(data_dir):
    """As in test_server_crash.py: 5 s of restart grace, so agents retrying every <= 2 s are heard in time."""
    proc = ServerProcess(data_dir, env={"TASK_SYSTEM_RESTART_GRACE_S": "5"}).start()
    yield proc
    proc.kill()


def script_waiting_for(go: Path, evidence_dir: Path) -> str:
    """Writes its pids, waits for the `go` file, then prints numbered lines and ends."""
    return (f'echo $PPID > "{evidence_dir}/sub_agent.pid"; echo $$ > "{evidence_dir}/bash.pid"\n'
            f'while [ ! -e "{go}" ]; do sleep 0.05; done\n'
            f'for i in $(seq 1 {LINES}); do echo "line $i"; done')


def run_until_output_is_stranded(client, server, start_agent, evidence_dir) -> tuple[int, dict]:
    """A task whose whole output is produced while the server is down; returns (task id, pids)."""
    start_agent(name="box", cpu_cores=2)
    task_id = client.create_task(script_waiting_for(evidence_dir / "go", evidence_dir), name="stranded")["id"]
    wait_for(lambda: len(read_pids(evidence_dir)) == 2, 30, message="the task to write its pids")
    client.wait_status(task_id, "running")
    pids = read_pids(evidence_dir)
    server.kill()
    (evidence_dir / "go").touch()
    wait_for(lambda: is_gone(pids["bash"]), 10, message="the task to end")
    return task_id, pids


def stop_sub_agent(pids: dict) -> None:
    os.kill(pids["sub_agent"], signal.SIGTERM)
    wait_for(lambda: is_gone(pids["sub_agent"]), STOP_DELIVERY_GRACE_S + 10,
             message="the finished sub-agent to exit on SIGTERM with its server gone")


@pytest.mark.timeout(120)
def test_finished_sub_agent_exits_on_sigterm_with_its_server_gone_and_its_main_agent_delivers_later(
        client, server, start_agent, evidence_dir):
    task_id, pids = run_until_output_is_stranded(client, server, start_agent, evidence_dir)
    try:
        stop_sub_agent(pids)
        server.start()
        task = client.wait_status(task_id, FINISHED, 60)
        assert task["status"] == "completed", task
        assert client.log(task_id) == expected_numbered_log(LINES)
    finally:
        kill_pids(pids.values())


@pytest.mark.timeout(120)
def test_output_a_stopped_sub_agent_left_is_delivered_by_the_next_main_agent(
        client, server, start_agent, evidence_dir, tmp_path):
    """The main agent is gone too (kill -9) when its sub-agent is stopped: the spool keeps the rest
    with end.json, and the main agent started next delivers it; the log is exact, no line doubled."""
    task_id, pids = run_until_output_is_stranded(client, server, start_agent, evidence_dir)
    try:
        main_pid = next(p.pid for p in _processes_named("setup_master_agent.py", tmp_path))
        os.kill(main_pid, signal.SIGKILL)
        stop_sub_agent(pids)
        spool = tmp_path / "agent-state" / "box" / "spool"
        assert [p.name for p in spool.glob("*/end.json")] == ["end.json"], "the rest was not kept on disk"

        start_agent(name="box", cpu_cores=2)
        server.start()
        task = client.wait_status(task_id, FINISHED, 60)
        assert task["status"] == "completed", task
        assert client.log(task_id) == expected_numbered_log(LINES)
        wait_for(lambda: not any(spool.iterdir()), 15, message="the delivered spool to be removed")
    finally:
        kill_pids(pids.values())


def _processes_named(script: str, tmp_path: Path):
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if script in cmdline and str(tmp_path) in cmdline:
            yield proc
