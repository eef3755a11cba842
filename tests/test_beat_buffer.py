"""A sub-agent beat's writes (GPU task or not) wait in services/beat_buffer.py and reach the database
on the next flush (liveness tick; agent queries show them before it: tests/test_agent_reads.py): the
batched statement must store what the ORM reads back, never overwrite a newer write, and write only the
sub-agent's row, never its task's. In-process app and client."""
from __future__ import annotations

import pytest

from backend.extensions import db
from backend.models import Agent, AgentStatus, Task, TaskStatus
from backend.services import beat_buffer, last_heard, liveness
from backend.services.unit_of_work import unit_of_work
from task_common import protocol as p
from backend.utils.time import as_utc, utcnow


@pytest.fixture
def app(tmp_path):
    from backend.factory import create_app

    application = create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), "RUN_BACKGROUND_JOBS": False,
                              "RESTART_GRACE_S": 1e-6, "SUB_AGENT_LEASE_S": 5})
    with application.app_context():
        yield application
        db.session.remove()


def post(client, path: str, message: p.Message) -> dict:
    resp = client.post(path, json=message.to_dict())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


MAIN_GPUS = [p.GpuInfo(index=i, name="Simulated GPU", uuid=f"GPU-{i}", memory_total=81920, simulated=True)
             for i in range(2)]


def running_task(client, gpu_count: int = 0) -> tuple[int, str]:
    """A task handed to a main agent and started by a sub-agent: (task id, sub-agent id)."""
    main_id = post(client, p.REGISTER_MAIN_PATH, p.RegisterMain(name="m", hostname="h", cpu_cores=4,
                                                                memory_total_mib=1024, gpus=MAIN_GPUS))["agent_id"]
    resp = client.post("/api/tasks", json={"name": "t", "template_type": "x", "script_content": "sleep 60",
                                           "gpu_count": gpu_count})
    assert resp.status_code == 201
    reply = post(client, p.MAIN_HEARTBEAT_PATH, p.MainHeartbeat(agent_id=main_id, cpu_cores=4, gpus=MAIN_GPUS,
                                                                 wait_s=0))
    task_id = reply["start"][0]["task_id"]
    post(client, p.REGISTER_SUB_PATH, p.RegisterSub(sub_agent_id=f"sub-{task_id}", main_agent_id=main_id,
                                                    task_id=task_id, pid=1, hostname="h"))
    return task_id, f"sub-{task_id}"


def beat(client, message: p.SubHeartbeat, output: bytes = b"") -> dict:
    resp = client.post(p.SUB_HEARTBEAT_PATH, query_string=message.to_dict(), data=output,
                       content_type=p.OUTPUT_CONTENT_TYPE)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def plain_beat(client, task_id: int, sub_id: str, cpu: float, output: bytes = b"", offset: int = 0,
               gpus: tuple[p.ProcessGpuUsage, ...] = ()) -> dict:
    return beat(client, p.SubHeartbeat(sub_agent_id=sub_id, task_id=task_id, offset=offset, cpu_usage=cpu,
                                       memory_usage=1.5, memory_used_mib=321.0, gpus=list(gpus)), output)


def fresh(model, key):
    db.session.expire_all()
    return db.session.get(model, key)


def row_of(model, key) -> dict:
    """Every column of one row, as stored."""
    row = fresh(model, key)
    return {column.key: getattr(row, column.key) for column in model.__table__.columns}


def test_a_plain_beat_is_stored_on_flush_as_the_orm_reads_it(app):
    client = app.test_client()
    task_id, sub_id = running_task(client)
    before = utcnow()
    reply = plain_beat(client, task_id, sub_id, cpu=87.5, output=b"step 1\n")
    assert reply["log_size"] == 7  # output is stored at once, not buffered
    assert fresh(Agent, sub_id).cpu_usage != 87.5  # usage waits for the flush

    agents = client.get("/api/agents").get_json()  # agent queries show it before the flush
    sub = next(s for m in agents for s in m["sub_agents"] if s["id"] == sub_id)
    assert (sub["cpu_usage"], sub["memory_usage"], sub["memory_used_mib"]) == (87.5, 1.5, 321.0)
    assert beat_buffer.flush() == 1
    agent = fresh(Agent, sub_id)
    assert agent.status == AgentStatus.ONLINE.value
    assert before <= as_utc(agent.last_heartbeat_time) <= utcnow()
    assert (agent.cpu_usage, agent.memory_usage, agent.memory_used_mib) == (87.5, 1.5, 321.0)


def test_a_gpu_beat_takes_the_same_buffered_path_and_names_its_gpus_from_the_main_agent(app):
    client = app.test_client()
    task_id, sub_id = running_task(client, gpu_count=1)
    plain_beat(client, task_id, sub_id, cpu=20.0, gpus=(p.ProcessGpuUsage(index=1, memory_used=4096, utilization=77.5),))
    assert fresh(Agent, sub_id).gpu_info == []  # waits for the flush, like any beat

    assert beat_buffer.flush() == 1
    assert fresh(Agent, sub_id).gpu_info == [{"index": 1, "name": "Simulated GPU", "uuid": "GPU-1", "memory_total": 81920,
                                             "simulated": True, "memory_used": 4096, "utilization": 77.5}]


def test_a_pending_beat_never_overwrites_a_newer_write(app):
    client = app.test_client()
    task_id, sub_id = running_task(client)
    plain_beat(client, task_id, sub_id, cpu=50.0)  # pending
    beat(client, p.SubHeartbeat(  # the final beat: written at once
        sub_agent_id=sub_id, task_id=task_id, offset=0, cpu_usage=1.0, returncode=0, final_size=0))
    assert beat_buffer.flush() == 1
    agent = fresh(Agent, sub_id)
    assert agent.status == AgentStatus.OFFLINE.value and agent.cpu_usage == 1.0
    assert fresh(Task, task_id).status == TaskStatus.COMPLETED.value


def test_a_flushed_beat_writes_its_sub_agents_row_and_never_the_task_one_another_took_over(app):
    client = app.test_client()
    task_id, sub_id = running_task(client)
    plain_beat(client, task_id, sub_id, cpu=50.0)  # pending
    with unit_of_work():
        db.session.get(Task, task_id).sub_agent_id = "someone-else"
    before = row_of(Task, task_id)
    assert beat_buffer.flush() == 1
    assert row_of(Task, task_id) == before
    assert fresh(Agent, sub_id).cpu_usage == 50.0


def test_the_liveness_check_counts_beats_not_yet_flushed(app, monkeypatch):
    client = app.test_client()
    task_id, sub_id = running_task(client)
    main_id = fresh(Task, task_id).agent_id
    clock = [last_heard.clock()]
    monkeypatch.setattr(last_heard, "clock", lambda: clock[0])
    clock[0] += 60  # silent for longer than the 5 s lease
    plain_beat(client, task_id, sub_id, cpu=10.0)
    liveness.check_agents_status()
    assert fresh(Task, task_id).status == TaskStatus.RUNNING.value

    clock[0] += 60
    post(client, p.MAIN_HEARTBEAT_PATH, p.MainHeartbeat(agent_id=main_id, cpu_cores=4, wait_s=0))  # not listing it
    liveness.check_agents_status()  # no beat since: the lease ran out
    assert fresh(Task, task_id).status == TaskStatus.FAILED.value
