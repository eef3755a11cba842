"""Request models shared by the api blueprints: strict types, non-blank strings, path ids."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
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
