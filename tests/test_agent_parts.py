"""Agent building blocks without a server process: ServerClient retry rules, the state file, core
pinning, how a lost sub-agent is described, finding a task's processes, and the fork of a sub-agent."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from agent import process_tree
from agent.server_client import ServerClient, ServerRejected, ServerUnavailable
from agent.state import AgentState, ServerMemory, TaskRecord
from agent.resource_util import ResourceUtil, parse_simulated_gpus
from agent.sub_agent import Handover, SubAgentConfig
from agent.sub_agent_process import (
    EXIT_CRASHED, CpuPool, ForkContractBroken, describe_sub_agent_exit, fork_sub_agent,
)
from task_common.protocol import PROTOCOL_VERSION, REGISTER_MAIN_PATH, RegisterMain, TaskAssignment
from tests.conftest import free_port
from tests.helpers import wait_for


class FakeServer:
    """Answers each POST with the next (status, body) from a script, recording what it received."""

    def __init__(self, answers):
        self.answers, self.received = list(answers), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
                status, answer = owner.answers.pop(0)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


REGISTER = RegisterMain(name="a", cpu_cores=2)
REPLY = {"agent_id": "abc", "heartbeat_interval_s": 2.0, "sub_heartbeat_interval_s": 1.0}


def test_client_retries_429_and_5xx_then_returns_the_parsed_reply():
    server = FakeServer([(503, {}), (429, {}), (500, {}), (200, REPLY)])
    try:
        reply = ServerClient(server.url, "secret", max_delay_s=0.05).register_main(REGISTER)
    finally:
        server.close()
    assert (reply.agent_id, reply.heartbeat_interval_s) == ("abc", 2.0)
    assert len(server.received) == 4
    path, auth, body = server.received[-1]
    assert (path, auth, body["name"], body["protocol_version"]) == (REGISTER_MAIN_PATH, "Bearer secret", "a", PROTOCOL_VERSION)


@pytest.mark.parametrize("status, code", [(400, "invalid"), (401, "unauthorized"), (404, "agent_not_found"),
                                          (409, "task_already_started")])
def test_client_does_not_retry_a_considered_4xx(status, code):
    server = FakeServer([(status, {"error": {"code": code, "message": "no."}})])
    try:
        with pytest.raises(ServerRejected) as caught:
            ServerClient(server.url, max_delay_s=0.05).register_main(REGISTER)
    finally:
        server.close()
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, "no.")
    assert len(server.received) == 1


def test_client_gives_up_after_its_retry_window_when_nobody_listens():
    client = ServerClient(f"http://127.0.0.1:{free_port()}", max_delay_s=0.1, retry_for_s=0.5)
    with pytest.raises(ServerUnavailable):
        client.register_main(REGISTER)


def test_client_backoff_is_capped_and_jittered():
    client = ServerClient("http://127.0.0.1:1", max_delay_s=2.0)
    delays = [client._backoff_delay(attempt) for attempt in range(1, 30)]
    assert all(0 < d <= 2.0 for d in delays) and max(delays) > 1.0
    assert client._backoff_delay(1) <= 0.2


def test_state_file_round_trips_and_a_missing_or_broken_one_is_empty(tmp_path):
    assert AgentState.load(tmp_path) == AgentState()
    state = AgentState(server_id="s1", current=ServerMemory(agent_id="abc", tasks={7: TaskRecord(
        task_id=7, sub_agent_id="sub-7-x", pid=42, create_time=1.5, cpu_cores=2, cpu_ids=[0, 1])}))
    state.save(tmp_path)
    assert AgentState.load(tmp_path) == state
    (tmp_path / "state.json").write_text("{not json")
    assert AgentState.load(tmp_path) == AgentState()


def test_cpu_pool_pins_only_when_enough_distinct_cores_are_free():
    pool = CpuPool([0, 1, 2])
    assert pool.allocate(2) == [0, 1]
    assert pool.allocate(2) == []  # one core left: run unpinned rather than share
    assert pool.allocate(0) == []
    pool.release([0, 1])
    pool.claim([1])
    assert pool.allocate(3) == [] and pool.allocate(2) == [0, 2]


@pytest.mark.parametrize("returncode, reason", [
    (-9, "sub-agent exited unexpectedly (killed by SIGKILL)"),
    (1, "sub-agent exited unexpectedly (exit code 1)"),
    (4, "sub-agent could not start bash for the task (see the sub-agent log)"),
    (None, "sub-agent exited unexpectedly while its main agent was restarting (exit status unknown)"),
])
def test_a_lost_sub_agent_is_described_for_people(returncode, reason):
    assert describe_sub_agent_exit(returncode) == reason


def test_task_processes_are_found_by_group_and_by_marker_after_they_left_it():
    marker = "sub-test-marker"
    in_group = subprocess.Popen(["sleep", "30"], start_new_session=True)
    escaped = subprocess.Popen(["sleep", "30"], start_new_session=True,
                               env={"PATH": "/usr/bin:/bin", process_tree.MARKER_ENV: marker})
    try:
        found = {p.pid for p in process_tree.find_task_processes(pgid=in_group.pid, marker=marker)}
        assert {in_group.pid, escaped.pid} <= found
        process_tree.signal_processes([psutil.Process(in_group.pid), psutil.Process(escaped.pid)], 9)
        wait_for(lambda: in_group.poll() is not None and escaped.poll() is not None, 5)
        assert not process_tree.find_task_processes(pgid=in_group.pid, marker=marker)
    finally:
        in_group.kill()
        escaped.kill()


def test_a_forked_sub_agent_that_fails_exits_and_never_returns_into_the_caller(tmp_path):
    """If the child's start-up raises, it must leave with EXIT_CRASHED, not continue as the parent."""
    def broken_forget_parent():
        raise RuntimeError("boom")

    config = SubAgentConfig(server_url="http://127.0.0.1:9", state_dir=tmp_path, work_dir=tmp_path)
    handover = Handover(sub_agent_id="sub-1-x", main_agent_id="m",
                        task=TaskAssignment(task_id=1, name="t", script_content="true", cpu_cores=0))
    pid = fork_sub_agent(config, handover, ResourceUtil(parse_simulated_gpus("1x1")), broken_forget_parent)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == EXIT_CRASHED


def fork_contract_case(tmp_path) -> tuple[SubAgentConfig, Handover]:
    config = SubAgentConfig(server_url="http://127.0.0.1:9", state_dir=tmp_path, work_dir=tmp_path)
    return config, Handover(sub_agent_id="sub-1-x", main_agent_id="m",
                            task=TaskAssignment(task_id=1, name="t", script_content="true", cpu_cores=0))


def test_no_sub_agent_is_forked_while_the_main_agent_runs_a_second_thread(tmp_path):
    """The fork contract (fork_sub_agent's docstring): a lock another thread holds would stay held in the child."""
    release = threading.Event()
    other = threading.Thread(target=release.wait, name="not-allowed", daemon=True)
    other.start()
    try:
        with pytest.raises(ForkContractBroken, match="2 threads.*not-allowed"):
            fork_sub_agent(*fork_contract_case(tmp_path), ResourceUtil(parse_simulated_gpus("1x1")), lambda: None)
    finally:
        release.set()
        other.join()


def test_a_forked_sub_agent_that_still_holds_nvml_handles_exits_before_it_runs_anything(tmp_path, monkeypatch,
                                                                                        capfd):
    resources = ResourceUtil(parse_simulated_gpus("1x1"))
    monkeypatch.setattr(resources, "after_fork", lambda: None)  # as if after_fork forgot to drop them
    resources._nvml_handles = ["a handle of the parent's"]
    pid = fork_sub_agent(*fork_contract_case(tmp_path), resources, lambda: None)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == EXIT_CRASHED
    assert "ForkContractBroken: a forked sub-agent holds NVML handles" in capfd.readouterr().err
