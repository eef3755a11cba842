"""Fixtures chained as data_dir -> server (a real `python app.py`) -> client -> main_agent.

Everything runs for real: the server as a subprocess on a free loopback port, agents as
`setup_master_agent.py` subprocesses with simulated GPUs, tasks as bash. Intervals are shrunk via
TASK_SYSTEM_* environment variables so the suite stays fast. With TASK_SYSTEM_TEST_DATABASE=postgresql
every server and app gets a fresh PostgreSQL database instead of SQLite (tests/pg.py); tests marked
sqlite_only are skipped then.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests import pg
from tests.helpers import Api, wait_for

ROOT = Path(__file__).resolve().parent.parent

FAST_SERVER_ENV = {
    "TASK_SYSTEM_MAIN_HEARTBEAT_INTERVAL_S": "0.2",
    "TASK_SYSTEM_SUB_HEARTBEAT_INTERVAL_S": "0.2",
    "TASK_SYSTEM_AGENT_OFFLINE_AFTER_S": "1.5",
    "TASK_SYSTEM_SUB_AGENT_LEASE_S": "2.0",
    "TASK_SYSTEM_LIVENESS_CHECK_INTERVAL_S": "0.2",
    "TASK_SYSTEM_LONG_POLL_MAX_S": "0.2",
    "TASK_SYSTEM_RESTART_GRACE_S": "2.0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real `python app.py` on a free port (or `port`, e.g. a killed server's, so its agents find
    this one); can be killed and restarted on the same data dir."""

    def __init__(self, data_dir: Path, env: dict | None = None, token: str | None = None,
                 port: int | None = None):
        self.data_dir, self.port, self.token = data_dir, port or free_port(), token
        self.env = {**os.environ, **FAST_SERVER_ENV, **pg.server_env(data_dir), **(env or {})}
        if token:
            self.env["TASK_SYSTEM_TOKEN"] = token
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        out = open(self.data_dir / "server.stdout", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: kill() takes the gunicorn worker too
        wait_for(self.is_healthy, 20, message=f"server on {self.url} to answer /api/health")
        return self

    def is_healthy(self) -> bool:
        assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
        try:
            return requests.get(self.url + "/api/health", timeout=1).status_code in (200, 401)
        except requests.ConnectionError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server (SIGKILL: the whole process group, as a crash would) and wait until it is
        gone; a gunicorn worker orphaned by a killed master would otherwise keep answering on the port."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                _killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
            self.proc.wait(15)
        _killpg(self.proc.pid, signal.SIGKILL)  # whatever of the group outlived its master
        wait_for(lambda: not _group_alive(self.proc.pid), 15, message=f"server process group {self.proc.pid} to exit")

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return False


class AgentProcess:
    """A real main agent: `setup_master_agent.py` with simulated GPUs by default."""

    def __init__(self, server: ServerProcess, name: str, work_dir: Path, state_dir: Path,
                 cpu_cores: int = 4, simulate_gpus: str | None = "2x81920", extra: list[str] | None = None):
        self.server, self.name = server, name
        self.args = [sys.executable, "setup_master_agent.py", "--server", server.url, "--name", name,
                     "--cpu-cores", str(cpu_cores), "--work-dir", str(work_dir),
                     "--state-dir", str(state_dir), *(extra or [])]
        if simulate_gpus:
            self.args += ["--simulate-gpus", simulate_gpus]
        self.log_path = state_dir / f"{name}.stdout"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "AgentProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **({"TASK_SYSTEM_TOKEN": self.server.token} if self.server.token else {})}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@pytest.fixture(scope="session", autouse=True)
def database_cluster():
    """A PostgreSQL cluster for the session when TASK_SYSTEM_TEST_DATABASE=postgresql, else None."""
    yield from pg.session()


def pytest_runtest_setup(item) -> None:
    if pg.enabled() and item.get_closest_marker("sqlite_only"):
        pytest.skip("SQLite only (TASK_SYSTEM_TEST_DATABASE=postgresql)")


def running_server(tmp_path_factory, name: str, **kw):
    """A real server on a data dir of its own, for a module-scoped fixture: `yield from running_server(...)`."""
    proc = ServerProcess(tmp_path_factory.mktemp(name), **kw).start()
    yield proc
    proc.kill()


def running_agent(server: "ServerProcess", tmp_path_factory, name: str, **kw):
    """A real main agent, online, for a module-scoped fixture (`yield from`); stopped, and whatever it ran
    killed, afterwards."""
    root = tmp_path_factory.mktemp(name)
    (root / "work").mkdir()
    proc = AgentProcess(server, name, root / "work", root / "state", **kw).start()
    api = Api(server.url, server.token)
    wait_for(lambda: any(a["name"] == name and a["status"] == "online" for a in api.get("/api/agents").json()),
             30, message=f"the main agent {name} to come online")
    yield proc
    proc.kill(signal.SIGTERM)
    proc.kill(signal.SIGKILL)
    _kill_leftover_task_processes(root)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def app(tmp_path: Path):
    """An in-process app (no server, no background liveness thread) for fast API and service tests."""
    from backend.factory import create_app

    application = create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "app-data"), "RUN_BACKGROUND_JOBS": False})
    yield application
    from backend.extensions import db

    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def server(data_dir: Path):
    proc = ServerProcess(data_dir).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """One real server for the whole session, for tests that need no fresh database: each uses its own
    agents, and shared_client cancels what it left unfinished. Its lease is long, so a test's fake
    sub-agent is never declared lost on a busy box (test_liveness.py brings its own fast server)."""
    proc = ServerProcess(tmp_path_factory.mktemp("shared-data"), env={
        "TASK_SYSTEM_SUB_AGENT_LEASE_S": "60", "TASK_SYSTEM_AGENT_OFFLINE_AFTER_S": "60"}).start()
    yield proc
    proc.kill()


@pytest.fixture
def shared_client(shared_server: ServerProcess):
    """A client of the session's shared server. Every task left unfinished is canceled afterwards, so
    no waiting task leaks to the next test's agents."""
    api = Api(shared_server.url, shared_server.token)
    yield api
    for _ in range(50):
        page = api.get("/api/tasks", params={"status": "blocked,waiting,running", "page_size": 200}).json()
        if not page["items"]:
            break
        for task in page["items"]:
            api.post(f"/api/tasks/{task['id']}/cancel")


@pytest.fixture
def client(server: ServerProcess) -> Api:
    return Api(server.url, server.token)


@pytest.fixture
def start_agent(server: ServerProcess, tmp_path: Path):
    """Factory: start_agent(name=..., cpu_cores=..., simulate_gpus=...) -> AgentProcess (cleaned up after)."""
    agents: list[AgentProcess] = []

    def start(name: str = "agent-1", **kw) -> AgentProcess:
        work_dir = tmp_path / "work" / name
        work_dir.mkdir(parents=True, exist_ok=True)
        agent = AgentProcess(server, name, work_dir, tmp_path / "agent-state" / name, **kw).start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.kill(signal.SIGTERM)  # first signal: stop; tasks left running are killed below
    for agent in agents:
        agent.kill(signal.SIGKILL)
    _kill_leftover_task_processes(tmp_path)


@pytest.fixture
def main_agent(start_agent, client: Api) -> AgentProcess:
    agent = start_agent()
    wait_for(lambda: any(a["status"] == "online" for a in client.get("/api/agents").json()), 20,
             message="the main agent to come online")
    return agent


def _kill_leftover_task_processes(tmp_path: Path) -> None:
    """Kill any process still running from this test's work dirs, so tests never leak processes."""
    import psutil

    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            # cwd: task processes; cmdline: agents and the sub-agents forked from them (--state-dir)
            mine = str(tmp_path) in (proc.info["cwd"] or "") or str(tmp_path) in " ".join(proc.info["cmdline"] or [])
            if mine and proc.pid != os.getpid():
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
