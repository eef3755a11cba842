"""Simulated agents for the load scenarios: they speak the real protocol (task_common/protocol.py
message classes) over HTTP/1.1, to 127.0.0.1 only, each with its own keep-alive connection like a
real agent. No task runs: a simulated sub-agent reports usage and a line of output per beat.

The transport is the standard library's http.client, not requests (which the real agents use): the
requests are the same JSON POSTs on kept-alive connections, but requests costs ~1 ms of client CPU
per call, and 320 simulated agents share this 2-core box with the server they measure, where real
agents would sit on 20 other machines. A lean generator leaves the server the CPU it would have.

FleetRunner drives many of them from a small, bounded pool of threads: each thread owns a share of
the agents and sends each one's heartbeat when due (fixed cadence, phases spread over the period),
recording the round-trip latency and how late the send was (the generator's own lag).
"""
from __future__ import annotations

import heapq
import http.client
import json
import multiprocessing
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlencode, urlsplit

from task_common import protocol as p

SIM_GPUS = [p.GpuInfo(index=i, name="Simulated H100", uuid=f"GPU-sim-{i}", memory_total=81920, simulated=True)
            for i in range(8)]


class ProtocolError(RuntimeError):
    pass


class Connection:
    """One kept-alive HTTP/1.1 connection to the server (reopened after an error), like an agent's session."""

    def __init__(self, server_url: str, timeout: float = 30):
        parts = urlsplit(server_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self._conn: Optional[http.client.HTTPConnection] = None

    def post(self, path: str, message: p.Message, reply_type):
        """A protocol message; its reply parsed (ProtocolError unless 200)."""
        return reply_type.from_dict(self.post_json(path, message.to_dict()))

    def post_json(self, path: str, body: dict, expect: int = 200) -> dict:
        return self.post_bytes(path, json.dumps(body).encode(), "application/json", expect)

    def post_bytes(self, path: str, body: bytes, content_type: str, expect: int = 200) -> dict:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request("POST", path, body, {"Content-Type": content_type})
            resp = self._conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.status != expect:
            raise ProtocolError(f"{path} answered {resp.status}: {data[:200]!r}")
        return json.loads(data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class SimMain:
    server_url: str
    name: str
    cpu_cores: int
    conn: Optional[Connection] = None
    agent_id: str = ""
    task_ids: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.conn = Connection(self.server_url)

    def register(self) -> None:
        reply = self.conn.post(p.REGISTER_MAIN_PATH,
                               p.RegisterMain(name=self.name, hostname="bench-sim", cpu_cores=self.cpu_cores,
                                              memory_total_mib=512_000, gpus=SIM_GPUS), p.RegisterMainReply)
        self.agent_id = reply.agent_id

    def heartbeat(self, wait_s: float = 0.0) -> p.MainHeartbeatReply:
        msg = p.MainHeartbeat(agent_id=self.agent_id, cpu_cores=self.cpu_cores,
                              cpu_usage=random.uniform(10, 90), memory_usage=40.0, memory_used_mib=200_000,
                              memory_total_mib=512_000, gpus=SIM_GPUS, running_task_ids=self.task_ids,
                              wait_s=wait_s)
        return self.conn.post(p.MAIN_HEARTBEAT_PATH, msg, p.MainHeartbeatReply)

    def beat(self) -> None:
        self.heartbeat()


@dataclass
class SimSub:
    server_url: str
    main: SimMain
    task_id: int
    conn: Optional[Connection] = None
    sub_agent_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    log_size: int = 0
    beats: int = 0

    def __post_init__(self):
        self.conn = Connection(self.server_url)

    def register(self) -> p.RegisterSubReply:
        reply = self.conn.post(p.REGISTER_SUB_PATH,
                               p.RegisterSub(sub_agent_id=self.sub_agent_id, main_agent_id=self.main.agent_id,
                                             task_id=self.task_id, pid=0, hostname="bench-sim"), p.RegisterSubReply)
        self.log_size = reply.log_size
        return reply

    def heartbeat(self, output: bytes = b"", returncode: Optional[int] = None) -> p.SubHeartbeatReply:
        """Usage in the query, output as the raw body, as a real sub-agent beats (agent/sub_agent_beats.py)."""
        final = self.log_size + len(output) if returncode is not None else None
        msg = p.SubHeartbeat(sub_agent_id=self.sub_agent_id, task_id=self.task_id, offset=self.log_size,
                             cpu_usage=random.uniform(50, 100), memory_used_mib=2048, memory_usage=0.4,
                             returncode=returncode, final_size=final)
        query = urlencode({k: v for k, v in msg.to_dict().items() if v is not None}, doseq=True)
        reply = p.SubHeartbeatReply.from_dict(
            self.conn.post_bytes(f"{p.SUB_HEARTBEAT_PATH}?{query}", output, p.OUTPUT_CONTENT_TYPE))
        self.log_size = reply.log_size
        return reply

    def beat(self) -> None:
        self.beats += 1
        line = f"step {self.beats} loss={random.uniform(1, 3):.4f} lr=3e-4 tokens/s={random.randint(1000, 9000)}\n"
        self.heartbeat(line.encode())


def place_tasks(mains: list[SimMain], expected: int, timeout_s: float = 120) -> None:
    """Heartbeat the mains until the server has handed over `expected` tasks in total."""
    deadline = time.monotonic() + timeout_s
    while sum(len(m.task_ids) for m in mains) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {sum(len(m.task_ids) for m in mains)} of {expected} tasks were handed over")
        for main in mains:
            main.task_ids += [a.task_id for a in main.heartbeat().start]


@dataclass
class Sample:
    kind: str  # "main" or "sub"
    latency_s: float
    lag_s: float


class FleetRunner:
    """Beats every agent at its period for `duration_s`, from `processes` forked processes (one
    Python process cannot build and send 300+ requests a second with room to spare: the GIL), each
    with `threads` worker threads. Samples, errors and each sub-agent's log size come back by queue.
    """

    def __init__(self, agents: list[tuple[object, float]], threads: int, processes: int = 1):
        self.agents, self.threads, self.processes = agents, max(1, threads), max(1, processes)
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.cpu_s = 0.0  # the generator's own CPU time (all its processes)
        self._lock = threading.Lock()

    def run(self, duration_s: float) -> None:
        if self.processes == 1:
            started = time.process_time()
            self._run_threads(self.agents, duration_s)
            self.cpu_s = time.process_time() - started
            return
        for agent, _ in self.agents:  # each child opens its own; an idle one here would hold a server thread
            agent.conn.close()
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        shares = [self.agents[i::self.processes] for i in range(self.processes)]
        children = [ctx.Process(target=self._child, args=(share, duration_s, queue), daemon=True) for share in shares]
        for child in children:
            child.start()
        by_id = {id(agent): agent for agent, _ in self.agents}
        for _ in children:
            samples, errors, sizes, cpu_s = queue.get(timeout=duration_s + 120)
            self.samples += [Sample(*s) for s in samples]
            self.errors += errors
            self.cpu_s += cpu_s
            for key, size in sizes:
                by_id[key].log_size = size
        for child in children:
            child.join()

    def _child(self, share: list, duration_s: float, queue) -> None:
        """In a forked process: own connections (never share the parent's sockets), run, report."""
        started = time.process_time()
        for agent, _ in share:
            agent.conn = Connection(agent.server_url)
        self._run_threads(share, duration_s)
        # id() is the same object's address in the parent: a fork copies the address space.
        sizes = [(id(agent), agent.log_size) for agent, _ in share if isinstance(agent, SimSub)]
        queue.put(([(s.kind, s.latency_s, s.lag_s) for s in self.samples], self.errors, sizes,
                   time.process_time() - started))

    def _run_threads(self, agents: list, duration_s: float) -> None:
        start = time.monotonic() + 0.2
        end = start + duration_s
        shares: list[list] = [[] for _ in range(self.threads)]
        for i, (agent, period) in enumerate(agents):
            due = start + random.uniform(0, period)  # spread the phases like independent agents
            shares[i % self.threads].append((due, i, agent, period))
        workers = [threading.Thread(target=self._work, args=(share, end), daemon=True) for share in shares]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def _work(self, heap: list, end: float) -> None:
        heapq.heapify(heap)
        local: list[Sample] = []
        while heap:
            due, i, agent, period = heap[0]
            if due >= end:
                break
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            sent = time.monotonic()
            try:
                agent.beat()
                local.append(Sample("main" if isinstance(agent, SimMain) else "sub",
                                    time.monotonic() - sent, sent - due))
            except (OSError, http.client.HTTPException, ProtocolError) as exc:
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            heapq.heapreplace(heap, (due + period, i, agent, period))
        with self._lock:
            self.samples += local
