"""Log latency: a task prints `$EPOCHREALTIME` every 100 ms; a WebSocket client
(websocket-client, /api/tasks/<id>/log/ws) notes when each line arrives.

Delay = arrival time - the stamp in the line (same machine clock). The client connects right
after the submit, before the task runs, and reads until the server closes the stream.
"""
from __future__ import annotations

import json
import time

import websocket

from bench.harness import Context, Figure, Stack, ms, percentile

NAME = "log_latency"
TITLE = "a line every 100 ms -> WebSocket client has it: median / p99 delay"


def run(ctx: Context) -> list[Figure]:
    lines = ctx.size(300, 20)
    with Stack(ctx) as stack:
        script = f'for i in $(seq {lines}); do echo "$EPOCHREALTIME"; sleep 0.1; done\n'
        task = stack.api.create_task(script, name="log-latency")
        url = stack.server.url.replace("http://", "ws://") + f"/api/tasks/{task['id']}/log/ws?offset=0"
        delays, statuses = read_stream(url, timeout_s=lines * 0.1 * 3 + 30)
    if len(delays) != lines:
        raise RuntimeError(f"got {len(delays)} of {lines} lines (statuses seen: {statuses})")
    ctx.details.update(lines=lines, delays_ms=[round(ms(d), 1) for d in delays], statuses=statuses)
    return [
        Figure(NAME, "line -> WebSocket client, median", percentile(delays, 50), "s", "<=", 0.7),
        Figure(NAME, "line -> WebSocket client, p99", percentile(delays, 99), "s", "<=", 1.3),
        Figure(NAME, "line -> WebSocket client, max", max(delays), "s"),
    ]


def read_stream(url: str, timeout_s: float) -> tuple[list[float], list[str]]:
    ws = websocket.create_connection(url, timeout=timeout_s)
    delays, statuses, pending = [], [], ""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                raw = ws.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            arrived = time.time()
            if not raw:
                break
            frame = json.loads(raw)
            if frame["type"] == "status":
                statuses.append(frame["status"])
            elif frame["type"] == "log":
                pending += frame["data"]
                *complete, pending = pending.split("\n")
                delays += [arrived - float(line.replace(",", ".")) for line in complete if line.strip()]
    finally:
        ws.close()
    return delays, statuses
