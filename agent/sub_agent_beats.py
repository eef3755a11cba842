"""What a sub-agent sends once registered (a part of SubAgent, agent/sub_agent.py): heartbeats.

Each carries the task's usage, the output past what the server holds as the raw request body (at
most `max_bytes`), and once the end is fixed, the end. The server answers the size it stores:
everything past it is sent again, everything below it is dropped from the spool
(agent/output_spool.py), so the agent's disk holds only what the server lacks.

A beat is due each interval (usage, liveness), OUTPUT_FLUSH_INTERVAL_S after new output, at once
while a backlog is being sent, and at once when the end was fixed.
"""
from __future__ import annotations

import time
from typing import Optional

import structlog

from agent.output_spool import OutputSpool
from agent.server_client import ServerClient, ServerUnavailable
from agent.spool import TaskEnd
from task_common.protocol import ProcessUsage, SubHeartbeat, SubHeartbeatReply

log = structlog.get_logger()

MAX_BEAT_BYTES = 8 * 1024 * 1024  # output per beat; under the server's default MAX_REQUEST_BYTES (16 MiB)
MIN_BEAT_BYTES = 4 * 1024  # a server that refuses (413) beats this small is misconfigured: we keep trying
OUTPUT_FLUSH_INTERVAL_S = 0.2  # new output is sent at most this often (usage keeps its own interval)


class Beats:
    def __init__(self, client: ServerClient, sub_agent_id: str, task_id: int, *, interval_s: float,
                 flush_s: float = OUTPUT_FLUSH_INTERVAL_S):
        self.client, self.sub_agent_id, self.task_id = client, sub_agent_id, task_id
        self.interval_s, self.flush_s = interval_s, flush_s
        self.acked = 0  # bytes the server holds
        self.max_bytes = MAX_BEAT_BYTES
        self.backlog = False  # the last beat was full and the server took it: send the next one at once
        self.has_sent_end = False  # a beat with the end got its answer (not finished yet: output missing)
        self.usage, self.usage_at = ProcessUsage(), float("-inf")
        self.last_sent = self.last_output_sent = float("-inf")
        self.queue_note: Optional[str] = None  # the note to send (None: no news), until a reply came
        self.queue_note_sent: Optional[str] = None

    def set_queue_note(self, note: Optional[str]) -> None:
        """Why the task does not run yet (a Slurm job's pending reason); sent once per change."""
        if note is not None and note != self.queue_note_sent:
            self.queue_note = note

    def is_due(self, size: int, end: Optional[TaskEnd]) -> bool:
        if self.backlog or (end is not None and not self.has_sent_end):
            return True
        now = time.monotonic()
        if size > self.acked and now - self.last_output_sent >= self.flush_s:
            return True
        return now - self.last_sent >= self.interval_s

    def is_usage_due(self) -> bool:
        return time.monotonic() - self.usage_at >= self.interval_s

    def set_usage(self, usage: ProcessUsage) -> None:
        self.usage, self.usage_at = usage, time.monotonic()

    def send(self, output: Optional[OutputSpool], end: Optional[TaskEnd]) -> Optional[SubHeartbeatReply]:
        """One beat; its reply, or None when the server could not be reached (the next beat tries again).
        ServerRejected (404, 409, 413) is the caller's to handle."""
        offset = self.acked
        raw = output.read(offset, self.max_bytes) if output is not None and output.size > offset else b""
        beat = SubHeartbeat(sub_agent_id=self.sub_agent_id, task_id=self.task_id, offset=offset, **dict(self.usage),
                            returncode=end.returncode if end else None, final_size=end.final_size if end else None,
                            stop_reason=end.stop_reason if end else None, queue_note=self.queue_note)
        self.last_sent = time.monotonic()
        if raw:
            self.last_output_sent = self.last_sent
        try:
            reply = self.client.sub_heartbeat(beat, raw)
        except ServerUnavailable as exc:
            log.warning("server_request_retried", path="sub_heartbeat", problem=str(exc),
                        pending_bytes=(output.size if output else 0) - self.acked)
            return None
        log.debug("sub_heartbeat_sent", offset=offset, sent_bytes=len(raw), acked=reply.log_size)
        if beat.queue_note is not None:
            self.queue_note_sent, self.queue_note = beat.queue_note, None
        self.backlog = len(raw) == self.max_bytes and reply.log_size > offset
        self.has_sent_end = end is not None
        self.interval_s = reply.next_interval_s
        return reply

    def shrink(self) -> None:
        """The server refused a beat as too large (413: a smaller MAX_REQUEST_BYTES): halve what one carries."""
        self.max_bytes = max(MIN_BEAT_BYTES, self.max_bytes // 2)
        self.backlog = False
        log.warning("output_upload_refused", status=413, max_bytes=self.max_bytes)
