"""Server configuration in one class. Every attribute can be overridden by an environment
variable named TASK_SYSTEM_<ATTRIBUTE> (e.g. TASK_SYSTEM_SUB_AGENT_LEASE_S=30), or by a dict
passed to create_app(config). Tests shrink the intervals; users get the seed's 2 s / 1 s."""
from __future__ import annotations

import os
from typing import Any, Optional

ENV_PREFIX = "TASK_SYSTEM_"


class Config:
    DATA_DIR: str = "data"
    HOST: str = "127.0.0.1"
    PORT: int = 5000
    # When set, every API call, WebSocket and agent must present it (Authorization: Bearer ...).
    TOKEN: Optional[str] = None

    MAIN_HEARTBEAT_INTERVAL_S: float = 2.0
    SUB_HEARTBEAT_INTERVAL_S: float = 1.0
    # A main agent is offline after this long without a heartbeat (a few missed beats).
    AGENT_OFFLINE_AFTER_S: float = 6.0
    # A running task whose sub-agent is silent this long (and not reported alive by its main agent) fails.
    SUB_AGENT_LEASE_S: float = 15.0
    # After the server itself starts, agents get this long to come back before anything is declared lost.
    RESTART_GRACE_S: float = 15.0
    LIVENESS_CHECK_INTERVAL_S: float = 1.0
    # The longest a main agent's heartbeat is held open waiting for work (long poll).
    LONG_POLL_MAX_S: float = 2.0
    # How long a finished sub-agent stays in the agents page's default ("recent") view.
    RECENT_SUB_AGENTS_S: float = 600.0

    MAX_SCRIPT_BYTES: int = 1_000_000
    MAX_REQUEST_BYTES: int = 16 * 1024 * 1024
    MAX_LOG_READ_BYTES: int = 4 * 1024 * 1024
    # Open connections the server takes at once (agents keep one each; long polls and WebSockets hold
    # theirs): gunicorn's worker_connections. Each is a greenlet, not a thread (see app.py).
    SERVER_CONNECTIONS: int = 4096
    # SQLite connections, made as needed. A request holds one from its first query to its end.
    DB_POOL_SIZE: int = 64
    LOG_LEVEL: str = "INFO"
    # Start the background liveness thread (off for in-process unit tests that drive it by hand).
    RUN_BACKGROUND_JOBS: bool = True


def load_config(overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Defaults from Config, then TASK_SYSTEM_* environment variables, then explicit overrides."""
    values: dict[str, Any] = {}
    for key, default in vars(Config).items():
        if not key.isupper():
            continue
        raw = os.environ.get(ENV_PREFIX + key)
        values[key] = default if raw is None else _cast(raw, Config.__annotations__.get(key, "str"))
    values.update(overrides or {})
    return values


def _cast(raw: str, annotation: str) -> Any:
    if "bool" in annotation:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "int" in annotation:
        return int(raw)
    if "float" in annotation:
        return float(raw)
    return raw or None
