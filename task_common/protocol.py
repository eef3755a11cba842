"""The agent protocol: every message between the server and its agents, in one place.

Shared by the server (backend/api/protocol.py) and the agents (agent/server_client.py).
Imports only the stdlib and pydantic. Flow, all initiated by agents (they have no inbound port):

  main agent  --RegisterMain-->   server  --RegisterMainReply-->  (stable agent_id)
  main agent  --MainHeartbeat-->  server  --MainHeartbeatReply--> (tasks to start / kill)
  sub agent   --RegisterSub-->    server  --RegisterSubReply-->   (go / do not start)
  sub agent   --SubHeartbeat-->   server  --SubHeartbeatReply-->  (stored log size, cancel?)
  sub agent   --OutputUpload-->   server  --OutputUploadReply-->  (stored log size, cancel?)

Output is never lost: a SubHeartbeat carries OutputChunk(offset, data), and an OutputUpload carries
bulk output as the raw request body (no base64, no JSON); either way the server appends only the
part past its stored size and answers that size; the sub-agent resends everything past it.

Both replies to a main agent carry the server's identity (server_id, one per database): an agent
keeps what it remembers (its id, its tasks, the task ids it ran) per identity, so a reset or
replaced server behind the same URL is never mixed up with the one before.
"""
from __future__ import annotations

import base64
import signal
from typing import Annotated, Optional

import binascii

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

PROTOCOL_VERSION = 1

REGISTER_MAIN_PATH = "/api/agent-protocol/main/register"
MAIN_HEARTBEAT_PATH = "/api/agent-protocol/main/heartbeat"
REGISTER_SUB_PATH = "/api/agent-protocol/sub/register"
SUB_HEARTBEAT_PATH = "/api/agent-protocol/sub/heartbeat"
SUB_OUTPUT_PATH = "/api/agent-protocol/sub/output"  # body: the raw bytes; OutputUpload in the query

OUTPUT_CONTENT_TYPE = "application/octet-stream"

TOKEN_HEADER = "Authorization"  # value: "Bearer <token>"

# Every number an agent sends that the server stores or looks up fits SQLite's 64-bit INTEGER, so a
# wild value is a 400 here instead of an OverflowError (500) in the database.
INT64_MAX = 2**63 - 1
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]


class Message(BaseModel):
    """Base: unknown keys are ignored so a newer peer can add fields without breaking an older one."""

    model_config = ConfigDict(extra="ignore")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict):
        """Validate a received dict; raises pydantic.ValidationError with per-field details."""
        return cls.model_validate(data)


class GpuInfo(Message):
    """One GPU as NVML (or the simulator) sees it. Memory in MiB, utilization in percent."""

    index: int = Field(ge=0)
    name: str = ""
    uuid: str = ""
    utilization: float = Field(default=0.0, ge=0)
    memory_used: int = Field(default=0, ge=0)
    memory_total: int = Field(default=0, ge=0)
    simulated: bool = False


class ProcessGpuUsage(Message):
    """GPU use of one process tree on one GPU."""

    index: int = Field(ge=0)
    memory_used: int = Field(default=0, ge=0)
    utilization: float = Field(default=0.0, ge=0)


class RegisterMain(Message):
    protocol_version: int = PROTOCOL_VERSION
    agent_id: Optional[str] = None  # from the agent's state file; None on first start
    # The server that agent_id came from (None: not known). Another server's id is not kept: a fresh one.
    server_id: Optional[str] = None
    name: str = Field(min_length=1, max_length=200)
    hostname: str = ""
    cpu_cores: Count
    memory_total_mib: Count = 0
    gpus: list[GpuInfo] = []
    monitor_file: str = ""  # where this agent writes its own log


class RegisterMainReply(Message):
    agent_id: str
    heartbeat_interval_s: float
    sub_heartbeat_interval_s: float
    server_id: Optional[str] = None  # made once per database; None from a server older than identities


class TaskAssignment(Message):
    """A task handed to a main agent: everything its sub-agent needs to run it."""

    task_id: int
    name: str
    script_content: str
    cpu_cores: int
    gpu_ids: list[int] = []
    gpu_memory: int = 0


class TaskReport(Message):
    """A main agent's word about one task: a sub-agent that died, or a hand-over it did not start."""

    task_id: Count
    reason: str = Field(default="", max_length=2000)


class MainHeartbeat(Message):
    protocol_version: int = PROTOCOL_VERSION
    agent_id: str
    cpu_cores: Count
    cpu_usage: float = Field(default=0.0, ge=0)  # percent of the whole box
    memory_usage: float = Field(default=0.0, ge=0)  # percent
    memory_used_mib: Count = 0
    memory_total_mib: Count = 0
    gpus: list[GpuInfo] = []
    running_task_ids: list[int] = []  # tasks whose sub-agent process is alive on this box
    died: list[TaskReport] = []  # sub-agents that exited without the server acknowledging the end
    rejected: list[TaskReport] = []  # hand-overs this agent refused, with why (back to waiting, or failed)
    wait_s: float = Field(default=0.0, ge=0, le=60)  # long poll: hold the reply until work or timeout
    # Set while the agent cannot write where it must ("disk full on <name>: <path>"): shown on the agent,
    # and no task is handed to it until it clears. None from agents older than the field.
    disk_problem: Optional[str] = Field(default=None, max_length=1000)


class MainHeartbeatReply(Message):
    known: bool = True  # False: the server does not know this agent_id; register again
    start: list[TaskAssignment] = []
    kill_task_ids: list[int] = []
    next_interval_s: float
    server_id: Optional[str] = None  # as in RegisterMainReply: another value means another server/database


class RegisterSub(Message):
    protocol_version: int = PROTOCOL_VERSION
    sub_agent_id: str = Field(min_length=1, max_length=64)  # chosen by the main agent at spawn
    main_agent_id: str
    task_id: Count
    pid: int = 0
    hostname: str = ""
    monitor_file: str = ""


class RegisterSubReply(Message):
    sub_agent_id: str
    log_size: int  # bytes already stored for this task: resume output from here
    cancel: bool = False  # the task was canceled meanwhile: do not start it
    heartbeat_interval_s: float


class OutputChunk(Message):
    """Bytes of task output starting at byte `offset` of the task's log (data is base64)."""

    offset: int = Field(ge=0)
    data: str = ""
    # The decoded bytes, kept from validation: a 4 MiB chunk costs ~15 ms per decode (bench: log_volume).
    _raw: Optional[bytes] = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _is_base64(self) -> "OutputChunk":
        if self._raw is None:
            try:
                self._raw = base64.b64decode(self.data, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data is not valid base64: {exc}") from None
        return self

    @classmethod
    def from_bytes(cls, offset: int, raw: bytes) -> "OutputChunk":
        chunk = cls(offset=offset)  # validates the offset; the data below is base64 by construction
        chunk.data, chunk._raw = base64.b64encode(raw).decode("ascii"), bytes(raw)
        return chunk

    def raw(self) -> bytes:
        return self._raw if self._raw is not None else base64.b64decode(self.data, validate=True)


class ProcessUsage(Message):
    cpu_usage: float = Field(default=0.0, ge=0)  # percent of one core, summed over the tree
    memory_used_mib: float = Field(default=0.0, ge=0)  # RSS of the tree
    memory_usage: float = Field(default=0.0, ge=0)  # percent of the box's memory
    gpus: list[ProcessGpuUsage] = []


class SubHeartbeat(Message):
    protocol_version: int = PROTOCOL_VERSION
    sub_agent_id: str
    task_id: Count
    usage: ProcessUsage = ProcessUsage()
    chunks: list[OutputChunk] = []
    # set once the script ended (negative: killed by that signal)
    returncode: Optional[Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]] = None
    final_size: Optional[Count] = None  # with returncode: total bytes of output the task produced


class SubHeartbeatReply(Message):
    log_size: int  # bytes the server holds; resend everything past it
    cancel: bool = False  # kill the task
    finished: bool = False  # the server recorded the end and all output: the sub-agent may exit
    next_interval_s: float


class OutputUpload(Message):
    """Where the raw bytes in an upload's body go: the task's log from byte `offset` (query parameters)."""

    protocol_version: int = PROTOCOL_VERSION
    sub_agent_id: str
    task_id: Count
    offset: Count


class OutputUploadReply(Message):
    log_size: int  # bytes the server holds; resend everything past it
    cancel: bool = False  # the task no longer runs on the server (canceled, or failed storing output)


def describe_returncode(returncode: int) -> tuple[bool, str]:
    """Map a process return code to (succeeded, reason for people). The one place this is decided."""
    if returncode == 0:
        return True, ""
    if returncode > 128 and returncode - 128 in _SIGNAL_NAMES:
        # bash reports a child killed by signal N as 128+N
        return False, f"exit code {returncode} (killed by {_SIGNAL_NAMES[returncode - 128]})"
    if returncode > 0:
        return False, f"exit code {returncode}"
    name = _SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
    return False, f"killed by {name}"


_SIGNAL_NAMES = {s.value: s.name for s in signal.Signals}
