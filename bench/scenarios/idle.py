"""Idle: a real main agent with nothing to do (real 2 s cadence, long poll) for 60 s.

CPU: user+system time of the main agent and every process under it (none while idle) over the
window, as a percentage of one core. RSS: summed over those processes (PSS too, which does not
count shared pages twice).
"""
from __future__ import annotations

import time

import psutil

from bench.harness import Context, Figure, Stack
from bench.sampling import MIB, Sampler, cpu_seconds
from bench.scenarios.dispatch import HeartbeatWatcher

NAME = "idle"
TITLE = "main agent with nothing to do for 60 s: CPU and RSS"


def run(ctx: Context) -> list[Figure]:
    window_s = ctx.size(60.0, 4.0)
    with Stack(ctx) as stack:
        time.sleep(ctx.size(5.0, 1.5))  # registration is not idle
        procs = stack.agent.tree()
        cpu0, t0 = cpu_seconds(procs), time.monotonic()
        watcher = HeartbeatWatcher(stack)
        watcher.start()
        with Sampler(stack.agent.tree, interval_s=1.0, with_pss=True) as mem:
            time.sleep(window_s)
        watcher.stop()
        procs_after = stack.agent.tree()
        cpu = cpu_seconds(procs) - cpu0
        wall = time.monotonic() - t0
        server_rss = stack.server.worker().memory_info().rss / MIB
    per_process = {p.pid: describe(p) for p in procs_after}
    ctx.details.update(processes=per_process, cpu_s=round(cpu, 3), window_s=round(wall, 1),
                       server_worker_rss_mib=round(server_rss, 1))
    rss = max(mem.rss_samples) / MIB
    pss = max(mem.pss_samples) / MIB
    return [
        Figure(NAME, "CPU (main agent and its processes)", 100 * cpu / wall, "% of a core", "<=", 1),
        Figure(NAME, f"RSS sum ({len(procs_after)} processes)", rss, "MiB", "<=", 60),
        Figure(NAME, "PSS sum (shared pages counted once)", pss, "MiB"),
        Figure(NAME, "main heartbeats per minute", watcher.per_minute(), "/min", "<=", 31,
               note="the 2 s cadence kept: 30/min"),
    ]


def describe(proc) -> str:
    try:
        return " ".join(proc.cmdline()[1:3])
    except psutil.NoSuchProcess:
        return "(exited)"
