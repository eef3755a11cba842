"""Server settings, typed and checked in one place (pydantic-settings).

Each setting comes from, in rising order: its default here, the environment variable
TASK_SYSTEM_<NAME> (e.g. TASK_SYSTEM_SUB_AGENT_LEASE_S=30), then a dict passed to load_config() (app.py's
flags, or create_app(config) in tests). A bad value raises SettingError naming the variable or key.
Imports only the stdlib, pydantic and pydantic-settings, so an agent box (no SQLAlchemy) can import it.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "TASK_SYSTEM_"
# TASK_SYSTEM_* variables that other programs read: the CLI's server address, the id a running task
# gets, the web UI's dev-server target, the database the tests run on (tests/pg.py). Known, so they are
# not reported as misspelt settings.
OTHER_VARIABLES = ("TASK_SYSTEM_URL", "TASK_SYSTEM_SUB_AGENT_ID", "TASK_SYSTEM_API", "TASK_SYSTEM_TEST_DATABASE")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_BOOLEANS = {"yes": True, "true": True, "1": True, "on": True, "no": False, "false": False, "0": False, "off": False}
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


@dataclass(frozen=True)
class Must:
    """What a setting's value must be, as the end of "must ...": the error when pydantic's own check fails."""
    text: str


class SettingError(ValueError):
    """A bad setting: `key` is its name (PORT), `source` where the value came from (TASK_SYSTEM_PORT, or
    PORT for an explicit override), `problem` what is wrong with it."""

    def __init__(self, key: str, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.key, self.source, self.problem = key, source, problem


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        if value.strip().lower() not in _BOOLEANS:
            raise ValueError("must be one of yes/no/true/false/1/0/on/off")
        return _BOOLEANS[value.strip().lower()]
    return value


def _not_blank(value: Optional[str]) -> Optional[str]:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _notify_urls(value: list[str]) -> list[str]:
    """Each a URL the server can send to (backend/utils/notify_urls.py; imported only when one is set, so an
    agent box, which has none, never imports the server's modules)."""
    if value:
        from backend.utils.notify_urls import check_notify_url

        for url in value:
            check_notify_url(url)
    return value


def _database_url(value: Optional[str]) -> Optional[str]:
    """A URL SQLAlchemy can parse, for a driver the server has. sqlalchemy is imported here, not at the
    top, because agents import this module without having it."""
    if value is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError("must be a database URL such as sqlite:///PATH or "
                         "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB") from None
    if url.drivername not in DATABASE_DRIVERS:
        raise ValueError(f"must use one of the drivers {', '.join(DATABASE_DRIVERS)}, "
                         f"e.g. postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("must name a database file, e.g. sqlite:////srv/task_system/task_system.db")
    return value


Port = Annotated[int, Field(ge=1, le=65535), Must("be an integer between 1 and 65535")]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False), Must("be a number of seconds greater than 0")]
Size = Annotated[int, Field(gt=0), Must("be a whole number greater than 0")]
Text = Annotated[str, AfterValidator(_not_blank), Must("be text")]
Boolean = Annotated[bool, BeforeValidator(_parse_bool), Must("be one of yes/no/true/false/1/0/on/off")]
LogLevel = Annotated[Literal[LOG_LEVELS], BeforeValidator(_upper), Must(f"be one of {', '.join(LOG_LEVELS)}")]
Token = Annotated[Optional[str], AfterValidator(_not_blank), Must("be text")]
DatabaseUrl = Annotated[Optional[str], AfterValidator(_database_url), Must("be text")]
UrlList = Annotated[list[Text], NoDecode, BeforeValidator(_split_commas), AfterValidator(_notify_urls),
                    Must("be a comma-separated list")]
Attempts = Annotated[int, Field(ge=1, le=100), Must("be a whole number between 1 and 100")]


class Settings(BaseSettings):
    """Every server setting, its default and its bounds; the descriptions become README's table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=True, extra="ignore")

    DATA_DIR: Text = Field("data", description="Database (SQLite) and logs.")
    HOST: Text = Field("127.0.0.1", description="Address to listen on.")
    PORT: Port = Field(5000, description="Port to listen on.")
    TOKEN: Token = Field(
        None, description="When set, every API call, WebSocket and agent must present it (Authorization: Bearer ...).")
    DATABASE_URL: DatabaseUrl = Field(
        None, description="SQLAlchemy URL of the database; unset: sqlite:///<DATA_DIR>/database/task_system.db. "
                          "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB works too.")
    MAIN_HEARTBEAT_INTERVAL_S: Seconds = Field(2.0, description="How often a main agent beats.")
    SUB_HEARTBEAT_INTERVAL_S: Seconds = Field(1.0, description="How often a sub-agent (one per running task) beats.")
    AGENT_OFFLINE_AFTER_S: Seconds = Field(
        6.0, description="A main agent is offline after this long without a heartbeat.")
    SUB_AGENT_LEASE_S: Seconds = Field(
        15.0, description="A running task whose sub-agent is silent this long fails if its main agent, heard "
                          "meanwhile, does not report it alive (its main agent silent too: see AGENT_LOST_AFTER_S).")
    AGENT_LOST_AFTER_S: Seconds = Field(
        600.0, description="A running task whose sub-agent and main agent are both silent (the box unreachable: "
                           "a network outage, a frozen or powered-off machine) stays running, marked 'agent "
                           "unreachable since', and fails only after this long. 600 s outlasts a router or switch "
                           "reboot and a VM migration (minutes), and is twice Slurm's SlurmdTimeout (300 s): an "
                           "outage must not kill a healthy job, whose output arrives once the network is back.")
    RESTART_GRACE_S: Seconds = Field(
        15.0, description="After the server starts, agents get this long to come back before anything is "
                          "declared lost.")
    LIVENESS_CHECK_INTERVAL_S: Seconds = Field(1.0, description="How often agents and leases are checked.")
    LONG_POLL_MAX_S: Seconds = Field(
        2.0, description="The longest a main agent's heartbeat is held open waiting for work.")
    RECENT_SUB_AGENTS_S: Seconds = Field(
        600.0, description="How long a finished sub-agent stays in the agents page's default (recent) view.")
    MAX_SCRIPT_BYTES: Size = Field(1_000_000, description="Largest task script.")
    MAX_REQUEST_BYTES: Size = Field(16 * 1024 * 1024, description="Largest request body.")
    MAX_LOG_READ_BYTES: Size = Field(4 * 1024 * 1024, description="Most task-log bytes one read returns.")
    USAGE_SAMPLES_MAX: Size = Field(
        2000, description="A task keeps about this many resource-use samples (between this and twice this); "
                          "a longer task's are thinned evenly.")
    # Each is a greenlet, not a thread (see app.py): agents keep one each; long polls and WebSockets hold theirs.
    SERVER_CONNECTIONS: Size = Field(
        4096, description="Open connections the server takes at once (gunicorn's worker_connections).")
    DB_POOL_SIZE: Size = Field(
        64, description="Database connections, made as needed; a request holds one from its first query to its end.")
    LOG_LEVEL: LogLevel = Field("INFO", description="Least level logged.")
    RUN_BACKGROUND_JOBS: Boolean = Field(
        True, description="Run the liveness checks (off only for in-process tests that drive them by hand).")
    NOTIFY_URLS: UrlList = Field(
        default_factory=list, description="Comma-separated URLs told when any task finishes, besides each task's "
                                          "own `notify` (http(s): a JSON POST; other schemes: Apprise).")
    NOTIFY_ATTEMPTS: Attempts = Field(4, description="Sends of one notification before it is given up (logged).")
    NOTIFY_TIMEOUT_S: Seconds = Field(10.0, description="The longest one send waits for its endpoint.")
    NOTIFY_BACKOFF_S: Seconds = Field(
        2.0, description="Wait before a notification's second send; doubled before each one after.")


DEFAULTS: dict[str, Any] = {name: field.get_default(call_default_factory=True)
                            for name, field in Settings.model_fields.items()}
KNOWN_VARIABLES = frozenset({ENV_PREFIX + name for name in Settings.model_fields} | set(OTHER_VARIABLES))


def load_config(overrides: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Every setting, checked (SettingError if one is bad), plus the overrides that are not settings
    (Flask keys such as TESTING or SQLALCHEMY_*), unchanged. DATABASE_URL is never None here."""
    overrides = dict(overrides or {})
    known = {key: value for key, value in overrides.items() if key in Settings.model_fields}
    try:
        values = Settings(**known).model_dump()
    except ValidationError as exc:
        raise _setting_error(exc.errors()[0], known) from None
    values["DATABASE_URL"] = values["DATABASE_URL"] or default_database_url(values["DATA_DIR"])
    return {**overrides, **values}


def default_database_url(data_dir: str) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'database' / 'task_system.db'}"


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, Optional[str]]]:
    """(name, closest known name or None) for each TASK_SYSTEM_* variable that nothing reads: a misspelling."""
    known = {name[len(ENV_PREFIX):]: name for name in KNOWN_VARIABLES}
    # Matched without the prefix, which every name shares and would make anything look close.
    return [(name, next((known[m] for m in difflib.get_close_matches(name[len(ENV_PREFIX):], known, n=1)), None))
            for name in sorted(environ) if name.startswith(ENV_PREFIX) and name not in KNOWN_VARIABLES]


def _setting_error(error: Mapping[str, Any], overrides: Mapping[str, Any]) -> SettingError:
    key = str(error["loc"][0])
    source = key if key in overrides else ENV_PREFIX + key
    if error["type"] == "value_error":
        problem = str(error["ctx"]["error"])
    else:
        problem = "must " + next(m.text for m in Settings.model_fields[key].metadata if isinstance(m, Must))
    return SettingError(key, source, f"{problem}{_shown(key, error['input'])}")


def _shown(key: str, value: Any) -> str:
    """' (got VALUE)', with a token left out and a database password hidden."""
    if key in ("TOKEN", "NOTIFY_URLS"):  # notification URLs carry tokens too
        return ""
    if key == "DATABASE_URL" and isinstance(value, str):
        value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)
    return f" (got {value!r})"
