"""Log volume: a task writes 200 MB to stdout as fast as it can (`seq ... | head -c 200000000`).

Checks the stored log is byte-identical (sha256 of the server's file against the same pipeline run
here), the rate from the script's start stamp to the server's end_time (all bytes stored), and
the sub-agent's peak RSS (kernel high-water mark, VmHWM, sampled every 50 ms).
"""
from __future__ import annotations

import hashlib
import subprocess

from bench.harness import Context, Figure, Stack, parse_time, read_stamp
from bench.sampling import MIB, Sampler

NAME = "log_volume"
TITLE = "a task writes 200 MB: stored bytes identical, MB/s, sub-agent peak RSS"


def run(ctx: Context) -> list[Figure]:
    size = ctx.size(200_000_000, 20_000_000)
    producer = f"seq 1 100000000 | head -c {size}"
    stamps = ctx.scratch("stamps")
    expected = sha256_of_command(producer)
    with Stack(ctx) as stack:
        script = f"echo $EPOCHREALTIME > {stamps}/start\n{producer}\necho $EPOCHREALTIME > {stamps}/end\n"
        with Sampler(stack.agent.sub_agents, interval_s=0.05) as subs, \
                Sampler(lambda: stack.agent.tree()[:1], interval_s=0.25) as main:
            task = stack.api.create_task(script, name="log-volume")
            done = stack.wait_finished(task["id"], ctx.size(300, 60))
        log_file = stack.server.data_dir / "logs" / "tasks" / f"{task['id']}.log"
        stored_size, stored = log_file.stat().st_size, sha256_of_file(log_file)
    started = read_stamp(stamps / "start")
    seconds = parse_time(done["end_time"]) - started
    produced = read_stamp(stamps / "end") - started
    identical = stored == expected and stored_size == size
    ctx.details.update(status=done["status"], expected_sha256=expected, stored_sha256=stored,
                       stored_bytes=stored_size, seconds=round(seconds, 2), producer_seconds=round(produced, 2))
    mb = size / 1e6
    return [
        Figure(NAME, f"stored log identical ({mb:.0f} MB, sha256)", 1.0 if identical else 0.0, "(1 = yes)", ">=", 1,
               note=f"{stored_size} bytes stored"),
        Figure(NAME, "MB/s, script start -> all stored", mb / seconds, "MB/s", ">=", 50),
        Figure(NAME, "script alone (write into the spool)", mb / produced, "MB/s"),
        Figure(NAME, "sub-agent peak RSS", subs.peak_single_hwm / MIB, "MiB", "<=", 100),
        Figure(NAME, "main agent peak RSS", main.peak_single_hwm / MIB, "MiB"),
    ]


def sha256_of_command(command: str) -> str:
    digest = hashlib.sha256()
    with subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE) as proc:
        for block in iter(lambda: proc.stdout.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
