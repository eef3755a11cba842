"""Protocol 1's sub-agent messages: what sub-agents forked by the previous release still send.

A main agent restarted after an upgrade adopts the sub-agents the old code forked (agent/main_agent_subs.py);
they keep running the old code in memory until their task ended and its output is delivered. So the
server keeps these routes (backend/api/protocol.py, backend/services/sub_heartbeats.py) for one
release; they answer with protocol 2's SubHeartbeatReply, whose fields protocol 1 reads the same.
Delete this module, its routes and its handler one release after protocol 2.
"""
from __future__ import annotations

import base64
import binascii
from typing import Optional

from pydantic import Field, PrivateAttr, model_validator

from task_common.protocol import Count, Message, ProcessUsage, ReturnCode

PROTOCOL_1 = 1
SUB_HEARTBEAT_V1_PATH = "/api/agent-protocol/sub/heartbeat"  # SubHeartbeatV1 as JSON
SUB_OUTPUT_V1_PATH = "/api/agent-protocol/sub/output"  # raw bytes; OutputUploadV1 in the query


class OutputChunk(Message):
    """Protocol 1: bytes of task output starting at byte `offset` of the task's log (data is base64)."""

    offset: int = Field(ge=0)
    data: str = ""
    _raw: Optional[bytes] = PrivateAttr(default=None)  # decoded once, at validation

    @model_validator(mode="after")
    def _is_base64(self) -> "OutputChunk":
        if self._raw is None:
            try:
                self._raw = base64.b64decode(self.data, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data is not valid base64: {exc}") from None
        return self

    @classmethod
    def from_bytes(cls, offset: int, raw: bytes) -> "OutputChunk":
        chunk = cls(offset=offset)  # validates the offset; the data below is base64 by construction
        chunk.data, chunk._raw = base64.b64encode(raw).decode("ascii"), bytes(raw)
        return chunk

    def raw(self) -> bytes:
        return self._raw if self._raw is not None else base64.b64decode(self.data, validate=True)


class SubHeartbeatV1(Message):
    """Protocol 1's heartbeat: usage, output chunks and the end, as JSON. Answered with SubHeartbeatReply."""

    protocol_version: int = PROTOCOL_1
    sub_agent_id: str
    task_id: Count
    usage: ProcessUsage = ProcessUsage()
    chunks: list[OutputChunk] = []
    returncode: Optional[ReturnCode] = None
    final_size: Optional[Count] = None


class OutputUploadV1(Message):
    """Protocol 1's raw upload (query parameters; the body is the bytes). Answered with SubHeartbeatReply,
    of which protocol 1 reads log_size and cancel."""

    protocol_version: int = PROTOCOL_1
    sub_agent_id: str
    task_id: Count
    offset: Count
