"""How a task is shown outside: the task JSON that the API answers and that webhooks carry."""
from __future__ import annotations

from backend.models import Task
from backend.services import last_heard, logs, task_readings
from backend.utils.time import isoformat


def task_json(task: Task) -> dict:
    """The task's fields, `log_size` (the bytes of output stored: a stat of its log file) and
    `agent_unreachable_since` (a running task whose box the server cannot hear, else null), and its
    `progress` as last read (services/task_readings.py: not written yet, or stored)."""
    return {**task.to_dict(), "log_size": logs.log_size(task.id),
            "agent_unreachable_since": isoformat(last_heard.unreachable_since(task.id)),
            "progress": task_readings.progress_of(task.id, task.progress)}
