"""Response models: the shape of every JSON answer, both in /api/openapi.json and in what is sent.

Routes build their answers through these (`to_json`: validate, then dump), so the document that the web
UI's types are generated from (`make api-types`) cannot drift from the answers. Unknown keys are refused:
a field added to a `to_dict()` but not here fails loudly in the tests instead of leaving the document.
Times are ISO 8601 strings with the offset, exactly as backend/utils/time.isoformat writes them.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

from backend.models import AgentStatus, AgentType, TaskStatus

IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Out(BaseModel):
    """An answer: every field is always sent, so the document marks each one required (defaults too)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


def to_json(model: type[BaseModel], data: Any) -> Any:
    """`data` validated as `model` and dumped to JSON types: what the route sends is what the document says."""
    return model.model_validate(data).model_dump(mode="json", by_alias=True)


class ErrorBody(BaseModel):
    code: str = Field(description="short_snake_case")
    message: str = Field(description="one sentence a person understands")
    details: Any = Field(None, description="per-field problems of invalid input, when there are any")


class ErrorResponse(BaseModel):
    """Every error: 400 invalid input, 401 no valid token, 404 unknown id, 409 conflicting state, ..."""

    error: ErrorBody


def error_json(code: str, message: str, details: Any = None) -> dict:
    body = ErrorBody(code=code, message=message, **({} if details is None else {"details": details}))
    return ErrorResponse(error=body).model_dump(mode="json", exclude_unset=True)


def answers(ok: dict[int, Any], *errors: int) -> dict[int, Any]:
    """A route's `responses`: its success bodies, and ErrorResponse for 400 and 401 (any route: a token may be
    configured; without its own 400, flask-openapi3 would add one of another shape) and for `errors`."""
    return {**ok, **{status: ErrorResponse for status in (400, 401, *errors)}}


class ProgressOut(Out):
    """Read from the task's latest progress bar (tqdm's format) or a line ending in a bare percent."""

    percent: Optional[float]
    current: Optional[float] = Field(description="units done (null for a bare percent)")
    total: Optional[float]
    eta_s: Optional[float] = Field(description="seconds left, as the bar estimates")
    rate: Optional[float] = Field(description="units per second")
    updated_time: IsoTime = Field(description="when the server read it")


class TaskOut(Out):
    id: int
    name: str
    template_type: str
    priority: int = Field(description="1 = most urgent")
    depends_on: list[int]
    status: TaskStatus
    created_time: IsoTime
    script_content: str
    cpu_cores: int
    gpu_count: int
    gpu_memory: int = Field(description="MiB needed on each GPU; 0 = whole GPUs")
    start_time: Optional[IsoTime]
    end_time: Optional[IsoTime]
    execution_time: Optional[float] = Field(description="seconds run (so far, while it runs)")
    agent_id: Optional[str] = Field(description="the main agent it was placed on")
    sub_agent_id: Optional[str] = Field(description="the sub-agent that runs it")
    log_file: Optional[str]
    exit_code: Optional[int]
    status_reason: Optional[str] = Field(description="why it failed, or was blocked or canceled, for people")
    gpu_ids: list[int]
    log_size: int = Field(description="bytes of output stored so far")
    agent_unreachable_since: Optional[IsoTime] = Field(
        description="while it runs on a box the server cannot hear: since when; else null")
    env: dict[str, str] = Field(description="environment variables for the script")
    work_dir: Optional[str] = Field(description="where it runs; null: the agent's --work-dir")
    time_limit_s: int = Field(description="stopped and failed after this many seconds; 0 = none")
    notify: list[str] = Field(description="URLs told when it finishes")
    dependents: list[int] = Field(description="tasks that depend on this one")
    retry_of: Optional[int] = Field(description="the task this one retries")
    retried_as: Optional[int] = Field(description="the task that retries this one")
    progress: Optional[ProgressOut] = Field(description="from its output's latest progress bar; null: none seen")


class TaskPage(Out):
    items: list[TaskOut]
    total: int
    page: int
    page_size: int


class TaskStatsOut(Out):
    counts: dict[TaskStatus, int] = Field(description="tasks in each status (every status, 0 when none)")


class RetryOut(Out):
    task: TaskOut = Field(description="the new task (a preview: the task that would be retried)")
    dependents: list[TaskOut] = Field(description="the new copies of what failed because of it, oldest first "
                                      "(a preview: the tasks that would be copied)")


class SweepOut(Out):
    items: list[TaskOut] = Field(description="one task per combination, the last parameter varying fastest")


class LogSliceOut(Out):
    task_id: int
    offset: int = Field(description="byte offset of `data` in the stored log")
    next_offset: int = Field(description="where to read on (always past invalid bytes)")
    size: int = Field(description="bytes stored so far")
    data: str = Field(description="the bytes as text, each invalid UTF-8 sequence as U+FFFD")


class GpuSampleOut(Out):
    index: int
    utilization: float = Field(description="percent")
    memory_used_mib: float


class UsageSampleOut(Out):
    time: IsoTime
    cpu_percent: float
    memory_mib: float
    gpus: list[GpuSampleOut]


class UsageOut(Out):
    samples: list[UsageSampleOut] = Field(description="oldest first; thinned evenly as the task runs long")


class GraphNodeOut(Out):
    id: int
    name: str
    status: TaskStatus


class GraphEdgeOut(Out):
    from_: int = Field(alias="from", description="must complete before `to` runs")
    to: int


class TaskGraphOut(Out):
    nodes: list[GraphNodeOut]
    edges: list[GraphEdgeOut]
    truncated: bool = Field(description="the chain has more tasks than the graph holds (500)")


class TemplateOut(Out):
    id: int
    name: str
    script_content: str
    created_time: IsoTime
    updated_time: IsoTime


class TemplateList(RootModel[list[TemplateOut]]):
    pass


class AgentGpu(Out):
    """One GPU. Stored as the agent sent it: defaults fill keys an older row lacks; name, uuid, memory_total
    and simulated are null on a sub-agent's GPU that its main agent does not list."""

    model_config = ConfigDict(extra="ignore")
    index: int
    name: Optional[str] = ""
    uuid: Optional[str] = ""
    utilization: float = Field(0.0, description="percent")
    memory_used: int = Field(0, description="MiB")
    memory_total: Optional[int] = Field(0, description="MiB")
    simulated: Optional[bool] = False


class AgentOut(Out):
    """An agent: a main agent (one per box) or a sub-agent (one per running task)."""

    id: str
    name: str
    type: AgentType
    status: AgentStatus
    hostname: str
    created_time: IsoTime
    last_heartbeat_time: Optional[IsoTime]
    running_time: float = Field(description="seconds since this run started; frozen once offline")
    cpu_cores: int
    available_cpu_cores: int
    cpu_usage: float = Field(description="percent")
    memory_usage: float = Field(description="percent")
    memory_used_mib: float
    memory_total_mib: int
    gpu_info: list[AgentGpu]
    is_simulated_gpu: bool
    task_id: Optional[int] = Field(description="a sub-agent's task")
    main_agent_id: Optional[str] = Field(description="a sub-agent's main agent")
    monitor_file: str
    draining: bool = Field(description="a draining main agent takes no new tasks; its running ones finish")
    disk_problem: Optional[str] = Field(description="why a main agent cannot write where it must; no task meanwhile")


class GpuReservationOut(Out):
    index: int
    reserved_mib: int = Field(description="memory promised to the tasks placed on it (0 for whole-GPU holders)")
    whole: bool = Field(description="held whole by a task that asked for no memory size (gpu_memory 0)")
    task_ids: list[int] = Field(description="the tasks placed on it")


class GpuHistoryOut(Out):
    index: int
    utilization: list[Optional[float]] = Field(
        description="percent, highest per tenth of the last 10 minutes' sixtieths, oldest first; null: no reading")


class MainAgentOut(AgentOut):
    """A main agent with its sub-agents (the tree the UI draws)."""

    sub_agents: list[AgentOut]
    gpu_reservations: list[GpuReservationOut] = Field(description="the GPUs held by tasks placed here")
    gpu_history: list[GpuHistoryOut] = Field(description="each GPU's utilisation over the last 10 minutes")


class MainAgentList(RootModel[list[MainAgentOut]]):
    pass


class AnyAgentOut(RootModel[Union[MainAgentOut, AgentOut]]):
    """One agent: a main agent comes with its sub-agents."""


class HealthOut(Out):
    status: Literal["ok"]
    version: str
    protocol_version: int
    server_id: str = Field(description="made once per database")
