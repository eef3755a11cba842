"""How a task is shown outside: the task JSON that the API answers and that webhooks carry."""
from __future__ import annotations

from backend.models import Task
from backend.services import last_heard, logs
from backend.utils.time import isoformat


def task_json(task: Task) -> dict:
    """The task's fields, `log_size` (the bytes of output stored: a stat of its log file) and
    `agent_unreachable_since` (a running task whose box the server cannot hear, else null)."""
    return {**task.to_dict(), "log_size": logs.log_size(task.id),
            "agent_unreachable_since": isoformat(last_heard.unreachable_since(task.id))}
