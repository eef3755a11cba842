"""A protocol driver for server tests: speaks the agent protocol exactly as a real agent would
(HTTP + the shared message classes in task_common/protocol.py), but runs nothing.

    agent = ProtocolAgent(server.url, cpu_cores=4, gpus="2x81920").register()
    reply = agent.heartbeat()                       # MainHeartbeatReply; start = hand-overs
    sub = agent.start_sub(reply.start[0])           # registers a sub-agent for that task
    sub.write(b"hello\\n"); sub.finish(0)           # output in beats, then returncode + final_size

Sub-agents speak protocol 2 (SubHeartbeat: usage in the query, output as the raw body); v1_heartbeat
and v1_upload send what a protocol 1 sub-agent (the previous release) sends.

The agent remembers which tasks it "runs" (their sub-agents started and not finished) and reports
them in running_task_ids unless a test says otherwise, as a real main agent does.
"""
from __future__ import annotations

import uuid
from typing import Iterable, Optional, Union

import requests

from task_common import protocol as p
from task_common import protocol_v1 as v1


class ProtocolError(AssertionError):
    """The server answered a protocol call with an error status."""

    def __init__(self, response: requests.Response):
        super().__init__(f"{response.request.method} {response.url} -> {response.status_code}: {response.text}")
        self.response = response
        self.status_code = response.status_code
        self.code = _error_code(response)


def _error_code(response: requests.Response) -> Optional[str]:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def simulated_gpus(spec: Union[str, Iterable[tuple[int, int]], None]) -> list[p.GpuInfo]:
    """"2x81920" -> two idle 80 GiB GPUs; or [(memory_total, memory_used), ...] per GPU."""
    if not spec:
        return []
    if isinstance(spec, str):
        count, mib = (int(x) for x in spec.lower().split("x"))
        spec = [(mib, 0)] * count
    return [p.GpuInfo(index=i, name="Simulated GPU", uuid=f"GPU-sim-{i}", memory_total=total,
                      memory_used=used, simulated=True) for i, (total, used) in enumerate(spec)]


class Transport:
    def __init__(self, url: str, token: Optional[str] = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers[p.TOKEN_HEADER] = f"Bearer {token}"

    def post_raw(self, path: str, body: dict, timeout: float = 10.0) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=timeout)

    def post_body(self, path: str, query: dict, raw: bytes,
                  content_type: str = p.OUTPUT_CONTENT_TYPE) -> requests.Response:
        """A raw body with the message in the query (a sub-agent's heartbeat; protocol 1's upload)."""
        query = {k: v for k, v in query.items() if v is not None}
        return self.session.post(self.url + path, params=query, data=raw, headers={"Content-Type": content_type},
                                 timeout=30)

    def call(self, path: str, message: p.Message, reply_type: type, timeout: float = 10.0):
        response = self.post_raw(path, message.to_dict(), timeout)
        if response.status_code != 200:
            raise ProtocolError(response)
        return reply_type.from_dict(response.json())


class ProtocolAgent:
    """A main agent that registers, heartbeats and starts fake sub-agents over the real protocol."""

    def __init__(self, url: str, name: str = "proto-agent", cpu_cores: int = 4,
                 gpus: Union[str, Iterable[tuple[int, int]], None] = None, token: Optional[str] = None,
                 agent_id: Optional[str] = None):
        self.transport = Transport(url, token)
        self.name, self.cpu_cores = name, cpu_cores
        self.gpus = simulated_gpus(gpus)
        self.agent_id = agent_id
        self.running: dict[int, "FakeSubAgent"] = {}  # task id -> its live sub-agent

    # --- main agent ---------------------------------------------------------------------------

    def register(self, protocol_version: int = p.PROTOCOL_VERSION) -> "ProtocolAgent":
        reply = self.transport.call(p.REGISTER_MAIN_PATH, p.RegisterMain(
            protocol_version=protocol_version, agent_id=self.agent_id, name=self.name, hostname="test-box",
            cpu_cores=self.cpu_cores, memory_total_mib=16384, gpus=self.gpus,
            monitor_file=f"/tmp/{self.name}.log"), p.RegisterMainReply)
        self.agent_id = reply.agent_id
        self.register_reply = reply
        return self

    def heartbeat_message(self, running_task_ids: Optional[Iterable[int]] = None,
                          died: Iterable[Union[int, tuple[int, str]]] = (),
                          rejected: Iterable[Union[int, tuple[int, str]]] = (), wait_s: float = 0.0,
                          protocol_version: int = p.PROTOCOL_VERSION) -> p.MainHeartbeat:
        running = sorted(self.running) if running_task_ids is None else list(running_task_ids)
        return p.MainHeartbeat(
            protocol_version=protocol_version, agent_id=self.agent_id, cpu_cores=self.cpu_cores,
            cpu_usage=12.5, memory_usage=40.0, memory_used_mib=6000, memory_total_mib=16384, gpus=self.gpus,
            running_task_ids=running, died=[_report(r) for r in died], rejected=[_report(r) for r in rejected],
            wait_s=wait_s)

    def heartbeat(self, running_task_ids: Optional[Iterable[int]] = None,
                  died: Iterable[Union[int, tuple[int, str]]] = (),
                  rejected: Iterable[Union[int, tuple[int, str]]] = (), wait_s: float = 0.0,
                  protocol_version: int = p.PROTOCOL_VERSION) -> p.MainHeartbeatReply:
        """One heartbeat. running_task_ids defaults to the tasks whose fake sub-agents are live."""
        message = self.heartbeat_message(running_task_ids, died, rejected, wait_s, protocol_version)
        return self.transport.call(p.MAIN_HEARTBEAT_PATH, message, p.MainHeartbeatReply, timeout=10 + wait_s)

    def set_gpu_used(self, index: int, memory_used: int) -> None:
        """What NVML would measure on that GPU from now on (sent with the next heartbeat)."""
        self.gpus[index] = self.gpus[index].model_copy(update={"memory_used": memory_used})

    # --- sub-agents ---------------------------------------------------------------------------

    def sub_agent(self, task: Union[int, p.TaskAssignment], sub_agent_id: Optional[str] = None) -> "FakeSubAgent":
        task_id = task.task_id if isinstance(task, p.TaskAssignment) else int(task)
        return FakeSubAgent(self, task_id, sub_agent_id or f"sub-{task_id}-{uuid.uuid4().hex[:6]}")

    def start_sub(self, task: Union[int, p.TaskAssignment], sub_agent_id: Optional[str] = None) -> "FakeSubAgent":
        """Spawn (register) the sub-agent for a hand-over; it counts as running until it finishes."""
        sub = self.sub_agent(task, sub_agent_id)
        reply = sub.register()
        if not reply.cancel:
            self.running[sub.task_id] = sub
        return sub

    def run_to_end(self, task: Union[int, p.TaskAssignment], output: bytes = b"", returncode: int = 0):
        """Start a sub-agent for the task, then send its whole output with its end (one heartbeat)."""
        sub = self.start_sub(task)
        sub.produced += output
        return sub.finish(returncode)


class FakeSubAgent:
    """The sub-agent of one task: registers, sends output chunks, reports the end."""

    def __init__(self, main: ProtocolAgent, task_id: int, sub_agent_id: str):
        self.main, self.task_id, self.sub_agent_id = main, task_id, sub_agent_id
        self.produced = bytearray()  # everything "the task wrote"
        self.acked = 0  # bytes the server said it holds

    def register(self, protocol_version: int = p.PROTOCOL_VERSION) -> p.RegisterSubReply:
        reply = self.main.transport.call(p.REGISTER_SUB_PATH, p.RegisterSub(
            protocol_version=protocol_version, sub_agent_id=self.sub_agent_id, main_agent_id=self.main.agent_id,
            task_id=self.task_id, pid=4242, hostname="test-box", monitor_file=f"/tmp/{self.sub_agent_id}.log"),
            p.RegisterSubReply)
        self.acked = reply.log_size
        return reply

    def beat(self, output: bytes = b"", offset: Optional[int] = None, returncode: Optional[int] = None,
             final_size: Optional[int] = None, protocol_version: int = p.PROTOCOL_VERSION,
             usage: Optional[p.ProcessUsage] = None) -> p.SubHeartbeatReply:
        """One heartbeat with exactly this output (from `offset`, default the stored size) and no bookkeeping
        beyond the stored size."""
        usage = usage or p.ProcessUsage(cpu_usage=50.0, memory_used_mib=100.0, memory_usage=1.0)
        message = p.SubHeartbeat(protocol_version=protocol_version, sub_agent_id=self.sub_agent_id,
                                 task_id=self.task_id, offset=self.acked if offset is None else offset, **dict(usage),
                                 returncode=returncode, final_size=final_size)
        return self._took(self.main.transport.post_body(p.SUB_HEARTBEAT_PATH, message.to_dict(), output))

    def heartbeat(self, returncode: Optional[int] = None, final_size: Optional[int] = None,
                  protocol_version: int = p.PROTOCOL_VERSION, usage: Optional[p.ProcessUsage] = None):
        """A heartbeat without output."""
        return self.beat(b"", None, returncode, final_size, protocol_version, usage)

    def v1_heartbeat(self, chunks: Iterable[v1.OutputChunk] = (), returncode: Optional[int] = None,
                     final_size: Optional[int] = None, usage: Optional[p.ProcessUsage] = None) -> p.SubHeartbeatReply:
        """What a protocol 1 sub-agent sends: a JSON heartbeat with base64 chunks."""
        message = v1.SubHeartbeatV1(sub_agent_id=self.sub_agent_id, task_id=self.task_id, chunks=list(chunks),
                                    usage=usage or p.ProcessUsage(cpu_usage=50.0), returncode=returncode,
                                    final_size=final_size)
        return self._took(self.main.transport.post_raw(v1.SUB_HEARTBEAT_V1_PATH, message.to_dict()))

    def v1_upload(self, offset: int, raw: bytes, protocol_version: int = v1.PROTOCOL_1) -> p.SubHeartbeatReply:
        """What a protocol 1 sub-agent sends for a backlog: a raw upload."""
        query = v1.OutputUploadV1(protocol_version=protocol_version, sub_agent_id=self.sub_agent_id,
                                  task_id=self.task_id, offset=offset).to_dict()
        return self._took(self.main.transport.post_body(v1.SUB_OUTPUT_V1_PATH, query, raw))

    def _took(self, response: requests.Response) -> p.SubHeartbeatReply:
        if response.status_code != 200:
            raise ProtocolError(response)
        reply = p.SubHeartbeatReply.from_dict(response.json())
        self.acked = reply.log_size
        if reply.finished:
            self.main.running.pop(self.task_id, None)
        return reply

    def write(self, raw: bytes) -> p.SubHeartbeatReply:
        """The task wrote raw: send everything the server does not hold yet, as a real sub-agent does."""
        self.produced += raw
        return self.flush()

    def flush(self, returncode: Optional[int] = None) -> p.SubHeartbeatReply:
        final_size = len(self.produced) if returncode is not None else None
        return self.beat(bytes(self.produced[self.acked:]), returncode=returncode, final_size=final_size)

    def finish(self, returncode: int = 0) -> p.SubHeartbeatReply:
        """The script ended: send the rest of the output with the return code until the server has it all."""
        for _ in range(5):
            reply = self.flush(returncode)
            if reply.finished:
                return reply
        raise AssertionError(f"server never acknowledged the end of task {self.task_id}: {reply}")


def _report(item: Union[int, tuple[int, str]]) -> p.TaskReport:
    task_id, reason = (item, "") if isinstance(item, int) else item
    return p.TaskReport(task_id=task_id, reason=reason)
