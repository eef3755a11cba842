"""One exception type for everything the server refuses or that keeps the client from reaching it."""
from __future__ import annotations

from typing import Optional


class TaskSystemError(Exception):
    """A refused request: the server's error `code` and `message`, and the HTTP `status` (None when no
    answer came: see ServerUnreachable)."""

    def __init__(self, code: str, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def __str__(self) -> str:
        return self.message


class ServerUnreachable(TaskSystemError):
    """No answer from the server (refused, unknown host, timed out), after the client's few retries."""

    def __init__(self, url: str, reason: str):
        super().__init__("unreachable", f"cannot reach the task server at {url} ({reason})")
        self.url, self.reason = url, reason
