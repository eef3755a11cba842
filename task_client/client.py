"""`Client`: the task_system REST API for Python scripts. Every method returns the server's JSON as plain
dicts (see results.py for their keys) and raises TaskSystemError when the server refuses."""
from __future__ import annotations

import itertools
import os
import time
from typing import Any, Iterable, Iterator, Optional, Union

from task_client.follow import decode_utf8, iter_log_bytes
from task_client.results import FINISHED, Agent, RetryResult, Task
from task_client.transport import RETRY_DELAYS_S, TIMEOUT_S, Transport

MAX_PAGE_SIZE = 200
WAIT_POLL_S = (0.2, 0.5, 1.0, 2.0)  # wait() asks this often, slowing down to the last value


def current_task_id() -> Optional[int]:
    """The id of the task this process runs in (TASK_ID, set by the agent), else None."""
    value = os.environ.get("TASK_ID", "")
    return int(value) if value.isdigit() else None


class Client:
    """The server at `url` (else TASK_SYSTEM_URL, else TASK_SERVER_URL, else http://127.0.0.1:5000), with
    `token` (else TASK_SYSTEM_TOKEN). Connection errors are retried a few times; HTTP errors never."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, *, timeout_s: float = TIMEOUT_S,
                 retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S):
        self._http = Transport(url, token, timeout_s, retry_delays_s)

    @property
    def url(self) -> str:
        return self._http.url

    def submit(self, script: str, **fields: Any) -> Task:
        """Queue `script` (bash text). Fields as in the API: name, template_type, priority, cpu_cores,
        gpu_count, gpu_memory, depends_on, env, work_dir, time_limit_s, notify."""
        body = {"name": "task", "template_type": "custom", **fields, "script_content": script}
        return self._http.json("POST", "/api/tasks", json=body)

    def get(self, task_id: int) -> Task:
        return self._http.json("GET", f"/api/tasks/{int(task_id)}")

    def list(self, *, limit: Optional[int] = None, **filters: Any) -> list[Task]:
        """Tasks newest first, every page (or the first `limit`). Filters: status (a name, a comma-separated
        list or a list), name (substring), template_type, script (substring of the script)."""
        if isinstance(filters.get("status"), (list, tuple, set, frozenset)):
            filters["status"] = ",".join(filters["status"])
        tasks: list[Task] = []
        page_size = min(MAX_PAGE_SIZE, limit or MAX_PAGE_SIZE)
        for page in range(1, 1_000_000):
            answer = self._http.json("GET", "/api/tasks", params={**filters, "page": page, "page_size": page_size})
            tasks += answer["items"]
            if len(answer["items"]) < page_size or (limit and len(tasks) >= limit):
                break
        return tasks[:limit] if limit else tasks

    def cancel(self, task_id: int) -> Task:
        """Cancel a blocked, waiting or running task (409 once it has finished)."""
        return self._http.json("POST", f"/api/tasks/{int(task_id)}/cancel")

    def retry(self, task_id: int, **overrides: Any) -> RetryResult:
        """Run a failed or canceled task again (fields in `overrides` changed), with its cascade:
        {"task": new task, "dependents": new copies of the tasks that failed because of it}."""
        return self._http.json("POST", f"/api/tasks/{int(task_id)}/retry", json=overrides)

    def sweep(self, script: str, params: dict[str, Iterable[Any]], **fields: Any) -> list[Task]:
        """One task per combination of `params` values; `{{name}}` in script and name is filled in."""
        body = {"name": "sweep", "template_type": "custom", **fields, "script_content": script,
                "params": {key: [str(v) for v in values] for key, values in params.items()}}
        return self._http.json("POST", "/api/tasks/sweep", json=body)["items"]

    def wait(self, task_id: int, timeout: Optional[float] = None) -> Task:
        """The task once it has finished (completed, failed or canceled); TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for attempt in itertools.count():
            task = self.get(task_id)
            if task["status"] in FINISHED:
                return task
            pause = WAIT_POLL_S[min(attempt, len(WAIT_POLL_S) - 1)]
            if deadline is not None:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"task {task_id} is still {task['status']} after {timeout} s")
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
        raise AssertionError("not reached")

    def logs(self, task_id: int, follow: bool = False) -> Iterator[str]:
        """The task's output as text (invalid UTF-8 as U+FFFD); `follow`: as it grows, until the task ends."""
        return decode_utf8(self.log_bytes(task_id, follow=follow))

    def log_bytes(self, task_id: int, follow: bool = False, offset: int = 0) -> Iterator[bytes]:
        """The task's output exactly as stored, from byte `offset`; resumes by itself after a dropped
        connection or a server restart."""
        return iter_log_bytes(self._http, int(task_id), offset=offset, follow=follow)

    def agents(self) -> list[Agent]:
        """Every main agent, each with its `sub_agents`."""
        return self._http.json("GET", "/api/agents")

    def health(self) -> dict:
        return self._http.json("GET", "/api/health")
