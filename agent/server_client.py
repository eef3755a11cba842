"""The agents' only way to talk to the server: one method per protocol call, protocol objects in and out.

Retry lives here and nowhere else: connection errors, timeouts, 429 and 5xx are retried with capped,
jittered exponential backoff for up to `retry_for_s` seconds (forever when None), then
`ServerUnavailable` is raised so the caller's loop can do its local duties and try again later.
Any other 4xx is the server's considered answer and raises `ServerRejected` at once.

HTTP goes through urllib3 (what requests is built on), one kept-alive connection per client. A
sub-agent is a fork of the main agent and makes a handful of requests in its short life: every
object a call touches costs the child a copy-on-write page fault, and requests' extra layers made
its first two calls ~14 ms of CPU against ~6 ms here (bench: throughput). Proxies from the
environment (http_proxy, https_proxy, no_proxy) and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are honoured
as requests did.
"""
from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from typing import Any, Optional, TypeVar
from urllib.parse import urlencode, urlsplit

import structlog
import urllib3

from task_common.protocol import (
    MAIN_HEARTBEAT_PATH, OUTPUT_CONTENT_TYPE, REGISTER_MAIN_PATH, REGISTER_SUB_PATH, SUB_HEARTBEAT_PATH,
    TOKEN_HEADER, MainHeartbeat, MainHeartbeatReply, Message, RegisterMain, RegisterMainReply, RegisterSub,
    RegisterSubReply, SubHeartbeat, SubHeartbeatReply,
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
        self.headers = {TOKEN_HEADER: f"Bearer {token}"} if token else {}
        self.pool = _pool_for(self.base_url)

    def register_main(self, message: RegisterMain) -> RegisterMainReply:
        return self._call(REGISTER_MAIN_PATH, RegisterMainReply, _json(message))

    def main_heartbeat(self, message: MainHeartbeat) -> MainHeartbeatReply:
        return self._call(MAIN_HEARTBEAT_PATH, MainHeartbeatReply, _json(message), wait_s=message.wait_s)

    def register_sub(self, message: RegisterSub) -> RegisterSubReply:
        return self._call(REGISTER_SUB_PATH, RegisterSubReply, _json(message))

    def sub_heartbeat(self, message: SubHeartbeat, output: bytes) -> SubHeartbeatReply:
        """The message in the query, the task's output as the raw body (no base64, no JSON)."""
        query = urlencode({k: v for k, v in message.to_dict().items() if v is not None}, doseq=True)
        return self._call(f"{SUB_HEARTBEAT_PATH}?{query}", SubHeartbeatReply, (output, OUTPUT_CONTENT_TYPE))

    def close(self) -> None:
        self.pool.clear()

    def _call(self, path: str, reply_type: type[Reply], body: tuple[bytes, str], wait_s: float = 0.0) -> Reply:
        """POST `body` (bytes, content type) once per attempt until a 2xx (parsed), a 4xx
        (ServerRejected) or the window ends."""
        started = time.monotonic()
        attempt = 0
        while True:
            problem = self._post_once(path, wait_s, body)
            if not isinstance(problem, str):
                return self._parse(problem, reply_type)
            attempt += 1
            delay = self._backoff_delay(attempt)
            if self.retry_for_s is not None and time.monotonic() - started + delay > self.retry_for_s:
                raise ServerUnavailable(f"{path}: {problem}")
            log.warning("server_request_retried", path=path, attempt=attempt, problem=problem,
                        delay_s=round(delay, 2))
            time.sleep(delay)

    def _post_once(self, path: str, wait_s: float, body: tuple[bytes, str]):
        """The response to keep, or a short description of a retryable failure."""
        data, content_type = body
        try:
            response = self.pool.request(
                "POST", self.base_url + path, body=data, headers={**self.headers, "Content-Type": content_type},
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S + wait_s),
                retries=False, redirect=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return type(exc).__name__
        if response.status == 429 or response.status >= 500:
            return f"HTTP {response.status}"
        return response

    def _parse(self, response: urllib3.BaseHTTPResponse, reply_type: type[Reply]) -> Reply:
        if response.status >= 400:
            code, text = _error_of(response)
            raise ServerRejected(response.status, code, text)
        return reply_type.from_dict(json.loads(response.data))

    def _backoff_delay(self, attempt: int) -> float:
        """Full-jitter-ish: between half and all of the capped exponential step."""
        step = min(self.max_delay_s, RETRY_BASE_DELAY_S * 2 ** (attempt - 1))
        return step * random.uniform(0.5, 1.0)


def _json(message: Message) -> tuple[bytes, str]:
    return json.dumps(message.to_dict()).encode(), "application/json"


def _pool_for(base_url: str) -> urllib3.PoolManager:
    """One kept-alive connection to the server: through the environment's proxy unless no_proxy
    names the host (as requests reads them), verified against the CA bundle requests would use."""
    host = urlsplit(base_url).hostname or ""
    ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
    options: dict[str, Any] = {"num_pools": 1, "maxsize": 1, "ca_certs": ca_certs}
    proxy = None if urllib.request.proxy_bypass_environment(host) else \
        urllib.request.getproxies_environment().get(urlsplit(base_url).scheme)
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def _error_of(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    try:
        error = json.loads(response.data).get("error", {})
        return str(error.get("code", "http_error")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return "http_error", response.data[:200].decode("utf-8", errors="replace")
