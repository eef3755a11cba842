"""What every scenario needs: a real server and real main agents on 127.0.0.1, a small REST client,
percentiles, and the Figure a scenario reports (CPU/RSS sampling: bench/sampling.py).

The server and agents run with the real default intervals (2 s main heartbeat with long poll, 1 s
sub-agent heartbeat): no TASK_SYSTEM_* knobs are shrunk here, unlike the tests.
"""
from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import psutil
import requests

from tests.helpers import wait_for  # one deadline-bound wait for tests and benchmarks (raises AssertionError)

ROOT = Path(__file__).resolve().parent.parent
LOCALHOST = "127.0.0.1"
STOP_WAIT_S = 1.0  # then SIGKILL: the bench data is thrown away (SQLite survives a kill)


# ---------------------------------------------------------------- figures and statistics

@dataclass
class Figure:
    """One measured number, with its target (op "<=" or ">=" against limit; no limit: informational)."""

    scenario: str
    name: str
    value: Optional[float]
    unit: str
    op: Optional[str] = None
    limit: Optional[float] = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.limit is None or self.op is None:
            return "info"
        if self.value is None or math.isnan(self.value):
            return "miss"
        ok = self.value <= self.limit if self.op == "<=" else self.value >= self.limit
        return "pass" if ok else "miss"

    @property
    def target(self) -> str:
        return "" if self.limit is None else f"{self.op} {fmt_value(self.limit)} {self.unit}".strip()

    def to_dict(self) -> dict:
        return {**asdict(self), "target": self.target, "verdict": self.verdict}


def fmt_value(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- REST client

class Api:
    """A thin JSON client for the REST contract (the load generator's agents use the protocol module)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=kw.pop("timeout", 30), **kw)

    def create_task(self, script: str, name: str = "bench", **fields) -> dict:
        body = {"name": name, "template_type": "bench", "script_content": script, **fields}
        resp = self.post("/api/tasks", json=body)
        if resp.status_code != 201:
            raise RuntimeError(f"POST /api/tasks answered {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    def task(self, task_id: int) -> dict:
        resp = self.get(f"/api/tasks/{task_id}")
        resp.raise_for_status()
        return resp.json()

    def count(self, status: str) -> int:
        return self.get("/api/tasks", params={"status": status, "page_size": 1}).json()["total"]

    def agents(self) -> list[dict]:
        return self.get("/api/agents").json()

    def close(self) -> None:
        self.session.close()


# ---------------------------------------------------------------- processes

class Server:
    """A real `python app.py` (gunicorn master + one gevent worker) on a free loopback port."""

    def __init__(self, data_dir: Path, env: Optional[dict[str, str]] = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TASK_SYSTEM_")}
        self.env.update(env or {})
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.data_dir / "server.stdout", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", LOCALHOST, "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        wait_for(self._is_healthy, 30, message=f"server on {self.url}")
        return self

    def _is_healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.data_dir}/server.stdout")
        try:
            return requests.get(self.url + "/api/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    @property
    def db_path(self) -> Path:
        return self.data_dir / "database" / "task_system.db"

    def worker(self) -> psutil.Process:
        """The gunicorn worker: the process that serves every request."""
        children = psutil.Process(self.proc.pid).children()
        return children[0] if children else psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT_S)  # held long polls would keep a graceful stop waiting
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.proc.pid)
        self.proc.wait()
        self.proc = None


class MainAgent:
    """A real main agent: `python setup_master_agent.py` with the default cadence."""

    def __init__(self, server: Server, root: Path, name: str = "bench-agent", cpu_cores: int = 4,
                 extra: Optional[list[str]] = None):
        self.server, self.name = server, name
        self.work_dir, self.state_dir = root / "work" / name, root / "state" / name
        self.args = [sys.executable, "setup_master_agent.py", "--server", server.url, "--name", name,
                     "--cpu-cores", str(cpu_cores), "--work-dir", str(self.work_dir),
                     "--state-dir", str(self.state_dir), *(extra or [])]
        self.proc: Optional[subprocess.Popen] = None
        self.agent_id: Optional[str] = None

    def start(self, api: Api, timeout_s: float = 30) -> "MainAgent":
        for path in (self.work_dir, self.state_dir):
            path.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASK_SYSTEM_")}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.state_dir / "agent.stdout", "ab"),
                                     stderr=subprocess.STDOUT)
        agent = wait_for(lambda: self._check_alive() and next(
            (a for a in api.agents() if a["name"] == self.name and a["status"] == "online"), None),
            timeout_s, interval_s=0.1, message=f"main agent {self.name} to come online")
        self.agent_id = agent["id"]
        return self

    def _check_alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"main agent exited with {self.proc.returncode}; see {self.state_dir}/agent.stdout")
        return True

    def tree(self) -> list[psutil.Process]:
        """The main agent and every process under it (running sub-agents and their tasks)."""
        try:
            me = psutil.Process(self.proc.pid)
            return [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sub_agents(self) -> list[psutil.Process]:
        """Sub-agent processes: the main agent's direct children (forks of it, each in its own
        session; the tasks' processes are the sub-agents' children)."""
        try:
            return psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Two signals (stop, then kill running tasks), then whatever is left under the work dir."""
        if not self.proc:
            return
        leftovers = self.tree()[1:]
        for _ in range(2):  # the second signal kills running tasks too
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for proc in leftovers:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc = None


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def load_average() -> float:
    return os.getloadavg()[0]


# ---------------------------------------------------------------- one run's context

@dataclass
class Context:
    """What a scenario gets: the size to run at, a scratch folder, and a place for extra details."""

    quick: bool
    root: Path
    details: dict = field(default_factory=dict)

    def scratch(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def size(self, full, quick):
        return quick if self.quick else full

    def log(self, message: str) -> None:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "affinity_cpus": len(os.sched_getaffinity(0)), "cpu_model": model,
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": sys.version.split()[0], "platform": sys.platform,
            "loadavg": os.getloadavg()}


class Stack:
    """A server and one real main agent, started together and stopped together (`with Stack(...)`)."""

    def __init__(self, ctx: Context, cpu_cores: int = 4, server_env: Optional[dict[str, str]] = None):
        self.ctx, self.cpu_cores, self.server_env = ctx, cpu_cores, server_env
        self.server: Optional[Server] = None
        self.agent: Optional[MainAgent] = None
        self.api: Optional[Api] = None

    def __enter__(self) -> "Stack":
        self.server = Server(self.ctx.scratch("data"), self.server_env).start()
        self.api = Api(self.server.url)
        try:
            self.agent = MainAgent(self.server, self.ctx.root, cpu_cores=self.cpu_cores).start(self.api)
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.agent:
            self.agent.stop()
        if self.server:
            self.server.stop()

    def wait_finished(self, task_id: int, timeout_s: float) -> dict:
        return wait_for(lambda: (t := self.api.task(task_id))["status"] in ("completed", "failed", "canceled") and t,
                        timeout_s, interval_s=0.05, message=f"task {task_id} to finish")

    def all_tasks(self) -> list[dict]:
        items, page = [], 1
        while True:
            body = self.api.get("/api/tasks", params={"page": page, "page_size": 200}).json()
            items += body["items"]
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1


def parse_time(iso: Optional[str]) -> Optional[float]:
    """An API time (ISO 8601 with offset) as a Unix timestamp."""
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp() if iso else None


def read_stamp(path: Path) -> float:
    """A timestamp a task script wrote with `echo $EPOCHREALTIME > file` (bash 5: no fork)."""
    return float(path.read_text().strip().replace(",", "."))
