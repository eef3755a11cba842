"""The agent box's disk fills up: the main agent stays up and says so, tasks wait instead of failing
for it, and everything runs again by itself once there is space; a task that fills the disk itself
ends with its own exit code and all its output (bash's "No space left on device" included); a
chatty task's output does not fill a small state dir (the spool keeps only what the server lacks).

The fault is real: the agent's state dir and work dir are on a small tmpfs mounted for the test
(this needs root, which the dev machines and CI have; elsewhere the test is skipped with the reason).

Decided: an agent whose disk is full takes no new task (the server hands it none while the
heartbeat's disk_problem is set), so a task submitted meanwhile waits and runs once space returns;
a hand-over that reaches the agent anyway is refused with "disk full on <agent>: <path>" and goes
back to waiting (it fails with that reason only after MAX_HANDOVER_REFUSALS such refusals).
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from agent.main_agent import MainAgent, MainAgentConfig
from agent.resource_util import ResourceUtil, parse_simulated_gpus
from task_common import protocol as p
from tests.conftest import AgentProcess
from tests.helpers import wait_for

from .conftest import FINISHED, expected_numbered_log, main_agent_record, numbered_lines_script
from .test_log_storage_failure import fill_up, mount


@pytest.fixture
def small_disk(tmp_path: Path):
    """small_disk("2m") -> a fresh tmpfs of that size under tmp_path (unmounted after the test)."""
    mounted = []

    def make(size: str) -> Path:
        path = tmp_path / f"disk-{len(mounted)}"
        path.mkdir()
        try:
            mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {getattr(exc, 'stderr', exc)}")
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def agent_on(server, client, tmp_path: Path):
    """agent_on(disk) -> a main agent "box" whose state dir and work dir are on that disk (its stdout
    is not: that is where a person would read what went wrong)."""
    agents = []

    def start(disk: Path) -> AgentProcess:
        (disk / "work").mkdir(exist_ok=True)
        agent = AgentProcess(server, "box", disk / "work", disk / "state", cpu_cores=2, simulate_gpus=None)
        agent.log_path = tmp_path / "box.stdout"
        agents.append(agent.start())
        wait_for(lambda: main_agent_record(client, "box")["status"] == "online", 20,
                 message="the agent to come online")
        return agent

    yield start
    for agent in agents:
        agent.kill()


def heartbeats_pass(client, count: int) -> None:
    """Wait until the agent has heartbeated `count` more times."""
    seen = []

    def beat_count() -> bool:
        stamp = main_agent_record(client, "box")["last_heartbeat_time"]
        if not seen or seen[-1] != stamp:
            seen.append(stamp)
        return len(seen) > count

    wait_for(beat_count, 20, message=f"{count} heartbeats of the agent")


@pytest.mark.timeout(120)
def test_full_disk_before_a_task_is_shown_the_task_waits_and_runs_once_space_returns(
        client, small_disk, agent_on):
    """The state and work dirs' tmpfs is filled to the last byte: the agent stays up and its JSON says
    "disk full on box: <dir>"; a task submitted now waits (several heartbeats, still waiting); once
    the filler is deleted the problem clears and the task completes with an exact log."""
    disk = small_disk("2m")
    agent = agent_on(disk)
    filler = fill_up(disk)
    problem = wait_for(lambda: main_agent_record(client, "box")["disk_problem"], 15,
                       message="the agent to report its full disk")
    assert problem.startswith("disk full on box: ") and str(disk) in problem, problem

    task = client.create_task(numbered_lines_script(20, 0.01), name="while-full")
    heartbeats_pass(client, 5)
    assert client.task(task["id"])["status"] == "waiting"
    assert agent.proc.poll() is None, "the main agent died on a full disk"

    filler.unlink()
    wait_for(lambda: main_agent_record(client, "box")["disk_problem"] is None, 15,
             message="the disk problem to clear")
    done = client.wait_status(task["id"], FINISHED, 30)
    assert done["status"] == "completed", done
    assert client.log(task["id"]) == expected_numbered_log(20)
    assert agent.proc.poll() is None


@pytest.mark.timeout(120)
def test_a_task_that_fills_the_disk_keeps_its_exit_code_and_all_its_output(client, small_disk, agent_on):
    """`head -c 10M /dev/zero > big; echo after` on a 2 MiB disk that also holds the spool: head's
    "No space left on device" and the "after" behind it both reach the server; the task ends as its
    script did (exit 0: echo was last); the agent survives, and once `big` is deleted a new task runs."""
    disk = small_disk("2m")
    agent = agent_on(disk)
    task = client.create_task("head -c 10M /dev/zero > big; echo after", name="fills-the-disk")
    done = client.wait_status(task["id"], FINISHED, 60)
    log = client.log(task["id"])
    assert b"No space left on device" in log and log.endswith(b"after\n"), log
    assert done["status"] == "completed" and done["exit_code"] == 0, done
    assert agent.proc.poll() is None

    (disk / "work" / "big").unlink()
    again = client.create_task(numbered_lines_script(10, 0.01), name="after-rm")
    assert client.wait_status(again["id"], FINISHED, 30)["status"] == "completed"
    assert client.log(again["id"]) == expected_numbered_log(10)


@pytest.mark.timeout(180)
def test_a_chatty_task_on_a_small_state_disk_completes_with_an_exact_log(client, server, small_disk, agent_on):
    """A task writes ~21 MB with the state dir (and its spool) on a 4 MiB tmpfs: it completes and the
    stored log is byte-identical (the spool drops what the server acknowledged, and what the disk
    cannot take waits in memory); the spool is gone afterwards."""
    disk = small_disk("4m")
    agent_on(disk)
    producer = "seq 1 3000000"
    expected = subprocess.run(["bash", "-c", producer], capture_output=True, check=True).stdout
    task = client.create_task(producer, name="chatty")
    done = client.wait_status(task["id"], FINISHED, 120)
    assert done["status"] == "completed", done
    raw = client.get(f"/api/tasks/{task['id']}/log/raw", timeout=60).content
    assert len(raw) == len(expected) and hashlib.sha256(raw).digest() == hashlib.sha256(expected).digest()
    wait_for(lambda: not any((disk / "state" / "spool").iterdir()), 10, message="the task's spool to go")


@pytest.mark.timeout(60)
def test_a_hand_over_the_full_disk_cannot_take_is_refused_with_the_reason(small_disk):
    """The race the server cannot see: a hand-over arrives while the state dir is full. The agent
    refuses it with "disk full on <agent>: <path>" (the server re-queues the task), says so in its
    next heartbeat, and a state file it cannot save costs it nothing."""
    disk = small_disk("1m")
    fill_up(disk)
    server = HandingOverServer()
    agent = MainAgent(MainAgentConfig(server_url="http://127.0.0.1:9", name="t", cpu_cores=1, work_dir=disk,
                                      state_dir=disk), ResourceUtil(parse_simulated_gpus("1x1024")), client=server)
    agent.register()  # its state file cannot be written: no crash
    agent.send_heartbeat()
    agent.start_assigned()
    agent.save_state()
    reason = agent.state.current.rejected[1]
    assert reason.startswith(f"disk full on t: {disk}/spool/") and reason.endswith("script.sh"), reason
    assert agent.subs.current == {}
    agent.disk.check()
    agent.send_heartbeat()
    assert server.heartbeats[-1].disk_problem.startswith("disk full on t: ")
    assert [(r.task_id, r.reason) for r in server.heartbeats[-1].rejected] == [(1, reason)]


class HandingOverServer:
    """A server that hands task 1 over in every reply (a ServerClient stand-in)."""

    def __init__(self) -> None:
        self.heartbeats: list[p.MainHeartbeat] = []

    def register_main(self, message: p.RegisterMain) -> p.RegisterMainReply:
        return p.RegisterMainReply(agent_id="agent-1", heartbeat_interval_s=0.1, sub_heartbeat_interval_s=0.1,
                                   server_id="server-1")

    def main_heartbeat(self, message: p.MainHeartbeat) -> p.MainHeartbeatReply:
        self.heartbeats.append(message)
        return p.MainHeartbeatReply(start=[p.TaskAssignment(task_id=1, name="t", script_content="true", cpu_cores=1)],
                                    next_interval_s=0.1, server_id="server-1")

    def close(self) -> None:
        pass
