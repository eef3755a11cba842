"""The client's one way to the server: base URL and token from the environment, JSON errors turned into
TaskSystemError, and a few retries with backoff on connection errors only (never on an HTTP error)."""
from __future__ import annotations

import os
import re
import time
from typing import Any, Optional

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from task_client.errors import ServerUnreachable, TaskSystemError

DEFAULT_URL = "http://127.0.0.1:5000"
URL_VARIABLES = ("TASK_SYSTEM_URL", "TASK_SERVER_URL")  # the second is set inside every running task
TOKEN_VARIABLE = "TASK_SYSTEM_TOKEN"
RETRY_DELAYS_S = (0.25, 0.5, 1.0)  # then give up: a person is waiting
TIMEOUT_S = 30.0


def resolve_url(url: Optional[str] = None) -> str:
    """`url`, else TASK_SYSTEM_URL, else TASK_SERVER_URL, else http://127.0.0.1:5000."""
    for candidate in (url, *(os.environ.get(name) for name in URL_VARIABLES)):
        if candidate:
            return candidate.rstrip("/")
    return DEFAULT_URL


class Transport:
    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout_s: float = TIMEOUT_S,
                 retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S):
        self.url, self.timeout_s, self.retry_delays_s = resolve_url(url), timeout_s, retry_delays_s
        if not re.match(r"^https?://[^/]", self.url):
            raise TaskSystemError("bad_url", f"the server URL must start with http:// or https:// (got {self.url!r})")
        self.session = requests.Session()
        token = token if token is not None else os.environ.get(TOKEN_VARIABLE)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def json(self, method: str, path: str, **kw) -> Any:
        return self.request(method, path, **kw).json()

    def request(self, method: str, path: str, *, timeout: Optional[float] = None, **kw) -> requests.Response:
        """Send one request; retry it only while it cannot have reached the server (any GET may be repeated)."""
        for delay in (*self.retry_delays_s, None):
            try:
                resp = self.session.request(method, self.url + path, timeout=timeout or self.timeout_s, **kw)
            except requests.ConnectionError as exc:
                if delay is None or not (method == "GET" or _never_sent(exc)):
                    raise ServerUnreachable(self.url, connection_reason(exc)) from None
                time.sleep(delay)
                continue
            except requests.Timeout:
                raise ServerUnreachable(self.url, "no answer in time") from None
            except requests.RequestException as exc:
                raise TaskSystemError("request_failed", f"request to {self.url} failed: {exc}") from None
            if resp.status_code >= 400:
                raise error_from(resp)
            return resp
        raise AssertionError("unreachable")


def _never_sent(exc: requests.ConnectionError) -> bool:
    """The connection was never made, so the request never reached the server: safe to send again."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def connection_reason(exc: Exception) -> str:
    """The useful end of requests' long message: 'Connection refused', 'Name or service not known', ..."""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    if found:
        return found[-1].strip()
    return "connection lost" if "Remote" in str(exc) or "aborted" in str(exc) else "connection failed"


def error_from(resp: requests.Response) -> TaskSystemError:
    """The server's {"error": {"code", "message"}} as a TaskSystemError; anything else as its HTTP status."""
    try:
        error = resp.json()["error"]
        return TaskSystemError(str(error["code"]), str(error["message"]), resp.status_code)
    except (ValueError, KeyError, TypeError):
        text = " ".join(resp.text.split())[:200]
        return TaskSystemError(f"http_{resp.status_code}", f"HTTP {resp.status_code} from {resp.url}: {text}",
                               resp.status_code)
