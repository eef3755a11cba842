"""WebSocket /api/tasks/<id>/log/ws?offset=O: pushes output as it is stored, and status changes.

Frames: {"type": "log", "offset", "end", "data"} and {"type": "status", "status", "exit_code",
"status_reason"}; an {"type": "error", "error": {...}} frame for a bad request. Closes after a finished
task's last output. Woken by services.signals when output is stored; it never polls on a timer for data.

A log frame's `offset` and `end` are the stored bytes its text was decoded from (invalid bytes become
U+FFFD, so the text's own length says nothing about them): a client resumes from the last frame's `end`.
A character split across reads is held back by the decoder and sent whole in the next frame.
"""
from __future__ import annotations

import codecs
import json

from flask import request
from simple_websocket import ConnectionClosed

from backend.extensions import sock
from backend.services import logs as log_service
from backend.services import signals
from backend.services import tasks as task_service
from backend.services.errors import ServiceError

FRAME_BYTES = 256 * 1024
IDLE_WAKE_S = 10.0  # wake now and then to notice a client that went away


@sock.route("/api/tasks/<int:task_id>/log/ws")
def task_log_ws(ws, task_id: int):
    try:
        offset = _parse_offset(request.args.get("offset", "0"))
        _stream(ws, task_id, offset)
    except ServiceError as exc:
        ws.send(json.dumps({"type": "error", "error": {"code": exc.code, "message": exc.message}}))
    except ConnectionClosed:
        pass


def _parse_offset(raw: str) -> int:
    if not raw.isdigit():
        raise ServiceError("invalid_input", "offset must be a whole number of bytes ≥ 0.")
    return int(raw)


def _stream(ws, task_id: int, offset: int) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with signals.Watch(signals.task_topic(task_id)) as change:
        _stream_until_done(ws, task_id, offset, decoder, change)


def _stream_until_done(ws, task_id: int, offset: int, decoder, change: signals.Watch) -> None:
    sent_status = None
    while ws.connected:
        change.mark()
        task = task_service.get_log_watch(task_id)
        offset, size = _send_new_output(ws, decoder, task_id, offset)
        if task.status != sent_status:
            ws.send(json.dumps({"type": "status", "status": task.status, "exit_code": task.exit_code,
                                "status_reason": task.status_reason}))
            sent_status = task.status
        if task.is_output_complete and offset >= size:
            _send_decoded(ws, decoder, b"", offset, final=True)  # a cut last character, as U+FFFD
            ws.close()
            return
        if offset >= size:
            change.wait(IDLE_WAKE_S)


def _send_new_output(ws, decoder, task_id: int, offset: int) -> tuple[int, int]:
    """Send everything stored past offset; return (new offset, log size)."""
    while True:
        page = log_service.read_task_log(task_id, offset=offset, limit=FRAME_BYTES)
        if not page.data:
            return offset, page.size
        _send_decoded(ws, decoder, page.data, page.next_offset)
        offset = page.next_offset


def _send_decoded(ws, decoder, data: bytes, data_end: int, final: bool = False) -> None:
    """Decode `data` (the stored bytes before `data_end`) and send the text with the bytes it came from."""
    start = data_end - len(data) - len(decoder.getstate()[0])  # held back: a character split across reads
    text = decoder.decode(data, final=final)
    if text:
        end = data_end - len(decoder.getstate()[0])
        ws.send(json.dumps({"type": "log", "offset": start, "end": end, "data": text}))
