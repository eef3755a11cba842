"""The agents' only way to talk to the server: one method per protocol call, protocol objects in and out.

Retry lives here and nowhere else: connection errors, timeouts, 429 and 5xx are retried with capped,
jittered exponential backoff for up to `retry_for_s` seconds (forever when None), then
`ServerUnavailable` is raised so the caller's loop can do its local duties and try again later.
Any other 4xx is the server's considered answer and raises `ServerRejected` at once.
"""
from __future__ import annotations

import os
import random
import time
from typing import Any, Optional, TypeVar

import requests
import structlog

from backend.utils.protocol import (
    MAIN_HEARTBEAT_PATH, OUTPUT_CONTENT_TYPE, REGISTER_MAIN_PATH, REGISTER_SUB_PATH, SUB_HEARTBEAT_PATH,
    SUB_OUTPUT_PATH, TOKEN_HEADER, MainHeartbeat, MainHeartbeatReply, Message, OutputUpload, OutputUploadReply,
    RegisterMain, RegisterMainReply, RegisterSub, RegisterSubReply, SubHeartbeat, SubHeartbeatReply,
)

log = structlog.get_logger()

RETRY_BASE_DELAY_S = 0.2
RETRY_MAX_DELAY_S = 30.0
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0  # plus the long-poll wait a heartbeat asked for

Reply = TypeVar("Reply", bound=Message)


class ServerError(Exception):
    """Base of everything ServerClient raises."""


class ServerUnavailable(ServerError):
    """The server could not be reached (or kept failing) for the whole retry window."""


class ServerRejected(ServerError):
    """The server answered with a 4xx other than 429: retrying the same message will not help."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class ServerClient:
    """POSTs protocol messages as JSON, with the bearer token, and parses the replies."""

    def __init__(self, base_url: str, token: Optional[str] = None, *,
                 max_delay_s: float = RETRY_MAX_DELAY_S, retry_for_s: Optional[float] = None):
        self.base_url = base_url.rstrip("/")
        self.max_delay_s = max_delay_s
        self.retry_for_s = retry_for_s
        self.session = requests.Session()
        # Read proxy and CA settings from the environment once, not on every request (~2 ms each).
        self.session.proxies = requests.utils.get_environ_proxies(self.base_url)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False
        if token:
            self.session.headers[TOKEN_HEADER] = f"Bearer {token}"

    def register_main(self, message: RegisterMain) -> RegisterMainReply:
        return self._call(REGISTER_MAIN_PATH, RegisterMainReply, json=message.to_dict())

    def main_heartbeat(self, message: MainHeartbeat) -> MainHeartbeatReply:
        return self._call(MAIN_HEARTBEAT_PATH, MainHeartbeatReply, wait_s=message.wait_s, json=message.to_dict())

    def register_sub(self, message: RegisterSub) -> RegisterSubReply:
        return self._call(REGISTER_SUB_PATH, RegisterSubReply, json=message.to_dict())

    def sub_heartbeat(self, message: SubHeartbeat) -> SubHeartbeatReply:
        return self._call(SUB_HEARTBEAT_PATH, SubHeartbeatReply, json=message.to_dict())

    def upload_output(self, upload: OutputUpload, raw: bytes) -> OutputUploadReply:
        """Bulk output: the bytes as the body, where they go in the query (no base64, no JSON)."""
        return self._call(SUB_OUTPUT_PATH, OutputUploadReply, params=upload.to_dict(), data=raw,
                          headers={"Content-Type": OUTPUT_CONTENT_TYPE})

    def close(self) -> None:
        self.session.close()

    def _call(self, path: str, reply_type: type[Reply], wait_s: float = 0.0, **request: Any) -> Reply:
        """POST (`request`: the body and query for requests) once per attempt until a 2xx (parsed),
        a 4xx (ServerRejected) or the window ends."""
        started = time.monotonic()
        attempt = 0
        while True:
            problem = self._post_once(path, wait_s, request)
            if not isinstance(problem, str):
                return self._parse(problem, reply_type)
            attempt += 1
            delay = self._backoff_delay(attempt)
            if self.retry_for_s is not None and time.monotonic() - started + delay > self.retry_for_s:
                raise ServerUnavailable(f"{path}: {problem}")
            log.warning("server_request_retried", path=path, attempt=attempt, problem=problem,
                        delay_s=round(delay, 2))
            time.sleep(delay)

    def _post_once(self, path: str, wait_s: float, request: dict[str, Any]):
        """The response to keep, or a short description of a retryable failure."""
        try:
            response = self.session.post(self.base_url + path, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S + wait_s),
                                         **request)
        except (requests.ConnectionError, requests.Timeout) as exc:
            return type(exc).__name__
        if response.status_code == 429 or response.status_code >= 500:
            return f"HTTP {response.status_code}"
        return response

    def _parse(self, response: requests.Response, reply_type: type[Reply]) -> Reply:
        if response.status_code >= 400:
            code, text = _error_of(response)
            raise ServerRejected(response.status_code, code, text)
        return reply_type.from_dict(response.json())

    def _backoff_delay(self, attempt: int) -> float:
        """Full-jitter-ish: between half and all of the capped exponential step."""
        step = min(self.max_delay_s, RETRY_BASE_DELAY_S * 2 ** (attempt - 1))
        return step * random.uniform(0.5, 1.0)


def _error_of(response: requests.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error", {})
        return str(error.get("code", "http_error")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return "http_error", response.text[:200]
