"""A main agent that runs for days: one per state dir (a second is refused, naming the first), the
sub-agent logs in its state dir pruned to the newest KEEP_SUB_AGENT_LOGS, and nothing in its memory
that grows with every task.

What grew: tracemalloc over 600 trivial tasks (snapshots after 100 and after 600, compared by line)
showed the main agent's Python heap flat (+40 KiB, all of it ServerMemory.finished_ids, capped at
MAX_FINISHED_IDS per server) and RSS +0.2 MiB per 1,000 tasks; what grew by ~4 KiB a task was the
sub-agent log files, one per task for ever (page cache and disk of the agent's box).
"""
from __future__ import annotations

import os
import subprocess
import sys

from agent import disk as disk_module
from agent.disk import KEEP_SUB_AGENT_LOGS, SubAgentLogs
from agent.main_agent import MainAgent, MainAgentConfig
from agent.resource_util import ResourceUtil, parse_simulated_gpus
from agent.spool import OUTCOME_FINISHED, Spool
from agent import state as state_module
from agent.state import TaskRecord
from agent.sub_agent_process import SubAgentProcess
from tests.conftest import ROOT
from tests.helpers import wait_for


def test_a_second_main_agent_on_the_same_state_dir_exits_2_naming_the_first(start_agent, client, tmp_path):
    first = start_agent(name="twin")
    wait_for(lambda: any(a["name"] == "twin" for a in client.get("/api/agents").json()), 20,
             message="the first agent to register")
    second = subprocess.run(first.args, cwd=ROOT, capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2, second
    assert len(lines) == 1 and f"pid {first.proc.pid}" in lines[0] and "in use by another main agent" in lines[0], \
        second.stderr
    assert first.proc.poll() is None
    assert [a["name"] for a in client.get("/api/agents").json()].count("twin") == 1


def test_sub_agent_logs_keep_only_the_newest(start_agent, client, tmp_path):
    """KEEP_SUB_AGENT_LOGS old logs are there when the agent starts; three tasks later the three
    oldest are gone, the tasks' own logs are kept, and the count is KEEP_SUB_AGENT_LOGS again."""
    logs = tmp_path / "agent-state" / "agent-1" / "logs"
    logs.mkdir(parents=True)
    for n in range(KEEP_SUB_AGENT_LOGS):
        old = logs / f"sub-agent-{100_000 + n}.log"
        old.write_text("old\n")
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    start_agent()
    ids = [client.create_task("echo hi", name=f"t{n}")["id"] for n in range(3)]
    for task_id in ids:
        assert client.wait_status(task_id, {"completed", "failed"}, 30)["status"] == "completed"
    names = lambda: {p.name for p in logs.glob("sub-agent-*.log")}  # noqa: E731
    wait_for(lambda: len(names()) == KEEP_SUB_AGENT_LOGS, 15, message=f"{KEEP_SUB_AGENT_LOGS} sub-agent logs")
    assert {f"sub-agent-{i}.log" for i in ids} <= names()
    assert not {f"sub-agent-{100_000 + n}.log" for n in range(3)} & names()


def test_sub_agent_logs_of_running_tasks_are_never_pruned(tmp_path):
    for task_id in range(1, 6):
        (tmp_path / f"sub-agent-{task_id}.log").write_text("x")
    logs = SubAgentLogs(tmp_path, running_task_ids=[1, 2], keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub-agent-1.log", "sub-agent-2.log", "sub-agent-5.log"]
    logs.finished(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub-agent-1.log", "sub-agent-2.log"]


def test_what_the_main_agent_keeps_per_finished_task_is_bounded(tmp_path, monkeypatch):
    """Reaping many finished sub-agents leaves the main agent's per-task structures at their bounds:
    finished ids at MAX_FINISHED_IDS, sub-agent logs at KEEP_SUB_AGENT_LOGS, nothing else per task."""
    monkeypatch.setattr(state_module, "MAX_FINISHED_IDS", 50)
    monkeypatch.setattr(disk_module, "KEEP_SUB_AGENT_LOGS", 20)
    (tmp_path / "logs").mkdir()
    agent = MainAgent(MainAgentConfig(server_url="http://127.0.0.1:9", name="t", cpu_cores=2, work_dir=tmp_path,
                                      state_dir=tmp_path), ResourceUtil(parse_simulated_gpus("1x1")))
    agent.sub_agent_logs.keep = disk_module.KEEP_SUB_AGENT_LOGS
    for task_id in range(1, 301):
        record = TaskRecord(task_id=task_id, sub_agent_id=f"sub-{task_id}", pid=sys.maxsize, create_time=0.0)
        agent.state.current.tasks[task_id] = record
        agent.subs.add(SubAgentProcess(record, is_child=False))
        (tmp_path / "logs" / f"sub-agent-{task_id}.log").write_text("log\n")
        spool = Spool(tmp_path, record.sub_agent_id)
        spool.create("true")
        spool.finish(OUTCOME_FINISHED)
        agent.reap_finished()
    assert len(agent.state.current.finished_ids) == 50
    assert list(agent.state.current.finished_ids)[-1] == 300
    assert len(list((tmp_path / "logs").glob("sub-agent-*.log"))) == 20
    assert len(agent.sub_agent_logs.finished_logs) == 20
    assert agent.state.current.tasks == {} and agent.subs.all() == [] and agent.state.current.died == {}
    assert not any((tmp_path / "spool").iterdir())
    assert len(agent.cpus.free) == min(2, len(os.sched_getaffinity(0)))
