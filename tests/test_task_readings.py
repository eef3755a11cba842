"""Progress read from a running task's output, and its resource use kept over its life, through the
real server, agent and bash."""
from __future__ import annotations

import sys
from datetime import datetime

import pytest

from tests.conftest import AgentProcess, ServerProcess, _kill_leftover_task_processes
from tests.helpers import Api, wait_for

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
    """A server keeping 6 to 12 samples per task, and an agent."""
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


def test_usage_samples_arrive_and_are_thinned_evenly_over_a_long_task(readings):
    task = readings.create_task("sleep 6")
    early = wait_for(lambda: len(s := readings.get(f"/api/tasks/{task['id']}/usage").json()["samples"]) >= 3 and s, 10)
    assert {"time", "cpu_percent", "memory_mib", "gpus"} <= set(early[0])
    readings.wait_status(task["id"], "completed", timeout_s=30)
    samples = readings.get(f"/api/tasks/{task['id']}/usage").json()["samples"]
    # ~30 beats at 0.2 s: thinned to between 6 and 12, oldest first, spread over the whole run
    assert 6 <= len(samples) <= 12, samples
    times = [datetime.fromisoformat(s["time"]) for s in samples]
    assert times == sorted(times)
    ended = datetime.fromisoformat(readings.task(task["id"])["end_time"])
    assert (times[0] - datetime.fromisoformat(early[0]["time"])).total_seconds() < 2.5
    assert (ended - times[-1]).total_seconds() < 2.5
    assert readings.get("/api/tasks/999999/usage").status_code == 404
