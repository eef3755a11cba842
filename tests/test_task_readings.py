"""Progress read from a running task's output, and its resource use kept over its life, through the
real server, agent and bash."""
from __future__ import annotations

import sys
from datetime import datetime

import pytest

from tests.conftest import AgentProcess, ServerProcess, _kill_leftover_task_processes
from tests.helpers import Api, server_events, wait_for

TQDM_SCRIPT = f"""{sys.executable} - <<'PY'
import time, tqdm
outer = tqdm.tqdm(total=2, desc="epochs", position=0, mininterval=0)
for epoch in range(2):
    inner = tqdm.tqdm(total=20, desc="batches", position=1, mininterval=0, leave=False)
    for batch in range(20):
        time.sleep(0.06)
        inner.update(1)
    inner.close()
    outer.update(1)
outer.close()
PY
"""


@pytest.fixture
def readings(tmp_path):
    """A server keeping about 6 to 12 samples per task, and an agent."""
    (tmp_path / "data").mkdir()
    (tmp_path / "work").mkdir()
    server = ServerProcess(tmp_path / "data", env={"TASK_SYSTEM_USAGE_SAMPLES_MAX": "6"}).start()
    agent = AgentProcess(server, "readings", tmp_path / "work", tmp_path / "state").start()
    yield Api(server.url)
    agent.kill()
    server.kill()
    _kill_leftover_task_processes(tmp_path)  # the sub-agents a killed main agent leaves


def test_progress_follows_the_bar_drawn_last_while_the_task_runs(readings):
    task = readings.create_task(TQDM_SCRIPT)
    inner = wait_for(lambda: (p := readings.task(task["id"])["progress"]) and p["total"] == 20 and p["current"] > 0 and p,
                     20, message="the inner bar's progress")
    assert 0 < inner["percent"] < 100 and inner["rate"] > 0 and inner["updated_time"]
    assert readings.task(task["id"])["status"] == "running"
    readings.wait_status(task["id"], "completed")
    final = wait_for(lambda: (p := readings.task(task["id"])["progress"])["total"] == 2 and p, 5)
    assert (final["percent"], final["current"]) == (100.0, 2.0)
    listed = readings.get("/api/tasks").json()["items"][0]
    assert listed["progress"] == readings.task(task["id"])["progress"]


def test_a_bare_percent_is_the_fallback(readings):
    task = readings.create_task("for p in 10 35.5; do echo \"loading $p%\"; sleep 0.5; done; echo done")
    readings.wait_status(task["id"], "completed")
    progress = wait_for(lambda: readings.task(task["id"])["progress"], 5)
    assert progress["percent"] == 35.5 and progress["current"] is None
    assert readings.task(readings.create_task("echo no bar here")["id"])["progress"] is None


def test_usage_samples_arrive_and_are_thinned_evenly_over_a_long_task(readings, tmp_path):
    task = readings.create_task("sleep 6")
    early = wait_for(lambda: len(s := readings.get(f"/api/tasks/{task['id']}/usage").json()["samples"]) >= 3 and s, 10)
    assert {"time", "cpu_percent", "memory_mib", "gpus"} <= set(early[0])
    readings.wait_status(task["id"], "completed", timeout_s=30)
    samples = readings.get(f"/api/tasks/{task['id']}/usage").json()["samples"]
    # ~30 beats at 0.2 s: thinned to at most 12 (twice USAGE_SAMPLES_MAX; counted exactly, whatever slots
    # a loaded box skips), oldest first, spread over the whole run
    assert 3 <= len(samples) <= 12, samples
    times = [datetime.fromisoformat(s["time"]) for s in samples]
    assert times == sorted(times)
    ended = datetime.fromisoformat(readings.task(task["id"])["end_time"])
    assert (times[0] - datetime.fromisoformat(early[0]["time"])).total_seconds() < 2.5
    assert (ended - times[-1]).total_seconds() < 2.5, (str(ended), [str(t.time()) for t in times])
    assert readings.get("/api/tasks/999999/usage").status_code == 404
    # every thinning was written: a failed one (KeyError 'param_1') was once hidden by the samples it dropped
    assert not server_events(tmp_path / "data", "task_readings_write_failed")
    assert not server_events(tmp_path / "data", "liveness_check_failed")


def test_the_kept_count_stays_exact_through_thinnings_whatever_slots_are_skipped():
    """The count decides when to thin; an estimate (kept // 2) drifted past twice USAGE_SAMPLES_MAX."""
    import random

    from backend.services.task_readings import _Sampling
    rng = random.Random(7)
    for _ in range(200):
        sampling, kept, seq = _Sampling(), [], rng.randrange(1, 10_000)
        for _ in range(rng.randrange(10, 3000)):
            seq += rng.choice((1, 1, 1, 2, 3))  # a loaded box skips slots
            if seq % sampling.stride:
                continue
            sampling.keep(seq)
            kept.append(seq)
            if sampling.kept > 12:
                sampling.double_stride()
                kept = [s for s in kept if s % sampling.stride == 0]
            assert sampling.kept == len(kept) <= 12


def test_a_raw_statement_passes_its_own_literals(tmp_path):
    """literal(0) in a RawStatement is a bind parameter no caller passes: the thinning DELETE failed
    with KeyError('param_1') on every flush, so no sample was ever thinned in the database."""
    import sqlite3

    from sqlalchemy import Column, Integer, MetaData, Table, bindparam, delete, literal
    from sqlalchemy.dialects import sqlite

    from backend.services.raw_sql import RawStatement
    rows = Table("rows", MetaData(), Column("seq", Integer))
    thin = RawStatement(delete(rows).where(rows.c.seq % bindparam("stride") != literal(0)))
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE rows (seq INTEGER)")
    conn.executemany("INSERT INTO rows VALUES (?)", [(n,) for n in range(10)])
    thin.execute(conn.cursor(), sqlite.dialect(), {"stride": 4})
    assert [r[0] for r in conn.execute("SELECT seq FROM rows ORDER BY seq")] == [0, 4, 8]
