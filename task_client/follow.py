"""A task's log as bytes, exactly as stored, from GET /api/tasks/<id>/log/raw?offset=O.

Following is a long poll: each request starts at the byte count received so far and is held by the server
(`wait_s`) until there is new output or the task has ended. A dropped connection or a restarted server
costs nothing: the next request resumes from the same offset, so no byte is lost or repeated. It ends
when the server says the task ended (X-Log-Complete) and every byte up to X-Log-Size has arrived."""
from __future__ import annotations

import codecs
import time
from typing import Iterable, Iterator

import requests

from task_client.errors import ServerUnreachable
from task_client.transport import Transport, connection_reason

LONG_POLL_S = 20.0  # the server holds each request up to this long
RECONNECT_FOR_S = 300.0  # a follower keeps trying this long while the server is unreachable (a restart)
RECONNECT_DELAY_S = 0.5
CHUNK_BYTES = 64 * 1024


def iter_log_bytes(transport: Transport, task_id: int, *, offset: int = 0, follow: bool = False,
                   reconnect_for_s: float = RECONNECT_FOR_S) -> Iterator[bytes]:
    """The stored log from `offset`: up to its end now, or (follow) until the task's last byte."""
    end, lost_since, answered = None, None, False  # end: the last byte's offset + 1, once known
    while end is None or offset < end:
        try:
            for chunk, size, complete in _read_from(transport, task_id, offset, follow):
                answered = True
                if end is None and (complete or not follow):
                    end = size
                offset += len(chunk)
                if chunk:
                    yield chunk
            lost_since = None
        except ServerUnreachable:
            lost_since = lost_since or time.monotonic()
            if not answered or time.monotonic() - lost_since > reconnect_for_s:  # resume only what began
                raise
            time.sleep(RECONNECT_DELAY_S)


def _read_from(transport: Transport, task_id: int, offset: int, follow: bool) -> Iterator[tuple[bytes, int, bool]]:
    """One request: (chunk, X-Log-Size, X-Log-Complete) per piece of the body; a body cut off midway
    raises ServerUnreachable after the pieces that did arrive."""
    params = {"offset": offset, "wait_s": LONG_POLL_S if follow else 0}
    resp = transport.request("GET", f"/api/tasks/{task_id}/log/raw", params=params, stream=True,
                             timeout=LONG_POLL_S + transport.timeout_s)
    with resp:
        size, complete = int(resp.headers["X-Log-Size"]), resp.headers["X-Log-Complete"] == "true"
        try:
            for chunk in resp.iter_content(CHUNK_BYTES):
                yield chunk, size, complete
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout) as exc:
            raise ServerUnreachable(transport.url, connection_reason(exc)) from None
        yield b"", size, complete


def decode_utf8(chunks: Iterable[bytes]) -> Iterator[str]:
    """Text from byte chunks: a character split across chunks is decoded whole; invalid bytes become U+FFFD."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest
