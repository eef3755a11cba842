"""GET /api/agents and /api/agents/<id> write nothing, yet show every sub-agent beat received, also
the ones services/beat_buffer.py has not written yet: exactly as they read once it has. In-process app."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from backend.extensions import db
from backend.models import Agent
from backend.services import beat_buffer
from task_common import protocol as p

GPUS = [p.GpuInfo(index=i, name="Simulated GPU", uuid=f"GPU-{i}", memory_total=81920, simulated=True) for i in range(2)]


@pytest.fixture
def app(tmp_path):
    from backend.factory import create_app

    application = create_app({"TESTING": True, "DATA_DIR": str(tmp_path / "data"), "RUN_BACKGROUND_JOBS": False})
    with application.app_context():
        yield application
        db.session.remove()


def post(client, path: str, message: p.Message) -> dict:
    resp = client.post(path, json=message.to_dict())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def running_task(client, gpu_count: int) -> tuple[str, str]:
    """(main agent id, sub-agent id) of a task handed over and started."""
    main_id = post(client, p.REGISTER_MAIN_PATH, p.RegisterMain(name="m", hostname="h", cpu_cores=4,
                                                                memory_total_mib=1024, gpus=GPUS))["agent_id"]
    resp = client.post("/api/tasks", json={"name": "t", "template_type": "x", "script_content": "sleep 60",
                                           "gpu_count": gpu_count})
    assert resp.status_code == 201
    task_id = post(client, p.MAIN_HEARTBEAT_PATH, p.MainHeartbeat(agent_id=main_id, cpu_cores=4, gpus=GPUS,
                                                                   wait_s=0))["start"][0]["task_id"]
    post(client, p.REGISTER_SUB_PATH, p.RegisterSub(sub_agent_id=f"sub-{task_id}", main_agent_id=main_id,
                                                    task_id=task_id, pid=1, hostname="h"))
    beat = p.SubHeartbeat(sub_agent_id=f"sub-{task_id}", task_id=task_id, offset=0, cpu_usage=87.5, memory_usage=1.5,
                          memory_used_mib=321.0,
                          gpus=[p.ProcessGpuUsage(index=0, memory_used=4096, utilization=77.5)] if gpu_count else [])
    resp = client.post(p.SUB_HEARTBEAT_PATH, query_string=beat.to_dict(), data=b"", content_type=p.OUTPUT_CONTENT_TYPE)
    assert resp.status_code == 200, resp.get_json()
    return main_id, f"sub-{task_id}"


def reads(client, main_id: str, sub_id: str) -> list[dict]:
    """The sub-agent as each agent read shows it (running_time left out: it moves with the clock)."""
    tree = client.get("/api/agents").get_json()
    shown = [next(s for m in tree for s in m["sub_agents"] if s["id"] == sub_id),
             next(s for s in client.get(f"/api/agents/{main_id}").get_json()["sub_agents"] if s["id"] == sub_id),
             client.get(f"/api/agents/{sub_id}").get_json()]
    return [{k: v for k, v in agent.items() if k != "running_time"} for agent in shown]


@pytest.mark.parametrize("gpu_count", [0, 1], ids=["cpu-task", "gpu-task"])
def test_agent_reads_show_buffered_beats_without_writing_them(app, gpu_count):
    client = app.test_client()
    main_id, sub_id = running_task(client, gpu_count)
    writes = []
    listener = lambda conn, cursor, sql, *rest: writes.append(sql) if not sql.lstrip().startswith("SELECT") else None
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        before_flush = reads(client, main_id, sub_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert writes == [] and sub_id in beat_buffer.pending()  # nothing written, the beat still waits
    db.session.expire_all()
    assert db.session.get(Agent, sub_id).cpu_usage != 87.5

    assert beat_buffer.flush() == 1
    after_flush = reads(client, main_id, sub_id)
    assert before_flush == after_flush
    assert (after_flush[0]["cpu_usage"], after_flush[0]["memory_used_mib"]) == (87.5, 321.0)
    if gpu_count:
        assert after_flush[0]["gpu_info"][0]["name"] == "Simulated GPU"
