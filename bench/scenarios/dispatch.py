"""Dispatch: submit -> the script's first line runs, one task at a time on an idle real main agent.

Real default intervals (2 s main heartbeat with long poll, 1 s sub-agent). The script's first line
is `echo $EPOCHREALTIME > file` (a bash 5 builtin: no fork); the latency is that stamp minus the
time taken just before the POST. Between tasks we wait for the previous one to complete and then a
random 0.2-2.2 s, so submissions land at every phase of the heartbeat cycle.

The main agent's cadence is watched meanwhile (last_heartbeat_time of GET /api/agents/<id>,
polled every 100 ms): a dispatch bought by heartbeating faster would show up as many more than
30 heartbeats a minute. The idle scenario checks the cadence itself (nothing to dispatch).
"""
from __future__ import annotations

import random
import threading
import time

from bench.harness import Context, Figure, Stack, ms, parse_time, percentile, read_stamp

NAME = "dispatch"
TITLE = "submit -> first line runs, 50 tasks one after another on an idle agent (real 2 s cadence)"


def run(ctx: Context) -> list[Figure]:
    count = ctx.size(50, 3)
    max_gap_s = ctx.size(2.2, 0.6)
    stamps = ctx.scratch("stamps")
    latencies = []
    with Stack(ctx) as stack:
        watcher = HeartbeatWatcher(stack)
        watcher.start()
        time.sleep(ctx.size(2.5, 1.0))  # let the agent settle (its first heartbeats)
        rng = random.Random(1)
        for i in range(count):
            path = stamps / f"{i}.start"
            submitted = time.time()
            task = stack.api.create_task(f"echo $EPOCHREALTIME > {path}\n", name=f"dispatch-{i}", cpu_cores=1)
            done = stack.wait_finished(task["id"], 30)
            if done["status"] != "completed":
                raise RuntimeError(f"task {task['id']} ended {done['status']}: {done['status_reason']}")
            latencies.append(read_stamp(path) - submitted)
            time.sleep(rng.uniform(0.2, max_gap_s))
        watcher.stop()
    gaps = watcher.gaps()
    ctx.details.update(latencies_ms=[round(ms(x), 1) for x in latencies], heartbeat_gaps_s=[round(g, 3) for g in gaps])
    return [
        Figure(NAME, "submit -> first line, median", ms(percentile(latencies, 50)), "ms", "<=", 100),
        Figure(NAME, "submit -> first line, p99", ms(percentile(latencies, 99)), "ms", "<=", 300),
        Figure(NAME, "submit -> first line, max", ms(max(latencies)), "ms"),
        Figure(NAME, "main heartbeat gap, median", percentile(gaps, 50), "s",
               note="gaps under 0.5 s (the beat right after a hand-over) left out"),
        Figure(NAME, "main heartbeats per minute", watcher.per_minute(), "/min",
               note="30/min = the 2 s cadence; a hand-over and a sub-agent's exit each add one by design"),
    ]


class HeartbeatWatcher:
    """Records each change of the main agent's last_heartbeat_time (server clock, polled at 10 Hz)."""

    def __init__(self, stack: Stack):
        self.stack, self.beats = stack, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        agent_id = self.stack.agent.agent_id
        while not self._stop.wait(0.1):
            try:
                beat = parse_time(self.stack.api.get(f"/api/agents/{agent_id}").json()["last_heartbeat_time"])
            except Exception:  # noqa: BLE001 - a missed poll only loses one sample
                continue
            if beat and (not self.beats or beat != self.beats[-1]):
                self.beats.append(beat)

    def per_minute(self) -> float:
        span = self.beats[-1] - self.beats[0] if len(self.beats) > 1 else 0
        return 60 * (len(self.beats) - 1) / span if span else float("nan")

    def gaps(self) -> list[float]:
        """Gaps between heartbeats that were not right after a hand-over (those are immediate by design)."""
        gaps = [b - a for a, b in zip(self.beats, self.beats[1:])]
        return [g for g in gaps if g > 0.5] or gaps or [float("nan")]
