"""The agent protocol: every message between the server and its agents, in one place.

Shared by the server (backend/api/protocol.py) and the agents (agent/server_client.py).
Imports only the stdlib and pydantic. Flow, all initiated by agents (they have no inbound port):

  main agent  --RegisterMain-->   server  --RegisterMainReply-->  (stable agent_id)
  main agent  --MainHeartbeat-->  server  --MainHeartbeatReply--> (tasks to start / kill)
  sub agent   --RegisterSub-->    server  --RegisterSubReply-->   (go / do not start)
  sub agent   --SubHeartbeat-->   server  --SubHeartbeatReply-->  (stored log size, cancel?, finished?)

A sub-agent sends one kind of message once registered: SubHeartbeat, each interval and whenever
output is due. Its query parameters carry the task's usage (and, once the task ended, how it ended);
its body carries the task's output past `offset` as raw bytes (no base64, no JSON: bench log_volume).
Output is never lost: the server appends only the part past its stored size and answers that size;
the sub-agent resends everything past it, and repeats the end until the reply says `finished`.
A cancel reaches a running task one way: the `cancel` of its sub-agent's reply (the main agent's
kill_task_ids is the fallback for a sub-agent that does not end its task; agent/main_agent.py).

Both replies to a main agent carry the server's identity (server_id, one per database): an agent
keeps what it remembers (its id, its tasks, the task ids it ran) per identity, so a reset or
replaced server behind the same URL is never mixed up with the one before.

Protocol 1, the release before, sent output base64 inside a JSON heartbeat or as a raw upload, with
the end in the heartbeat: task_common/protocol_v1.py. A main agent restarted after an upgrade adopts
the sub-agents the old code forked, and the server takes what they send until they finished.
"""
from __future__ import annotations

import functools
import signal
from typing import Annotated, Optional

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator,
)

PROTOCOL_VERSION = 2

REGISTER_MAIN_PATH = "/api/agent-protocol/main/register"
MAIN_HEARTBEAT_PATH = "/api/agent-protocol/main/heartbeat"
REGISTER_SUB_PATH = "/api/agent-protocol/sub/register"
SUB_HEARTBEAT_PATH = "/api/agent-protocol/sub/beat"  # body: raw output bytes; SubHeartbeat in the query

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
    env: dict[str, str] = {}  # the task's own variables, set before the system's (TASK_*, CUDA_*)
    work_dir: Optional[str] = None  # absolute, or relative to the agent's --work-dir; None: that dir
    time_limit_s: int = 0  # stop the task's tree (as a cancel does) and fail it after this; 0 = none
    gpu_count: int = 0  # what it asked for: a Slurm agent asks Slurm for as many (gpu_ids stay empty)


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
    # Set by a main agent that hands its tasks to Slurm (--executor slurm): how many more tasks it
    # takes now (--slurm-max-jobs less its jobs). Any task fits it, whatever its cores and GPUs: Slurm
    # places them (gpu_ids stay empty). None: a local agent, whose cores and GPUs are its room.
    slurm_slots: Optional[Count] = None


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


class ProcessUsage(Message):
    cpu_usage: float = Field(default=0.0, ge=0)  # percent of one core, summed over the tree
    memory_used_mib: float = Field(default=0.0, ge=0)  # RSS of the tree
    memory_usage: float = Field(default=0.0, ge=0)  # percent of the box's memory
    gpus: list[ProcessGpuUsage] = []


def _gpus_from_query(value):
    """'index:memory_used:utilization' texts (repeated query parameters) into ProcessGpuUsage fields."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return value
    try:
        return [dict(zip(("index", "memory_used", "utilization"), t.split(":"), strict=True)) for t in texts]
    except ValueError:
        raise ValueError("each gpus entry is index:memory_used:utilization") from None


GpuUsageList = Annotated[
    list[ProcessGpuUsage], BeforeValidator(_gpus_from_query),
    PlainSerializer(lambda gpus: [f"{g.index}:{g.memory_used}:{g.utilization:g}" for g in gpus], return_type=list),
    WithJsonSchema({"type": "array", "items": {"type": "string", "pattern": r"^\d+:\d+:[0-9.e+-]+$"},
                    "description": "index:memory_used_mib:utilization_percent per GPU of the task"}),
]
ReturnCode = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]  # negative: killed by that signal


class SubHeartbeat(Message):
    """A sub-agent's report, as query parameters; the request body is the task's output from byte
    `offset` of its log (possibly empty). Once the task ended every beat carries returncode and
    final_size, until the reply says finished."""

    protocol_version: int = PROTOCOL_VERSION
    sub_agent_id: str
    task_id: Count
    offset: Count
    cpu_usage: float = Field(default=0.0, ge=0)  # as in ProcessUsage
    memory_used_mib: float = Field(default=0.0, ge=0)
    memory_usage: float = Field(default=0.0, ge=0)
    gpus: GpuUsageList = []
    returncode: Optional[ReturnCode] = None
    final_size: Optional[Count] = None  # with returncode: total bytes of output the task produced
    # With the end: the sub-agent stopped the task itself ("time limit of 2s reached"). The task then
    # fails with this reason, whatever its return code. None from sub-agents older than the field.
    stop_reason: Optional[str] = Field(default=None, max_length=2000)
    # While the task runs: why it is not running yet ("Slurm: PENDING (Resources)"), shown as its
    # status_reason; "" clears it. Sent when it changes; None: no news (and from older sub-agents).
    queue_note: Optional[str] = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _end_is_whole(self) -> "SubHeartbeat":
        if (self.returncode is None) != (self.final_size is None):
            raise ValueError("returncode and final_size come together")
        return self

    @classmethod
    @functools.cache
    def query_schema(cls) -> dict:
        """model_json_schema(), computed once: flask-openapi3 asks for it on every request (~0.3 ms)."""
        return super().model_json_schema()

    @classmethod
    def model_json_schema(cls, *args, **kwargs) -> dict:
        return cls.query_schema() if not (args or kwargs) else super().model_json_schema(*args, **kwargs)

    def usage(self) -> ProcessUsage:
        return ProcessUsage(cpu_usage=self.cpu_usage, memory_used_mib=self.memory_used_mib,
                            memory_usage=self.memory_usage, gpus=self.gpus)


class SubHeartbeatReply(Message):
    log_size: int  # bytes the server holds; resend everything past it
    cancel: bool = False  # the task no longer runs on the server: kill it (the one cancel channel)
    finished: bool = False  # the server recorded the end and all output: the sub-agent may exit
    next_interval_s: float


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
