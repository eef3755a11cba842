"""The sub-agent's sending of its task's output (a mixin of SubAgent, agent/sub_agent.py).

Small amounts ride in heartbeats (OutputChunk, base64 in JSON); a backlog of UPLOAD_MIN_BYTES or
more goes as raw uploads. Either way the server answers the size it stores, everything past it is
sent again, and everything below it is dropped from the spool (agent/output_spool.py), so the agent
disk holds only what the server does not have yet.
"""
from __future__ import annotations

import time
from typing import Optional

import structlog

from agent.server_client import ServerRejected, ServerUnavailable
from task_common.protocol import OutputChunk, OutputUpload

log = structlog.get_logger()

MAX_CHUNK_BYTES = 4 * 1024 * 1024  # output inside one heartbeat (base64 in JSON)
UPLOAD_MIN_BYTES = 64 * 1024  # a backlog this large goes as raw uploads (no base64/JSON: bench log_volume)
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024  # per upload; under the server's default MAX_REQUEST_BYTES (16 MiB)

EXIT_OUTPUT_LOST = 6  # the server lost output it had acknowledged, which the spool no longer holds
OUTCOME_OUTPUT_LOST = "output lost"  # none the main agent knows: it reports the task as died


class OutputSending:
    def is_upload_due(self) -> bool:
        if not self.is_upload_pending():
            return False
        return self.upload_backlog or self.returncode is not None or \
            time.monotonic() - self.last_output_sent >= self.config.output_flush_s

    def is_upload_pending(self) -> bool:
        return self.can_upload and self.spool_size() - self.acked >= UPLOAD_MIN_BYTES

    def upload_output(self) -> None:
        """Up to UPLOAD_CHUNK_BYTES of the backlog as a raw upload; apply the reply's size and cancel."""
        offset, raw = self.acked, self.output.read(self.acked, UPLOAD_CHUNK_BYTES)
        upload = OutputUpload(sub_agent_id=self.handover.sub_agent_id, task_id=self.task.task_id, offset=offset)
        self.last_output_sent = time.monotonic()
        self.upload_backlog = False
        try:
            with self.server_call():
                reply = self.client.upload_output(upload, raw)
        except ServerUnavailable as exc:
            log.warning("server_request_retried", path="upload_output", problem=str(exc),
                        pending_bytes=self.spool_size() - self.acked)
            return
        except ServerRejected as exc:
            if exc.status == 413:  # a server with a smaller MAX_REQUEST_BYTES: heartbeats only from now on
                log.warning("output_upload_refused", status=exc.status, sent_bytes=len(raw))
                self.can_upload = False
            else:
                self.handle_rejected(exc)
            return
        log.debug("output_uploaded", offset=offset, sent_bytes=len(raw), acked=reply.log_size)
        self.upload_backlog = len(raw) == UPLOAD_CHUNK_BYTES and reply.log_size > self.acked
        if not self.take_acknowledged(reply.log_size):
            return
        self.is_final_reported = False  # the end is reported (again) with the stored size it now has
        self.apply_cancel(reply.cancel)

    def take_acknowledged(self, log_size: int) -> bool:
        """The server holds log_size bytes: the spool drops them. False (and the sub-agent leaves) when
        the server holds fewer than the spool still has: it lost acknowledged output, gone from here too."""
        if log_size < self.output.base:
            log.error("task_output_lost", server_size=log_size, spool_from=self.output.base)
            self.killer.kill_now()
            self.spool.finish(OUTCOME_OUTPUT_LOST)
            self.exit_code = EXIT_OUTPUT_LOST
            return False
        self.acked = log_size
        self.output.acknowledge(log_size)
        return True

    def read_task_output(self) -> Optional[OutputChunk]:
        """The spooled output past what the server holds, at most MAX_CHUNK_BYTES, unless uploads take it."""
        if self.spool_size() <= self.acked or self.is_upload_pending():
            return None
        return OutputChunk.from_bytes(self.acked, self.output.read(self.acked, MAX_CHUNK_BYTES))

    def spool_size(self) -> int:
        return self.output.size if self.output else 0
