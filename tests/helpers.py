"""Test helpers: wait for a condition with a deadline (never a bare sleep), a small API client, the
server's logged events."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import requests


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.05,
             message: str = "condition") -> Any:
    """Poll predicate until it returns a truthy value; return it, or fail with the last value seen."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = predicate()
        except Exception as exc:  # a predicate may race with a starting process
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {message}; last value: {last!r}")
        time.sleep(interval_s)


def server_events(data_dir: Path, event: str, **fields: Any) -> list[dict]:
    """The events named `event` in a server's system log (data_dir/logs/system/server.log), oldest
    first, that carry every one of `fields`."""
    lines = (data_dir / "logs" / "system" / "server.log").read_text().splitlines()
    return [e for e in map(json.loads, lines)
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]


class Api:
    """Thin JSON client for the REST contract, used by tests (not by agents)."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.session.request(method, self.base_url + path, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def create_task(self, script: str, **fields) -> dict:
        body = {"name": fields.pop("name", "t"), "template_type": fields.pop("template_type", "custom"),
                "script_content": script, **fields}
        resp = self.post("/api/tasks", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def task(self, task_id: int) -> dict:
        resp = self.get(f"/api/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def log(self, task_id: int) -> bytes:
        """The whole stored log, read in pages, as bytes (utf-8 of the text the API answers)."""
        out, offset = [], 0
        while True:
            page = self.get(f"/api/tasks/{task_id}/log", params={"offset": offset, "limit": 1 << 20}).json()
            out.append(page["data"])
            if page["next_offset"] >= page["size"]:
                return "".join(out).encode("utf-8")
            offset = page["next_offset"]

    def wait_status(self, task_id: int, statuses, timeout_s: float = 20.0) -> dict:
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        return wait_for(lambda: (t := self.task(task_id))["status"] in statuses and t,
                        timeout_s, message=f"task {task_id} to reach {sorted(statuses)}")
