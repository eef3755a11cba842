"""The Slurm executor end to end: a real server, a real main agent with --executor slurm, and a real
single-node Slurm (scripts/slurm_for_tests.sh: munged + slurmctld + slurmd on loopback, two stand-in
GPUs). The Slurm is started once per session and left running for the next session (it is reused).
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import Api, wait_for

ROOT = Path(__file__).resolve().parent.parent
JOB_TIMEOUT_S = 60  # a job's start and end through slurmctld on a busy 2-core box


@pytest.fixture(scope="session")
def slurm_conf() -> str:
    """SLURM_CONF of the test Slurm; fails (never skips) when it cannot be started here."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_for_tests.sh")], capture_output=True,
                          text=True, timeout=600)
    match = re.search(r"^export SLURM_CONF=(\S+)$", done.stdout, re.M)
    if done.returncode != 0 or not match:
        pytest.fail(f"scripts/slurm_for_tests.sh could not start Slurm: {done.stdout}{done.stderr}")
    os.environ["SLURM_CONF"] = match.group(1)  # for the agents the tests start, and for scontrol here
    return match.group(1)


@pytest.fixture
def slurm_agent(slurm_conf, start_agent, client: Api):
    since = (datetime.now() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")  # Slurm's local time
    agent = start_agent("slurm-1", simulate_gpus=None, extra=["--executor", "slurm", "--slurm-max-jobs", "10"])
    wait_for(lambda: any(a["status"] == "online" for a in client.get("/api/agents").json()), 30,
             message="the Slurm agent to come online")
    agent.since = since
    yield agent
    subprocess.run(["scancel", "--user", psutil.Process().username()], capture_output=True)


def slurm_job(agent, task_id: int) -> dict[str, str]:
    """The task's job as scontrol shows it (finished jobs too, for MinJobAge); {} if none. Each test
    has its own server, so task ids repeat: jobs submitted since its agent started are this test's."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True).stdout
    jobs = [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in out.splitlines()]
    mine = [job for job in jobs if job.get("JobName") == f"tq-{task_id}"
            and job.get("SubmitTime", "") >= agent.since]
    assert len(mine) <= 1, f"task {task_id} was submitted {len(mine)} times"
    return mine[0] if mine else {}


def work_dir(agent) -> str:
    return agent.args[agent.args.index("--work-dir") + 1]


def in_squeue(agent, task_id: int) -> bool:
    return slurm_job(agent, task_id).get("JobState") in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")


def test_slurm_chain_runs_with_env_and_work_dir_and_a_failure_cascades(slurm_agent, client: Api):
    work = work_dir(slurm_agent)
    (Path(work) / "sub").mkdir()
    first = client.create_task('echo "id=$TASK_ID name=$TASK_NAME lr=$LR pwd=$(pwd) job=$SLURM_JOB_NAME '
                               'cpus=$SLURM_CPUS_PER_TASK url=$TASK_SERVER_URL"', name="prep",
                               env={"LR": "3e-4"}, work_dir="sub", cpu_cores=2)
    second = client.create_task("echo failing; exit 3", depends_on=[first["id"]])
    third = client.create_task("echo never", depends_on=[second["id"]])
    done = client.wait_status(first["id"], {"completed", "failed"}, JOB_TIMEOUT_S)
    assert done["status"] == "completed", done
    assert client.log(first["id"]).decode() == (
        f"id={first['id']} name=prep lr=3e-4 pwd={work}/sub job=tq-{first['id']} cpus=2 "
        f"url={slurm_agent.server.url}\n")
    failed = client.wait_status(second["id"], {"completed", "failed"}, JOB_TIMEOUT_S)
    assert (failed["status"], failed["exit_code"], failed["status_reason"]) == ("failed", 3, "exit code 3")
    assert client.log(second["id"]) == b"failing\n"
    cascaded = client.wait_status(third["id"], "failed", 10)
    assert str(second["id"]) in cascaded["status_reason"] and cascaded["start_time"] is None


def test_slurm_gpu_task_asks_slurm_for_gres(slurm_agent, client: Api):
    task = client.create_task("echo on a gpu", gpu_count=1)
    done = client.wait_status(task["id"], {"completed", "failed"}, JOB_TIMEOUT_S)
    assert done["status"] == "completed" and done["gpu_ids"] == [], done
    assert "gres:gpu:1" in slurm_job(slurm_agent, task["id"]).get("TresPerNode", ""), slurm_job(slurm_agent, task["id"])


def test_slurm_pending_reason_shows_and_cancel_leaves_squeue(slurm_agent, client: Api):
    script = "for i in $(seq 1 300); do echo $i; sleep 1; done"
    big = client.create_task(script, cpu_cores=2, name="big")
    wait_for(lambda: b"2\n" in client.log(big["id"]), JOB_TIMEOUT_S, message="the big job to run")
    queued = client.create_task(script, cpu_cores=1, name="queued")
    noted = wait_for(lambda: (t := client.task(queued["id"]))["status_reason"] == "Slurm: PENDING (Resources)"
                     and t, 30, message="Slurm's pending reason in status_reason")
    assert noted["status"] == "running"
    assert client.post(f"/api/tasks/{big['id']}/cancel").status_code == 200
    wait_for(lambda: not in_squeue(slurm_agent, big["id"]), 30, message="the canceled job to leave squeue")
    assert client.wait_status(big["id"], "canceled", 5)["status"] == "canceled"
    wait_for(lambda: b"2\n" in client.log(queued["id"]), JOB_TIMEOUT_S, message="the queued job to run")
    assert client.task(queued["id"])["status_reason"] is None
    client.post(f"/api/tasks/{queued['id']}/cancel")
    wait_for(lambda: not in_squeue(slurm_agent, queued["id"]), 30, message="the second job to leave squeue")


def test_slurm_time_limit_fails_the_task_with_slurms_timeout(slurm_agent, client: Api):
    """time_limit_s=60 is sbatch --time=1; to keep the test short its end is then pulled in (Slurm
    checks limits every 30 s), so that Slurm's own TIMEOUT ends it."""
    task = client.create_task("for i in $(seq 1 300); do echo $i; sleep 1; done", time_limit_s=60)
    wait_for(lambda: b"1\n" in client.log(task["id"]), JOB_TIMEOUT_S, message="the job to run")
    job = slurm_job(slurm_agent, task["id"])
    assert job["TimeLimit"] == "00:01:00", job
    # a moment from now (Slurm refuses some end times at or before the job's start: "Invalid time specified")
    soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 2))
    subprocess.run(["scontrol", "update", f"JobId={job['JobId']}", f"EndTime={soon}"], check=True)
    failed = client.wait_status(task["id"], {"failed", "completed"}, 90)
    assert failed["status"] == "failed" and "time limit" in failed["status_reason"], failed
    assert failed["status_reason"].startswith("Slurm: TIMEOUT")


def test_slurm_agent_restart_adopts_the_running_job(slurm_agent, client: Api):
    """kill -9 of the main agent and its sub-agents mid-job; a new one follows the same job: the log
    has every line once, and the task was submitted once."""
    lines = 60
    task = client.create_task(f"for i in $(seq 1 {lines}); do echo line-$i; sleep 0.1; done")
    wait_for(lambda: b"line-3\n" in client.log(task["id"]), JOB_TIMEOUT_S, message="the job to run")
    state_dir = slurm_agent.args[slurm_agent.args.index("--state-dir") + 1]
    for proc in psutil.process_iter(["cmdline"]):
        if state_dir in " ".join(proc.info["cmdline"] or []):
            proc.send_signal(signal.SIGKILL)
    slurm_agent.proc.wait(15)
    slurm_agent.start()
    done = client.wait_status(task["id"], {"completed", "failed"}, JOB_TIMEOUT_S)
    assert done["status"] == "completed", done
    assert client.log(task["id"]) == "".join(f"line-{i}\n" for i in range(1, lines + 1)).encode()
    assert slurm_job(slurm_agent, task["id"])  # exactly one job of that name (slurm_job asserts it)
    sub_log = Path(state_dir) / "logs" / f"sub-agent-{task['id']}.log"
    assert '"slurm_job_adopted"' in sub_log.read_text()
