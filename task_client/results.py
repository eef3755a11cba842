"""The shapes of the server's answers. They are plain dicts (the JSON as the server sent it); these
TypedDicts only name their keys for editors and type checkers. The contract lists every field."""
from __future__ import annotations

from typing import Optional, TypedDict


class Progress(TypedDict):
    percent: Optional[float]
    current: Optional[float]
    total: Optional[float]
    eta_s: Optional[float]
    rate: Optional[float]
    updated_time: str


class Task(TypedDict, total=False):
    id: int
    name: str
    template_type: str
    priority: int
    depends_on: list[int]
    dependents: list[int]
    status: str  # blocked, waiting, running, completed, failed, canceled
    status_reason: Optional[str]
    exit_code: Optional[int]
    created_time: str
    start_time: Optional[str]
    end_time: Optional[str]
    execution_time: Optional[float]
    script_content: str
    cpu_cores: int
    gpu_count: int
    gpu_memory: int
    gpu_ids: list[int]
    env: dict[str, str]
    work_dir: Optional[str]
    time_limit_s: int
    notify: list[str]
    agent_id: Optional[str]
    log_file: Optional[str]
    log_size: int
    progress: Optional[Progress]
    retry_of: Optional[int]
    retried_as: Optional[int]


class RetryResult(TypedDict):
    task: Task  # the new task
    dependents: list[Task]  # new copies of the tasks that failed because of the old one


class Agent(TypedDict, total=False):
    id: str
    name: str
    type: str  # main or sub
    status: str  # online or offline
    hostname: str
    cpu_cores: int
    available_cpu_cores: int
    cpu_usage: float
    memory_usage: float
    gpu_info: list[dict]
    task_id: Optional[int]
    draining: bool
    disk_problem: Optional[str]
    sub_agents: list["Agent"]


FINISHED = frozenset({"completed", "failed", "canceled"})
