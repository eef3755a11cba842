"""Scale: 100,000 tasks in the database, half of them waiting.

The rows go in by direct SQLite inserts into the server's database (schema made by starting the
server once), before the server that is measured starts: 50 % waiting, the rest completed /
failed / canceled, names like "llama-sft-123", script ~100 bytes, priorities 1-5. Then:

- a heartbeat that assigns a task: one simulated main agent (1 core) heartbeats (timed; it gets one
  task), a simulated sub-agent registers and reports the end (untimed), and again;
- a filtered `GET /api/tasks` page: status filter + case-insensitive name filter, pages 1-20;
- the server worker's RSS (current and high-water mark).
"""
from __future__ import annotations

import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone

from bench.harness import Api, Context, Figure, Server, ms, percentile
from bench.sampling import MIB, peak_rss_bytes
from bench.simulated import SimMain, SimSub

NAME = "scale"
TITLE = "100,000 tasks (half waiting): assigning heartbeat p99, filtered task list p99, server RSS"

MODELS = ["llama", "mistral", "qwen", "gemma", "phi", "gpt2"]
KINDS = ["pretrain", "sft", "eval", "tokenize", "dedup"]
QUERIES = [  # (status filter, name filter)
    ("waiting", "llama"), ("waiting", "qwen-eval"), ("completed,failed", "sft"),
    ("running,waiting", "gemma"), ("failed", "dedup"), ("waiting,blocked", "LLAMA-PRE"),
]


def run(ctx: Context) -> list[Figure]:
    total = ctx.size(100_000, 2_000)
    cycles = ctx.size(300, 30)
    pages = ctx.size(300, 30)
    data = ctx.scratch("data")
    Server(data).start().stop()  # creates the schema
    started = time.monotonic()
    insert_tasks(Server(data).db_path, total)
    ctx.details["insert_s"] = round(time.monotonic() - started, 2)
    ctx.log(f"inserted {total} tasks in {ctx.details['insert_s']} s")
    server = Server(data).start()
    try:
        api = Api(server.url)
        assign = measure_assigning_heartbeats(server, cycles)
        listing = measure_task_list(api, pages)
        worker = server.worker()
        rss, hwm = worker.memory_info().rss / MIB, peak_rss_bytes(worker) / MIB
    finally:
        server.stop()
    ctx.details.update(assign_ms=summary(assign), list_ms=summary(listing), rss_mib=rss, hwm_mib=hwm)
    return [
        Figure(NAME, "assigning heartbeat p50", ms(percentile(assign, 50)), "ms"),
        Figure(NAME, "assigning heartbeat p99", ms(percentile(assign, 99)), "ms", "<=", 20),
        Figure(NAME, "filtered task list p50", ms(percentile(listing, 50)), "ms"),
        Figure(NAME, "filtered task list p99", ms(percentile(listing, 99)), "ms", "<=", 100),
        Figure(NAME, "server RSS (peak)", hwm, "MiB", "<=", 300, note=f"now {rss:.0f} MiB"),
    ]


def insert_tasks(db_path, total: int) -> None:
    rng = random.Random(42)
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    rows = []
    for i in range(1, total + 1):
        created = base + timedelta(seconds=i * 10)
        status = "waiting" if i % 2 == 0 else rng.choices(["completed", "failed", "canceled"], [7, 2, 1])[0]
        finished = status != "waiting"
        exit_code = {"completed": 0, "failed": 1}.get(status) if finished else None
        rows.append((
            i, f"{rng.choice(MODELS)}-{rng.choice(KINDS)}-{i}", "bench", rng.randint(1, 5), status,
            created.strftime(fmt), f"python train.py --run {i} --lr 3e-4 --epochs 3 --data /data/shard-{i % 512}",
            1, 0, 0,
            (created + timedelta(seconds=5)).strftime(fmt) if status in ("completed", "failed") else None,
            (created + timedelta(seconds=65)).strftime(fmt) if finished else None,
            f"data/logs/tasks/{i}.log", exit_code, "exit code 1" if status == "failed" else None,
            "[]", 0, 0))
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO tasks (id, name, template_type, priority, status, created_time, script_content,"
            " cpu_cores, gpu_count, gpu_memory, start_time, end_time, log_file, exit_code, status_reason,"
            " gpu_ids, holds_resources, handover_acked) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.close()


def measure_assigning_heartbeats(server: Server, cycles: int) -> list[float]:
    main = SimMain(server.url, "scale-main", cpu_cores=1)
    main.register()
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        reply = main.heartbeat()
        times.append(time.perf_counter() - started)
        if len(reply.start) != 1:
            raise RuntimeError(f"expected one task per heartbeat, got {len(reply.start)}")
        sub = SimSub(server.url, main, reply.start[0].task_id)
        sub.register()
        sub.heartbeat(returncode=0)  # the end, no output: frees the core for the next heartbeat
    return times


def measure_task_list(api: Api, pages: int) -> list[float]:
    rng = random.Random(7)
    times = []
    for i in range(pages):
        status, name = QUERIES[i % len(QUERIES)]
        params = {"status": status, "name": name, "page": rng.randint(1, 20), "page_size": 20}
        started = time.perf_counter()
        resp = api.get("/api/tasks", params=params)
        times.append(time.perf_counter() - started)
        resp.raise_for_status()
    return times


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": ms(percentile(values, 50)), "p99": ms(percentile(values, 99)),
            "max": ms(max(values))}
