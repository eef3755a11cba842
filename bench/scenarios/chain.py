"""Chain: 50 tasks, each depending on the previous one, on one real main agent.

Each script writes `$EPOCHREALTIME` when it starts and again as its last line; the overhead of a
link is the next task's start stamp minus this task's end stamp (sub-agent notices the exit ->
reports it -> server completes it and unblocks the next -> long-polling main agent gets it ->
sub-agent starts bash). All 50 are submitted before the first one runs.
"""
from __future__ import annotations

from bench.harness import Context, Figure, Stack, ms, percentile, read_stamp

NAME = "chain"
TITLE = "50 tasks each depending on the previous: overhead per link"


def run(ctx: Context) -> list[Figure]:
    count = ctx.size(50, 4)
    stamps = ctx.scratch("stamps")
    with Stack(ctx) as stack:
        previous, ids = None, []
        for i in range(count):
            script = f"echo $EPOCHREALTIME > {stamps}/{i}.start\necho $EPOCHREALTIME > {stamps}/{i}.end\n"
            task = stack.api.create_task(script, name=f"chain-{i}", depends_on=[previous] if previous else [])
            previous = task["id"]
            ids.append(previous)
        last = stack.wait_finished(ids[-1], 30 + count * 5)
        if last["status"] != "completed":
            raise RuntimeError(f"last task ended {last['status']}: {last['status_reason']}")
    links = [read_stamp(stamps / f"{i + 1}.start") - read_stamp(stamps / f"{i}.end") for i in range(count - 1)]
    total = read_stamp(stamps / f"{count - 1}.end") - read_stamp(stamps / "0.start")
    ctx.details.update(links_ms=[round(ms(x), 1) for x in links], total_s=round(total, 2))
    return [
        Figure(NAME, "overhead per link, mean", ms(sum(links) / len(links)), "ms", "<=", 150),
        Figure(NAME, "overhead per link, p50", ms(percentile(links, 50)), "ms"),
        Figure(NAME, "overhead per link, p99", ms(percentile(links, 99)), "ms"),
    ]
