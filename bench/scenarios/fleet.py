"""Fleet: simulated main agents (2 s) and sub-agents (1 s) speaking the real protocol over HTTP.

Set-up per step: register the mains (8 simulated GPUs each), queue one task per sub-agent via the
REST API, heartbeat the mains until the server has handed every task over, register one sub-agent
per task. Then every agent beats at its cadence for the window; a sub-agent's beat carries usage and
one line of output. Mains send wait_s = 0 (no long poll) so that their latency is the server's
processing time, not the hold. Liveness limits are raised so the set-up pauses between steps do
not fail the simulated tasks (the liveness check itself still runs every second).

Reported: heartbeat p50/p99 (mains and subs together, and each), the server worker's CPU, then the
fleet is grown in steps of 20 + 300 until p99 passes 100 ms (bounded by MAX_STEPS), or, when the
first step already misses, halved (a subset of the same agents beats) until it stays under.
The generator runs one thread per agent in up to 3 forked processes, and reports its own lag (how
late sends were: it waits for each reply, like a real agent) and CPU.
"""
from __future__ import annotations

import time

from bench.harness import Api, Context, Figure, Server, ms, percentile
from bench.sampling import cpu_seconds
from bench.simulated import FleetRunner, SimMain, SimSub, place_tasks

NAME = "fleet"
TITLE = "20 main + 300 sub simulated agents at 2 s / 1 s: heartbeat latency, server CPU; then step up"

MAINS_PER_STEP, SUBS_PER_STEP = 20, 300
STEP_UP_P99_LIMIT_MS = 100.0
MAX_STEPS = 6  # 120 mains + 1800 subs at most
STEP_DOWN_DIVISORS = (2, 4, 8)  # when 20 + 300 already misses: 10 + 150, 5 + 75, 2 + 37
AGENTS_PER_THREAD = 1  # like real agents: each waits only for its own replies
GENERATOR_PROCESSES = 3  # the load generator's own processes (1 per 100 agents, at most this)
SERVER_ENV = {"TASK_SYSTEM_SUB_AGENT_LEASE_S": "3600", "TASK_SYSTEM_AGENT_OFFLINE_AFTER_S": "3600"}


def run(ctx: Context) -> list[Figure]:
    mains_per_step = ctx.size(MAINS_PER_STEP, 4)
    subs_per_step = ctx.size(SUBS_PER_STEP, 40)
    window_s = ctx.size(20.0, 3.0)
    max_steps = ctx.size(MAX_STEPS, 1)
    server = Server(ctx.scratch("data"), SERVER_ENV).start()
    api = Api(server.url)
    mains: list[SimMain] = []
    subs: list[SimSub] = []
    steps = []
    try:
        for step in range(1, max_steps + 1):
            grow(ctx, server, api, mains, subs, mains_per_step, subs_per_step)
            result = measure(server, mains, subs, window_s)
            steps.append(result)
            ctx.log(f"step {step}: {len(mains)}+{len(subs)} agents: p50 {result['p50_ms']:.1f} ms, "
                    f"p99 {result['p99_ms']:.1f} ms, server CPU {result['server_cpu_pct']:.0f} %, "
                    f"generator lag p99 {result['lag_p99_ms']:.0f} ms (CPU {result['generator_cpu_pct']:.0f} %), "
                    f"errors {result['errors']}")
            if result["p99_ms"] > STEP_UP_P99_LIMIT_MS:
                break
        if steps[0]["p99_ms"] > STEP_UP_P99_LIMIT_MS:  # step down instead: halve the fleet, bounded
            for divisor in STEP_DOWN_DIVISORS[:ctx.size(len(STEP_DOWN_DIVISORS), 1)]:
                few = mains[:max(1, len(mains) // divisor)]
                result = measure(server, few, [s for s in subs if s.main in few], window_s)
                steps.append(result)
                ctx.log(f"step down to {result['mains']}+{result['subs']}: p99 {result['p99_ms']:.1f} ms, "
                        f"server CPU {result['server_cpu_pct']:.0f} %")
                if result["p99_ms"] <= STEP_UP_P99_LIMIT_MS:
                    break
    finally:
        server.stop()
    ctx.details["steps"] = steps
    base = steps[0]
    kept = [s for s in steps if s["p99_ms"] <= STEP_UP_P99_LIMIT_MS]
    largest = max(kept, key=lambda s: s["subs"]) if kept else None
    bounded = len(steps) == max_steps and kept and kept[-1] is steps[-1]
    label = f"{mains_per_step}+{subs_per_step}"
    return [
        Figure(NAME, f"heartbeat p50 at {label}", base["p50_ms"], "ms"),
        Figure(NAME, f"heartbeat p99 at {label}", base["p99_ms"], "ms", "<=", 50),
        Figure(NAME, f"sub heartbeat p99 at {label}", base["sub_p99_ms"], "ms"),
        Figure(NAME, f"main heartbeat p99 at {label}", base["main_p99_ms"], "ms"),
        Figure(NAME, f"server CPU at {label}", base["server_cpu_pct"], "% of a core"),
        Figure(NAME, "largest fleet with p99 <= 100 ms (subs)", largest["subs"] if largest else 0, "subs",
               note=(f"{largest['mains']} mains + {largest['subs']} subs" if largest else "none")
               + (" (step limit reached, not the server's limit)" if bounded else "")),
    ]


def grow(ctx: Context, server: Server, api: Api, mains: list, subs: list, add_mains: int, add_subs: int) -> None:
    """Add mains and sub-agents (each with a task handed over and registered) to the fleet."""
    started = time.monotonic()
    per_main = -(-add_subs // add_mains)
    new_mains = [SimMain(server.url, f"sim-main-{len(mains) + i}", cpu_cores=per_main) for i in range(add_mains)]
    for main in new_mains:
        main.register()
    for i in range(add_subs):
        api.create_task("sleep 3600", name=f"fleet-{len(subs) + i}", cpu_cores=1)
    place_tasks(new_mains, add_subs)
    for main in new_mains:
        for task_id in main.task_ids:
            sub = SimSub(server.url, main, task_id)
            sub.register()
            subs.append(sub)
    mains += new_mains
    ctx.log(f"fleet grown to {len(mains)}+{len(subs)} in {time.monotonic() - started:.1f} s")


def measure(server: Server, mains: list, subs: list, window_s: float) -> dict:
    agents = [(m, 2.0) for m in mains] + [(s, 1.0) for s in subs]
    processes = min(GENERATOR_PROCESSES, max(1, len(agents) // 100))
    runner = FleetRunner(agents, threads=-(-len(agents) // (AGENTS_PER_THREAD * processes)), processes=processes)
    worker = server.worker()
    cpu0, t0 = cpu_seconds([worker]), time.monotonic()
    runner.run(window_s)
    cpu_pct = 100 * (cpu_seconds([worker]) - cpu0) / (time.monotonic() - t0)
    lat = [s.latency_s for s in runner.samples]
    by = {k: [s.latency_s for s in runner.samples if s.kind == k] for k in ("main", "sub")}
    return {"mains": len(mains), "subs": len(subs), "requests": len(lat), "window_s": window_s,
            "req_per_s": round(len(lat) / window_s, 1),
            "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)), "max_ms": ms(max(lat)),
            "main_p99_ms": ms(percentile(by["main"], 99)), "sub_p99_ms": ms(percentile(by["sub"], 99)),
            "lag_p99_ms": ms(percentile([s.lag_s for s in runner.samples], 99)),
            "server_cpu_pct": cpu_pct, "server_rss_mib": worker.memory_info().rss / 2**20,
            "generator_processes": processes, "generator_cpu_pct": 100 * runner.cpu_s / window_s,
            "errors": len(runner.errors), "first_errors": runner.errors[:3]}
