"""A server's identity (one per database) and the agents' memory per identity: a reset server, or
another one on the same URL, never mixes with what an agent ran before; a refused hand-over ends.

For real: servers are `python app.py`, agents `setup_master_agent.py`, tasks bash; one in-process
main agent meets a fake server that behaves as older servers did (resending a refused hand-over).
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest

from agent.main_agent import MainAgent, MainAgentConfig
from agent.resource_util import ResourceUtil, parse_simulated_gpus
from agent.state import AgentState
from backend.services.heartbeats import MAX_HANDOVER_REFUSALS
from task_common import protocol as p
from tests.conftest import AgentProcess, ServerProcess
from tests.helpers import Api, wait_for
from tests.protocol_agent import ProtocolAgent, Transport

# A main agent beats every 0.2 s here (tests/conftest.py FAST_SERVER_ENV), long-polling 0.2 s while
# it has room: a handful of heartbeats a second. The bug this guards against made ~100 (2 cores).
MAX_SANE_HEARTBEATS_PER_S = 25


@pytest.fixture
def new_server(tmp_path: Path):
    """Factory: new_server(port=...) -> a started server on an empty data dir (killed afterwards)."""
    servers: list[ServerProcess] = []

    def start(port: int | None = None) -> ServerProcess:
        data = tmp_path / f"data-{len(servers) + 2}"
        data.mkdir()
        servers.append(ServerProcess(data, port=port).start())
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


def server_id_of(api: Api) -> str:
    return api.get("/api/health").json()["server_id"]


def read_state(state_dir: Path) -> dict:
    return json.loads((state_dir / "state.json").read_text())


def agent_log_events(state_dir: Path, event: str) -> list[dict]:
    """Every `event` the main agent logged (its JSON log and the rotated ones)."""
    return [json.loads(line) for path in sorted((state_dir / "logs").glob("main-agent.log*"))
            for line in path.read_text().splitlines() if f'"event": "{event}"' in line]


def run_tasks(api: Api, word: str, count: int = 3) -> list[dict]:
    """`count` one-line tasks, each completed with exactly its own output."""
    tasks = [api.create_task(f"echo {word} {i}", name=f"{word}-{i}") for i in range(count)]
    for i, task in enumerate(tasks):
        done = api.wait_status(task["id"], {"completed", "failed"}, timeout_s=20)
        assert done["status"] == "completed", done["status_reason"]
        assert api.log(task["id"]) == f"{word} {i}\n".encode()
    return tasks


def is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_running_agent_runs_the_tasks_of_a_new_empty_server_on_the_same_url(server, start_agent, client,
                                                                            new_server, tmp_path):
    state_dir, pid_file = tmp_path / "agent-state" / "survivor", tmp_path / "old-task.pid"
    agent = start_agent(name="survivor", extra=["--log-level", "DEBUG"])
    old = run_tasks(client, "old")
    running = client.create_task(f"echo $$ > {pid_file}; exec sleep 60", name="old-running")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 20, message="the old task to start")
    old_server_id = server_id_of(client)
    server.kill()
    api = Api(new_server(port=server.port).url)
    beats_before, started = len(agent_log_events(state_dir, "main_heartbeat_sent")), time.monotonic()

    new = run_tasks(api, "new", count=4)

    assert [t["id"] for t in new] == [t["id"] for t in old] + [running["id"]]  # ids the agent ran before
    beats = wait_for(lambda: (n := len(agent_log_events(state_dir, "main_heartbeat_sent")) - beats_before) >= 10
                     and n, 10, message="ten heartbeats to the new server")
    assert beats / (time.monotonic() - started) < MAX_SANE_HEARTBEATS_PER_S, f"{beats} heartbeats"
    [changed] = agent_log_events(state_dir, "server_identity_changed")
    assert (changed["old"], changed["new"]) == (old_server_id, server_id_of(api))
    # The old server's task: its sub-agent, refused by the new server, stopped it and left.
    wait_for(lambda: not is_alive(int(pid_file.read_text())), 10, message="the old server's task to be stopped")
    wait_for(lambda: any(e.get("other_server_id") == old_server_id and e["task_id"] == running["id"]
                         for e in agent_log_events(state_dir, "sub_agent_exited")), 10,
             message="the old task's sub-agent to exit")
    assert agent.proc.poll() is None
    [main] = api.get("/api/agents").json()
    assert (main["name"], main["status"]) == ("survivor", "online")


def test_agent_restarted_with_an_old_state_dir_runs_the_tasks_of_a_reset_server(server, start_agent, client,
                                                                              new_server, tmp_path):
    agent = start_agent(name="returning")
    run_tasks(client, "old")
    [old_main], old_server_id = client.get("/api/agents").json(), server_id_of(client)
    agent.stop()
    server.kill()
    api = Api(new_server(port=server.port).url)
    agent.start()

    run_tasks(api, "new")

    [main] = api.get("/api/agents").json()
    assert main["id"] != old_main["id"]  # the id the old server gave means nothing to this one
    state = read_state(tmp_path / "agent-state" / "returning")
    assert (state["server_id"], state["agent_id"]) == (server_id_of(api), main["id"])
    assert state["other_servers"][old_server_id]["agent_id"] == old_main["id"]  # kept apart, not mixed in


def test_agent_moved_to_another_server_offers_only_what_the_old_servers_task_leaves(server, start_agent, client,
                                                                                   new_server, tmp_path):
    release = tmp_path / "release"
    agent = start_agent(name="mover", cpu_cores=2)
    old = client.create_task(f"echo old start; while [ ! -e {release} ]; do sleep 0.05; done; echo old end",
                             cpu_cores=1, gpu_count=1)
    wait_for(lambda: client.log(old["id"]) == b"old start\n", 20, message="the old task to start")
    agent.stop()  # the first signal leaves the task running
    other = new_server()
    api = Api(other.url)
    moved = AgentProcess(other, "mover", tmp_path / "work" / "mover", tmp_path / "agent-state" / "mover",
                         cpu_cores=2).start()
    try:
        first = api.create_task("echo new first", cpu_cores=1)
        assert first["id"] == old["id"]
        api.wait_status(first["id"], "completed")
        assert api.log(first["id"]) == b"new first\n"
        [main] = api.get("/api/agents").json()
        assert (main["cpu_cores"], [g["index"] for g in main["gpu_info"]]) == (1, [1])  # core and GPU 0 held
        wide = api.create_task("echo new wide", cpu_cores=2)
        release.touch()
        done = client.wait_status(old["id"], {"completed", "failed"})  # its sub-agent still reports to the old server
        assert done["status"] == "completed", done["status_reason"]
        assert client.log(old["id"]) == b"old start\nold end\n"
        api.wait_status(wide["id"], "completed")  # both cores offered again
    finally:
        moved.kill(signal.SIGKILL)


def test_an_agent_with_a_state_file_from_before_server_ids_keeps_its_running_task(server, start_agent, client,
                                                                                tmp_path):
    state_dir, release = tmp_path / "agent-state" / "upgraded", tmp_path / "release"
    agent = start_agent(name="upgraded")
    task = client.create_task(f"echo before; while [ ! -e {release} ]; do sleep 0.05; done; echo after")
    wait_for(lambda: client.log(task["id"]) == b"before\n", 20, message="the task to start")
    agent.stop()
    state = read_state(state_dir)
    state_dir.joinpath("state.json").write_text(json.dumps({"agent_id": state["agent_id"], "tasks": state["tasks"]}))
    agent.start()
    wait_for(lambda: read_state(state_dir).get("server_id") == server_id_of(client), 20,
             message="the server to adopt the agent's memory")
    release.touch()
    done = client.wait_status(task["id"], {"completed", "failed"})
    assert done["status"] == "completed", done["status_reason"]
    assert client.log(task["id"]) == b"before\nafter\n"
    assert [a["id"] for a in client.get("/api/agents").json()] == [state["agent_id"]]


def test_server_identity_survives_a_restart_and_differs_for_another_database(server, client, new_server):
    first = server_id_of(client)
    agent = ProtocolAgent(server.url).register()
    assert agent.register_reply.server_id == first and agent.heartbeat().server_id == first
    server.kill()
    server.start()
    assert server_id_of(client) == first
    assert server_id_of(Api(new_server().url)) not in (first, None)


@pytest.mark.parametrize("claimed_server, is_kept", [(None, True), ("this", True), ("another-server", False)])
def test_registration_keeps_an_agent_id_given_by_this_server_or_by_none_known(shared_server, shared_client,
                                                                          claimed_server, is_kept):
    this = server_id_of(shared_client)
    agent_id = f"box-{claimed_server}-{time.monotonic_ns()}"
    reply = Transport(shared_server.url).call(p.REGISTER_MAIN_PATH, p.RegisterMain(
        agent_id=agent_id, server_id=this if claimed_server == "this" else claimed_server, name="box",
        cpu_cores=1), p.RegisterMainReply)
    assert reply.server_id == this
    assert (reply.agent_id == agent_id) is is_kept


def test_a_hand_over_refused_again_and_again_fails_the_task_with_the_reason(server, client):
    agent = ProtocolAgent(server.url, cpu_cores=2).register()
    task = client.create_task("echo never")
    handovers, refusing = 0, []
    for beat in range(4 * MAX_HANDOVER_REFUSALS):
        reply = agent.heartbeat(rejected=refusing)
        if beat == 1:
            requeued = client.task(task["id"])
            assert (requeued["status"], requeued["status_reason"]) == (
                "waiting", f"agent {agent.agent_id} did not start it: work dir missing")
        refusing = [(a.task_id, "work dir missing") for a in reply.start]
        handovers += len(reply.start)
    assert handovers == MAX_HANDOVER_REFUSALS
    failed = client.task(task["id"])
    assert (failed["status"], failed["status_reason"]) == ("failed", f"refused by agent {agent.agent_id}: work dir missing")


def test_an_agent_refuses_a_task_id_it_already_ran_for_this_server_and_the_task_fails(server, client, start_agent,
                                                                                    tmp_path):
    state_dir = tmp_path / "agent-state" / "stubborn"
    state_dir.mkdir(parents=True)
    state_dir.joinpath("state.json").write_text(json.dumps(
        {"server_id": server_id_of(client), "agent_id": None, "tasks": {}, "finished_ids": [1]}))
    task = client.create_task("echo twice?")
    assert task["id"] == 1
    start_agent(name="stubborn")

    failed = client.wait_status(task["id"], {"completed", "failed"})

    [main] = client.get("/api/agents").json()
    assert (failed["status"], failed["status_reason"]) == ("failed", f"refused by agent {main['id']}: already ran here")
    assert client.log(task["id"]) == b""
    assert len(agent_log_events(state_dir, "task_handover_refused")) == MAX_HANDOVER_REFUSALS
    run_tasks(client, "next", count=1)  # any other task runs as usual


class ResendingServer:
    """A ServerClient stand-in that answers as servers before refusal counting did: the same hand-over
    on every heartbeat, whatever the agent reported."""

    def __init__(self):
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


def test_agent_reports_each_refusal_and_never_hurries_for_a_hand_over_it_refuses(tmp_path):
    state = AgentState(server_id="server-1")
    state.current.add_finished(1)
    state.save(tmp_path)
    server = ResendingServer()
    agent = MainAgent(MainAgentConfig(server_url="http://127.0.0.1:9", name="t", cpu_cores=1, work_dir=tmp_path,
                                      state_dir=tmp_path), ResourceUtil(parse_simulated_gpus("1x1024")), client=server)
    agent.register()
    started = time.monotonic()
    for _ in range(5):
        agent.send_heartbeat()
        agent.start_assigned()
        agent.sleep_until_next_tick()
    assert time.monotonic() - started >= 5 * 0.1  # an interval per tick, not a request storm
    assert [[(r.task_id, r.reason) for r in m.rejected] for m in server.heartbeats] == \
        [[]] + [[(1, "already ran here")]] * 4
    assert agent.subs.current == {} and agent.state.current.tasks == {}
