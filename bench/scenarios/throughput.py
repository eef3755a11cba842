"""Throughput: 500 trivial tasks (`true`) on one real main agent advertising 8 cores.

All 500 are submitted as fast as a 4-thread client can POST them; the clock runs from the first
POST to the last task's end_time as the server recorded it (completed, all output in). The client
keeps one connection per thread with the standard library's http.client (as the fleet's simulated
agents do): on this 2-core box every millisecond of client CPU is taken from the system measured,
and requests costs ~1.5 ms per POST where a user's own submitting machine would pay it.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Context, Figure, Stack, parse_time, wait_for
from bench.sampling import cpu_seconds
from bench.simulated import Connection

NAME = "throughput"
TITLE = "500 trivial tasks on one main agent with --cpu-cores 8: tasks/s first submit -> last completed"
SUBMIT_THREADS = 4


def submit(server_url: str, numbers: range) -> None:
    """One client thread: these tasks, one after another on its own connection."""
    conn = Connection(server_url)
    for i in numbers:
        conn.post_json("/api/tasks", {"name": f"tp-{i}", "template_type": "bench", "script_content": "true\n"},
                       expect=201)
    conn.close()


def run(ctx: Context) -> list[Figure]:
    count = ctx.size(500, 16)
    timeout_s = ctx.size(400, 60)
    with Stack(ctx, cpu_cores=8) as stack:
        time.sleep(ctx.size(1.0, 0.3))
        agent_tree = stack.agent.tree()
        agent_cpu0, server_cpu0 = cpu_seconds(agent_tree), cpu_seconds([stack.server.worker()])
        first_submit = time.time()
        with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
            list(pool.map(lambda k: submit(stack.server.url, range(k, count, SUBMIT_THREADS)), range(SUBMIT_THREADS)))
        submitted_s = time.time() - first_submit
        try:
            wait_for(lambda: stack.api.count("completed") + stack.api.count("failed") >= count, timeout_s,
                     interval_s=0.25, message=f"{count} tasks to finish")
            timed_out = False
        except AssertionError:  # wait_for's deadline passed
            timed_out = True
        wall = time.time() - first_submit
        agent_cpu = cpu_seconds([stack.agent.tree()[0]]) - agent_cpu0  # children_* holds reaped sub-agents
        server_cpu = cpu_seconds([stack.server.worker()]) - server_cpu0
        tasks = [t for t in stack.all_tasks() if t["end_time"]]
    failed = sum(t["status"] != "completed" for t in tasks)
    last_end = max(parse_time(t["end_time"]) for t in tasks) if tasks else first_submit
    span = last_end - first_submit
    rate = len(tasks) / span if span > 0 else 0.0
    ctx.details.update(tasks=count, finished=len(tasks), failed=failed, timed_out=timed_out,
                       submit_s=round(submitted_s, 2), span_s=round(span, 2), wall_s=round(wall, 1),
                       agent_cpu_s=round(agent_cpu, 1), server_cpu_s=round(server_cpu, 1))
    ctx.log(f"{len(tasks)}/{count} finished ({failed} failed) in {span:.1f} s; agent tree CPU {agent_cpu:.1f} s, "
            f"server CPU {server_cpu:.1f} s")
    return [
        Figure(NAME, f"tasks/s ({count} tasks, 8 cores)", rate, "tasks/s", ">=", 40,
               note=("timed out; rate of those finished" if timed_out else "") + (f"; {failed} failed" if failed else "")),
        Figure(NAME, "first submit -> last completed", span, "s"),
        Figure(NAME, "submit rate (4 client threads)", count / submitted_s, "tasks/s"),
        Figure(NAME, "agent CPU per task (main + sub-agents)", 1000 * agent_cpu / max(len(tasks), 1), "ms"),
        Figure(NAME, "server CPU per task", 1000 * server_cpu / max(len(tasks), 1), "ms"),
    ]
