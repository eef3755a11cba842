"""Request models shared by the api blueprints: strict types, non-blank strings, path ids."""
from __future__ import annotations

import re
from typing import Annotated, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.utils.notify_urls import check_notify_url


def _not_blank(value: str) -> str:
    """Has a visible character, and no NUL (which PostgreSQL's text cannot hold: refused on both databases)."""
    if not value.strip():
        raise ValueError("must not be blank")
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]


class Body(BaseModel):
    """JSON bodies: exact types (no "3" for 3), unknown keys refused so typos are caught."""

    model_config = ConfigDict(strict=True, extra="forbid")


class TaskPath(BaseModel):
    task_id: int = Field(ge=1, le=2**62)


class TemplatePath(BaseModel):
    template_id: int = Field(ge=1, le=2**62)


class AgentPath(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)


ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")  # and every TASK_* name
MAX_ENV_ENTRIES, MAX_ENV_VALUE = 500, 65_536
MAX_NOTIFY_URLS = 20


def check_env(env: dict[str, str]) -> dict[str, str]:
    """Names a shell can export, that are not the system's own (the agent sets those), values without NUL."""
    for key, value in env.items():
        if not ENV_KEY.fullmatch(key):
            raise ValueError(f"env key {key!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
        if key.startswith("TASK_") or key in RESERVED_ENV:
            raise ValueError(f"env key {key!r} is set by the system and cannot be overridden")
        if "\0" in value or len(value) > MAX_ENV_VALUE:
            raise ValueError(f"env value of {key!r} holds a NUL byte or is over {MAX_ENV_VALUE} characters")
    return env


def _check_work_dir(value: Optional[str]) -> Optional[str]:
    if value is not None and "\0" in value:
        raise ValueError("work_dir holds a NUL byte")
    return value


EnvMap = Annotated[dict[str, str], Field(max_length=MAX_ENV_ENTRIES), AfterValidator(check_env)]
WorkDir = Annotated[Optional[str], Field(min_length=1, max_length=1000), AfterValidator(_check_work_dir)]
NotifyUrl = Annotated[str, Field(min_length=4, max_length=2000), AfterValidator(check_notify_url)]  # http(s) or Apprise


class TaskRunSettings(Body):
    """How a task runs besides its script; shared by create, retry (as overrides) and sweep."""

    env: EnvMap = Field(default_factory=dict, description="environment variables for the script")
    work_dir: WorkDir = Field(None, description="absolute, or relative to the agent's --work-dir")
    time_limit_s: int = Field(0, ge=0, le=10 * 365 * 86400, description="0 = none")
    notify: list[NotifyUrl] = Field(default_factory=list, max_length=MAX_NOTIFY_URLS,
                                    description="URLs told when it finishes: http(s) get JSON, others go through Apprise")
