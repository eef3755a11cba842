"""Why a task waits, kept current in its status_reason, through the real server and agents."""
from __future__ import annotations

from tests.helpers import wait_for

PRIORITY = "waiting for priority: tasks ahead of it in the queue go first"


def _reason(client, task_id: int, *words: str) -> str:
    return wait_for(lambda: (r := client.task(task_id)["status_reason"] or "") and all(w in r for w in words) and r,
                    10, message=f"task {task_id}'s reason to say {words}")


def test_a_task_no_agent_could_ever_run_says_so_until_a_big_enough_agent_comes(client, start_agent):
    big = client.create_task("echo big", cpu_cores=16)
    _reason(client, big["id"], "no online agent can run it", "no agent is online")
    start_agent("small", cpu_cores=4)
    assert _reason(client, big["id"], "largest: 4 cores") == \
        "no online agent can run it (largest: 4 cores, 2 GPUs, 80 GiB per GPU)"
    gpus = client.create_task("echo gpus", cpu_cores=1, gpu_count=3)
    _reason(client, gpus["id"], "no online agent can run it (largest: 4 cores, 2 GPUs")
    start_agent("big", cpu_cores=16, simulate_gpus="4x81920")
    client.wait_status(big["id"], "completed")
    client.wait_status(gpus["id"], "completed")
    assert client.task(big["id"])["status_reason"] is None


def test_first_in_line_waits_for_resources_the_rest_for_priority(client, start_agent):
    start_agent("box", cpu_cores=4)
    hog = client.create_task("sleep 30", cpu_cores=4)
    client.wait_status(hog["id"], "running")
    head = client.create_task("echo head", cpu_cores=2, gpu_count=1)
    behind = client.create_task("echo behind", cpu_cores=2, priority=4)
    _reason(client, head["id"], "waiting for resources: ", "2 cores and 1 whole GPU")
    assert _reason(client, behind["id"], "priority") == PRIORITY
    urgent = client.create_task("echo urgent", cpu_cores=1, gpu_count=1, gpu_memory=512, priority=1)
    _reason(client, urgent["id"], "waiting for resources: ", "1 core and 1 GPU with 512 MiB free")
    client.post(f"/api/tasks/{hog['id']}/cancel")
    for task in (urgent, head, behind):
        client.wait_status(task["id"], "completed")


def test_the_sql_fit_test_agrees_with_the_scheduler_s_room_for_every_size(app):
    """waiting_reasons.fits_any (SQL, set-based) says exactly what Capacity.shortfall says, for agents
    with mixed GPU sizes and requests of every shape."""
    from itertools import product

    from sqlalchemy import select

    from backend.extensions import db
    from backend.models import Task
    from backend.services import tasks as task_service
    from backend.services.capacity import whole_room
    from backend.services.waiting_reasons import fits_any

    gpus = lambda *sizes: [{"index": i, "memory_total": s, "memory_used": 0} for i, s in enumerate(sizes)]
    rooms = [whole_room(8, gpus(81920, 81920, 24576)), whole_room(32, [])]
    with app.app_context():
        for cores, count, mib in product((0, 8, 9, 32, 33), (0, 1, 2, 3), (0, 20000, 30000, 90000)):
            task_service.create_task(name="t", template_type="c", script_content="true",
                                     cpu_cores=cores, gpu_count=count, gpu_memory=mib)
        fitting = set(db.session.scalars(select(Task.id).where(fits_any(rooms))))
        tasks = db.session.scalars(select(Task)).all()
        expected = {t.id for t in tasks if any(room.shortfall(t) == (0, 0) for room in rooms)}
        assert fitting == expected and 0 < len(expected) < len(tasks)
        assert set(db.session.scalars(select(Task.id).where(fits_any([])))) == set()
