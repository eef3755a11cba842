"""structlog set-up for the server, the main agent and the sub-agents alike.

JSON lines go to `<log_dir>/<component>.log` (rotated by size, LOG_KEEP_FILES kept); a console
that is a TTY gets the same events in a readable renderer. When stderr is not a TTY (a service, a redirect to a file) it only gets warnings
and errors, as JSON: the file has everything, and rendering and writing every line twice cost the
server ~1 ms per task (bench: throughput). Bind context (task_id, agent_id, request_id) with structlog.contextvars.

Event names (noun_pastverb; reuse these, add new ones here):
  server_started, server_stopping, auth_disabled_on_public_address, setting_unknown, request_failed, unhandled_error,
  task_created, task_status_changed, task_assigned, task_resources_reserved, task_handover_resent, task_canceled,
  template_created, template_updated, template_deleted,
  agent_registered, agent_status_changed, agent_forgotten, task_placement_changed,
  sub_agent_registered, sub_agent_refused, sub_agent_gave_up,
  agent_went_unreachable, agent_reached_again, agent_lost,
  sub_agent_lost, server_stall_detected, protocol_version_mismatch, output_chunk_stored, output_chunk_rejected,
  log_write_failed,
  main_agent_started, main_agent_stopping, agent_tick_failed, sub_agent_spawned, sub_agent_exited,
  sub_agent_adopted, task_process_started, task_process_exited, task_kill_sent, server_request_retried,
  gpu_monitoring_unavailable, gpu_read_failed, task_kill_failed, sub_agent_spawn_failed, server_unreachable,
  agent_unknown_to_server, main_heartbeat_sent, sub_heartbeat_sent, task_handover_refused,
  task_process_start_failed, task_output_complete, task_handover_rejected, liveness_check_failed,
  output_uploaded, output_upload_refused,
  database_backed_up, database_migrated, server_identity_created, server_identity_changed,
  agent_disk_full, agent_disk_recovered, state_save_failed, server_disk_full,
  sub_agent_delivery_started, sub_agent_delivery_resumed, task_output_left_undelivered, task_output_lost,
  sub_agent_phase_changed,
  notification_sent, notification_failed, notification_dropped, worker_call_failed
"""
from __future__ import annotations

import errno
import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

import structlog


# The JSON file rotates by size, keeping a few old files: a server or agent up for years must not
# fill its disk with its own log (component.log, component.log.1, ... component.log.<KEEP>).
LOG_ROTATE_BYTES = 20 * 1024 * 1024
LOG_KEEP_FILES = 5


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullTolerant:
    """A file handler that drops a record its disk has no room for, instead of printing a traceback
    per record to stderr (often the same full disk, or a journal that fills with them), and closes
    without raising: the agent reports a full disk once, in its heartbeat (agent/disk.py)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not _is_disk_full(sys.exc_info()[1]):
            super().handleError(record)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            if not _is_disk_full(error):
                raise

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:
            if not _is_disk_full(error):
                raise


def _is_disk_full(error) -> bool:
    return isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS


class TolerantRotatingFileHandler(DiskFullTolerant, RotatingFileHandler):
    pass


class TolerantFileHandler(DiskFullTolerant, logging.FileHandler):
    pass


def configure_logging(component: str, log_dir: str | Path, level: str = "INFO", *,
                      rotate_bytes: int = LOG_ROTATE_BYTES, keep_files: int = LOG_KEEP_FILES) -> Path:
    """Configure structlog + stdlib logging once per process; returns the JSON log file path."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{component}.log"
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=shared + [structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    file_handler = TolerantRotatingFileHandler(log_file, maxBytes=rotate_bytes, backupCount=keep_files,
                                               encoding="utf-8")
    file_handler.setFormatter(_formatter(structlog.processors.JSONRenderer(), shared))
    is_tty = sys.stderr.isatty()
    console_renderer = structlog.dev.ConsoleRenderer(colors=True) if is_tty else structlog.processors.JSONRenderer()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_formatter(console_renderer, shared))
    if not is_tty:
        console.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [file_handler, console]
    root.setLevel(level.upper())
    # alembic.runtime.migration: "Context impl SQLiteImpl." at every server start (database_migrated says what ran)
    for noisy in ("werkzeug", "urllib3", "gunicorn.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file


def _formatter(renderer, shared) -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *([] if isinstance(renderer, structlog.dev.ConsoleRenderer) else [structlog.processors.format_exc_info]),
                    renderer],
        foreign_pre_chain=shared,
    )
