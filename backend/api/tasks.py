"""Task routes: parse and validate, call one service function, answer."""
from __future__ import annotations

from typing import Annotated, Optional

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, field_validator, model_validator

from backend.api.responses import (
    LogSliceOut, RetryOut, SweepOut, TaskGraphOut, TaskOut, TaskPage, TaskStatsOut, UsageOut, answers, to_json,
)
from backend.api.schemas import Name, NonBlank, TaskPath, TaskRunSettings, check_env
from backend.models import Task, TaskStatus
from backend.services import logs as log_service
from backend.services import raw_logs as raw_log_service
from backend.services import retries as retry_service
from backend.services import task_graph, task_readings, task_stats
from backend.services import sweeps as sweep_service
from backend.services import task_views
from backend.services import tasks as task_service

bp = APIBlueprint("tasks", __name__, url_prefix="/api", abp_tags=[Tag(name="tasks")])

MAX_DEPENDENCIES = 1000
RAW_LOG_RESPONSE = {
    "description": "The stored log, byte for byte (output that is not UTF-8 included), from `offset` to its end now.",
    "content": {"text/plain": {"schema": {"type": "string", "format": "binary"}}},
    "headers": {
        "X-Log-Size": {"description": "the log's size when read: the bytes sent end there (resume from it)",
                       "schema": {"type": "integer"}},
        "X-Log-Complete": {"description": "`true`: the task has ended and no byte will follow X-Log-Size",
                           "schema": {"type": "string", "enum": ["true", "false"]}}}}


class TaskCreate(TaskRunSettings):
    name: Name
    template_type: Name
    script_content: NonBlank
    priority: int = Field(3, ge=1, le=5, description="1 = most urgent")
    cpu_cores: int = Field(1, ge=0, le=100_000)
    gpu_count: int = Field(0, ge=0, le=1024)
    gpu_memory: int = Field(0, ge=0, le=100_000_000, description="MiB needed on each GPU; 0 = whole GPUs")
    depends_on: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(default_factory=list, max_length=MAX_DEPENDENCIES)


class TaskRetry(TaskRunSettings):
    """Overrides for the retried task: any create field; the rest is copied from the old task."""

    name: Optional[Name] = None
    template_type: Optional[Name] = None
    script_content: Optional[NonBlank] = None
    priority: Optional[int] = Field(None, ge=1, le=5)
    cpu_cores: Optional[int] = Field(None, ge=0, le=100_000)
    gpu_count: Optional[int] = Field(None, ge=0, le=1024)
    gpu_memory: Optional[int] = Field(None, ge=0, le=100_000_000)
    depends_on: Optional[list[Annotated[int, Field(ge=1, le=2**62)]]] = Field(None, max_length=MAX_DEPENDENCIES)

    @model_validator(mode="after")
    def _no_nulls(self):
        """Left out: copied from the old task. Given as null: refused (only work_dir may be null)."""
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None and k != "work_dir")
        if nulls:
            raise ValueError(f"{nulls[0]} may not be null; leave it out to keep the old task's value")
        return self


class TaskSweep(TaskCreate):
    # Keys checked in the validator, not by a constrained key type: openapi-typescript reads the
    # latter's patternProperties as "no keys" (the UI's generated type).
    params: dict[str, list[Annotated[str, Field(max_length=10_000)]]] = Field(
        description="placeholder name ([A-Za-z_][A-Za-z0-9_]*) -> its values; each task also gets its values "
                    "as env entries of that name", max_length=50)

    @field_validator("params")
    @classmethod
    def _params_are_env_names(cls, params: dict) -> dict:
        check_env({name: "" for name in params})
        return params


class TaskListQuery(BaseModel):
    status: Optional[str] = Field(None, description="one status or a comma-separated list")
    name: Optional[str] = Field(None, max_length=200, description="case-insensitive substring")
    template_type: Optional[str] = Field(None, max_length=200)
    script: Optional[str] = Field(None, max_length=10_000, description="substring of script_content")
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(20, ge=1, le=200)

    @field_validator("status")
    @classmethod
    def _known_statuses(cls, value: Optional[str]) -> Optional[str]:
        if value:
            unknown = [s for s in value.split(",") if s not in TaskStatus._value2member_map_]
            if unknown:
                raise ValueError(f"unknown status {unknown[0]!r}; use one of "
                                 + ", ".join(s.value for s in TaskStatus))
        return value


class RawLogQuery(BaseModel):
    offset: int = Field(0, ge=0, description="the first byte to send")
    wait_s: float = Field(0, ge=0, le=60, description="with nothing past `offset` yet, hold the answer up to this "
                          "long for new output or the task's end (a follower's long poll)")


class LogQuery(BaseModel):
    offset: Optional[int] = Field(None, ge=0)
    limit: Optional[int] = Field(None, ge=0, description="at most this many bytes, ending on a whole character "
                                 "(up to 3 more when fewer than one character was asked for)")
    tail: Optional[int] = Field(None, ge=0, description="the last N bytes, whole characters only")

    @model_validator(mode="after")
    def _tail_or_range(self):
        if self.tail is not None and (self.offset is not None or self.limit is not None):
            raise ValueError("give either tail or offset/limit, not both")
        return self


@bp.post("/tasks", responses=answers({201: TaskOut}, 413))
def create_task(body: TaskCreate):
    """Queue a bash script; it runs when its dependencies completed and an agent has room."""
    task = task_service.create_task(**body.model_dump())
    return jsonify(to_json(TaskOut, task_views.task_json(task))), 201


@bp.post("/tasks/sweep", responses=answers({201: SweepOut}, 413))
def create_sweep(body: TaskSweep):
    """One task per combination of `params` values, each with its `{{name}}` placeholders filled in."""
    tasks = sweep_service.create_sweep(**body.model_dump())
    return jsonify(to_json(SweepOut, {"items": [task_views.task_json(t) for t in tasks]})), 201


@bp.post("/tasks/<int:task_id>/retry", responses=answers({201: RetryOut}, 404, 409, 413))
def retry_task(path: TaskPath, body: TaskRetry):
    """Re-create a failed or canceled task (body: fields to change) and every task that failed because of it."""
    task, dependents = retry_service.retry_task(path.task_id, body.model_dump(exclude_unset=True))
    return jsonify(_retry_json(task, dependents)), 201


@bp.get("/tasks/<int:task_id>/retry-preview", responses=answers({200: RetryOut}, 404, 409))
def preview_retry(path: TaskPath):
    """What a retry would re-create now: the task and its cascade, as they are (nothing changes)."""
    plan = retry_service.plan_retry(path.task_id)
    return jsonify(_retry_json(plan.task, plan.cascade))


@bp.get("/tasks", responses=answers({200: TaskPage}))
def list_tasks(query: TaskListQuery):
    """Tasks newest first, filtered, one page at a time."""
    statuses = query.status.split(",") if query.status else None
    items, total = task_service.get_task_in_page(
        page=query.page, page_size=query.page_size, statuses=statuses, name=query.name,
        template_type=query.template_type, script=query.script)
    return jsonify(to_json(TaskPage, {"items": [task_views.task_json(t) for t in items], "total": total,
                                      "page": query.page, "page_size": query.page_size}))


@bp.get("/tasks/stats", responses=answers({200: TaskStatsOut}))
def get_task_stats():
    """How many tasks are in each status (the tasks page's overview)."""
    return jsonify(to_json(TaskStatsOut, {"counts": task_stats.counts_by_status()}))


@bp.get("/tasks/<int:task_id>", responses=answers({200: TaskOut}, 404))
def get_task(path: TaskPath):
    return jsonify(to_json(TaskOut, task_views.task_json(task_service.get_task_by_id(path.task_id))))


@bp.post("/tasks/<int:task_id>/cancel", responses=answers({200: TaskOut}, 404, 409))
def cancel_task(path: TaskPath):
    """Cancel a blocked, waiting or running task (a running one is killed on its agent)."""
    return jsonify(to_json(TaskOut, task_views.task_json(task_service.cancel_task(path.task_id))))


@bp.get("/tasks/<int:task_id>/usage", responses=answers({200: UsageOut}, 404))
def get_task_usage(path: TaskPath):
    """The task's resource use over its life, from its sub-agent's heartbeats (a few thousand samples at most)."""
    task_service.get_task_by_id(path.task_id)
    return jsonify(to_json(UsageOut, {"samples": task_readings.usage_of(path.task_id)}))


@bp.get("/tasks/<int:task_id>/graph", responses=answers({200: TaskGraphOut}, 404))
def get_task_graph(path: TaskPath):
    """The task's chain: every task it depends on and every task that depends on it, transitively."""
    return jsonify(to_json(TaskGraphOut, task_graph.chain_of(path.task_id)))


@bp.get("/tasks/<int:task_id>/log", responses=answers({200: LogSliceOut}, 404))
def get_task_log(path: TaskPath, query: LogQuery):
    """The task's output as stored so far, by byte offset/limit or the last `tail` bytes.

    Invalid UTF-8 is shown as U+FFFD; `next_offset` (where to read on) is always past it."""
    task_service.get_task_by_id(path.task_id)
    page = log_service.read_task_log(path.task_id, offset=query.offset, limit=query.limit, tail=query.tail)
    return jsonify(to_json(LogSliceOut, page.to_dict()))


@bp.get("/tasks/<int:task_id>/log/raw", responses=answers({200: RAW_LOG_RESPONSE}, 404))
def get_task_log_raw(path: TaskPath, query: RawLogQuery):
    """The stored log as bytes, as far as it is stored now: a download, sent in pieces, of any size.

    Following a task: ask again from X-Log-Size with `wait_s` until X-Log-Complete is true."""
    raw = raw_log_service.read_raw_log(path.task_id, offset=query.offset, wait_s=query.wait_s)
    return Response(raw.chunks, content_type="text/plain; charset=utf-8", headers={
        "Content-Length": str(raw.size - raw.offset), "X-Content-Type-Options": "nosniff",
        "X-Log-Size": str(raw.size), "X-Log-Complete": "true" if raw.is_complete else "false",
        "Content-Disposition": f'attachment; filename="task-{path.task_id}.log"'})


def _retry_json(task: Task, dependents: list[Task]) -> dict:
    return to_json(RetryOut, {"task": task_views.task_json(task), "dependents": [task_views.task_json(t) for t in dependents]})
