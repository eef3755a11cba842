"""No starvation: a waiting task that fits nowhere now gets room kept on one agent (services/reservations.py),
and tasks behind it in the queue use only what that leaves. First the pattern that starved a 2-GPU task
for good (a real server, a real agent, real bash), then the rule itself, in process."""
from __future__ import annotations

import json
import threading
import uuid
from types import SimpleNamespace
from datetime import datetime
from pathlib import Path

import pytest

from backend.extensions import db
from backend.models import Agent, Task, TaskStatus
from backend.services import placements, scheduler
from backend.services import tasks as task_service
from backend.services.capacity import Capacity, GpuSlot
from backend.services.unit_of_work import unit_of_work
from tests.helpers import Api, wait_for

GIB80 = 81920
SMALL_S = 1.5  # each priority-5 task sleeps this long on one GPU
SUBMIT_EVERY_S = 0.75  # a new one this often: more than the two GPUs get through, so some always wait
# The big task waits only for the small tasks that ran when it came (each ends within SMALL_S), plus a
# few heartbeats to report their ends and hand it over.
BIG_START_BOUND_S = 2 * SMALL_S


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_two_gpu_task_starts_within_bound_while_one_gpu_tasks_keep_coming(server, client: Api, start_agent):
    start_agent(cpu_cores=4)  # two simulated GPUs
    agent = wait_for(lambda: next((a for a in client.get("/api/agents").json() if a["status"] == "online"), None),
                     20, message="the agent to come online")
    stop, small_ids = threading.Event(), []
    submitter = Api(client.base_url)  # its own session: the test thread polls with the other one

    def submit_small_tasks():
        while not stop.is_set() and len(small_ids) < 40:
            small = submitter.create_task(f"sleep {SMALL_S}", name="small", priority=5, gpu_count=1)
            small_ids.append(small["id"])
            stop.wait(SUBMIT_EVERY_S)

    thread = threading.Thread(target=submit_small_tasks, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sum(client.task(i)["status"] == "running" for i in list(small_ids)) == 2, 20,
                 message="two small tasks running")
        big = client.create_task("sleep 0.2", name="big", priority=1, gpu_count=2)
        ran = client.wait_status(big["id"], {"running", "completed"}, timeout_s=BIG_START_BOUND_S + 5)
    finally:
        stop.set()
        thread.join(10)
    submitted, began = _time(big["created_time"]), _time(ran["start_time"])
    assert (began - submitted).total_seconds() <= BIG_START_BOUND_S, (submitted, began)
    assert ran["gpu_ids"] == [0, 1]
    jumped = [t["id"] for t in map(client.task, small_ids)
              if t["start_time"] and submitted < _time(t["start_time"]) < began]
    assert jumped == [], "priority-5 tasks started past the waiting priority-1 task"
    log = (server.data_dir / "logs" / "system" / "server.log").read_text().splitlines()
    assert [e["agent_id"] for e in map(json.loads, log)
            if e.get("event") == "task_resources_reserved" and e["task_id"] == big["id"]] == [agent["id"]]


# --- the rule, in process -------------------------------------------------------------------------------

def add_agent(name: str = "a", cores: int = 4, gpus: int = 2, mib: int = GIB80) -> Agent:
    """An online main agent; its id starts with `name` (ties between agents go to the lower id)."""
    agent = Agent(id=f"{name}-{uuid.uuid4().hex[:8]}", name=name, type="main", status="online", cpu_cores=cores,
                  gpu_info=[{"index": i, "memory_total": mib, "memory_used": 0} for i in range(gpus)])
    with unit_of_work(keep_loaded=True):
        db.session.add(agent)
    return agent


def add_task(name: str, priority: int = 3, cpu: int = 1, gpus: int = 0, mem: int = 0,
             state: TaskStatus = TaskStatus.WAITING) -> int:
    with unit_of_work():
        task = Task(name=name, template_type="custom", script_content="true", priority=priority, cpu_cores=cpu,
                    gpu_count=gpus, gpu_memory=mem, status=state.value)
        db.session.add(task)
        db.session.flush()
        return task.id


def hand_over(agent: Agent) -> dict[str, list[int]]:
    """One heartbeat's hand-overs to the agent, recorded as heartbeats._assign does: name -> GPU ids."""
    with unit_of_work():
        agent = db.session.get(Agent, agent.id)
        found = scheduler.find_task_for_agent(agent, scheduler.capacity_of(agent), 64)
        for task, gpu_ids in found:
            task_service.transition(task, TaskStatus.RUNNING)
            placements.place(task, agent.id, gpu_ids)
        return {task.name: gpu_ids for task, gpu_ids in found}


def start(agent: Agent, name: str, **fields) -> int:
    """A task running on the agent (handed over alone)."""
    task_id = add_task(name, **fields)
    assert list(hand_over(agent)) == [name]
    return task_id


def finish(task_id: int) -> None:
    with unit_of_work():
        task_service.finish_task(db.session.get(Task, task_id), 0)


def status(task_id: int) -> str:
    return db.session.get(Task, task_id).status


def reserved(app) -> list[tuple[int, str]]:
    """(task_id, agent_id) of every task_resources_reserved event logged so far."""
    events = map(json.loads, Path(app.config["SYSTEM_LOG_FILE"]).read_text().splitlines())
    return [(e["task_id"], e["agent_id"]) for e in events if e.get("event") == "task_resources_reserved"]


def test_cpu_only_task_starts_beside_a_reservation_when_cores_allow(app):
    with app.app_context():
        agent = add_agent(cores=4)
        first = start(agent, "gpu-0", priority=5, gpus=1)
        big = add_task("big", priority=1, cpu=2, gpus=2)
        add_task("gpu-1", priority=5, gpus=1)
        add_task("cpu", priority=5, cpu=1)
        add_task("cpu-too-many", priority=5, cpu=2)
        # 3 cores free; big keeps 2 of them and both GPUs: one 1-core CPU task fits beside it, nothing more.
        assert hand_over(agent) == {"cpu": []}
        assert reserved(app) == [(big, agent.id)]
        finish(first)
        assert hand_over(agent) == {"big": [0, 1]}


def test_task_bigger_than_every_agent_reserves_nothing_and_blocks_nothing(app):
    with app.app_context():
        agent = add_agent(cores=4)
        giant, huge = add_task("giant", priority=1, gpus=4), add_task("huge", priority=1, cpu=64)
        add_task("small", priority=5, gpus=1)
        assert hand_over(agent) == {"small": [0]}
        big = add_task("big", priority=2, gpus=2)  # behind the giants, and the first that could ever run
        add_task("late", priority=5, gpus=1)
        assert hand_over(agent) == {}
        assert reserved(app) == [(big, agent.id)]
        assert (status(giant), status(huge)) == ("waiting", "waiting")


def test_reservation_goes_where_the_task_lacks_least_and_elsewhere_backfill_goes_on(app):
    with app.app_context():
        busy, half = add_agent("a", cores=4), add_agent("b", cores=4)
        b0 = start(busy, "b0", priority=5, gpus=1)
        start(busy, "b1", priority=5, gpus=1)
        start(half, "h0", priority=5, gpus=1)
        big = add_task("big", priority=1, gpus=2)
        add_task("s1", priority=5, gpus=1)
        add_task("s2", priority=5, gpus=1)
        assert hand_over(busy) == {}  # nothing free there
        assert hand_over(half) == {}  # its free GPU is kept for big, which lacks 1 GPU here and 2 on busy
        assert (big, half.id) in reserved(app)
        finish(b0)
        assert hand_over(busy) == {"s1": [0]}  # not big's target: its freed GPU goes on down the queue


def test_a_later_blocked_task_gets_room_on_another_agent(app):
    with app.app_context():
        first, second = add_agent("a"), add_agent("b")
        on_first, on_second = start(first, "f0", priority=5, gpus=1), start(second, "s0", priority=5, gpus=1)
        big1, big2 = add_task("big1", priority=1, gpus=2), add_task("big2", priority=2, gpus=2)
        add_task("small", priority=5, gpus=1)
        assert hand_over(first) == {} and hand_over(second) == {}
        assert reserved(app) == [(big1, first.id), (big2, second.id)]
        finish(on_second)
        assert hand_over(second) == {"big1": [0, 1]}  # the more urgent one takes the first room that frees
        assert hand_over(first) == {}  # big2 lacks 2 GPUs on second now, 1 here: its room moves here
        assert reserved(app)[2] == (big2, first.id)
        finish(on_first)
        assert hand_over(first) == {"big2": [0, 1]}


@pytest.mark.parametrize("change", [{"draining": True}, {"status": "offline"}])
def test_reservation_moves_off_an_agent_that_drains_or_goes_offline(app, change):
    with app.app_context():
        first, second = add_agent("a"), add_agent("b")
        start(first, "f0", priority=5, gpus=1)
        start(second, "s0", priority=5, gpus=1)
        big = add_task("big", priority=1, gpus=2)
        add_task("small", priority=5, gpus=1)
        assert hand_over(first) == {}  # a tie (each lacks 1 GPU): the lower id keeps the room
        assert reserved(app) == [(big, first.id)]
        with unit_of_work():
            for key, value in change.items():
                setattr(db.session.get(Agent, first.id), key, value)
        assert hand_over(second) == {}  # second keeps the room now, instead of starting small
        assert reserved(app) == [(big, first.id), (big, second.id)]


def test_task_waiting_on_a_dependency_reserves_nothing(app):
    with app.app_context():
        agent = add_agent()
        start(agent, "running", priority=5, gpus=1)
        add_task("blocked big", priority=1, gpus=2, state=TaskStatus.BLOCKED)
        add_task("small", priority=5, gpus=1)
        assert hand_over(agent) == {"small": [1]}
        assert reserved(app) == []


def test_shared_gpu_reservation_leaves_the_memory_it_does_not_need(app):
    with app.app_context():
        agent = add_agent(cores=8)
        first = start(agent, "50g", priority=5, gpus=1, mem=50000)
        add_task("2x60g", priority=1, gpus=2, mem=60000)
        add_task("30g", priority=5, gpus=1, mem=30000)
        add_task("20g", priority=5, gpus=1, mem=20000)
        # GPU 1 keeps 60000 MiB for 2x60g: 21920 are left there; GPU 0 is kept whole until 50g ends.
        assert hand_over(agent) == {"20g": [1]}
        finish(first)
        assert hand_over(agent) == {"2x60g": [0, 1]}


def test_reservation_is_logged_once_however_many_heartbeats_it_lasts(app):
    with app.app_context():
        agent = add_agent()
        first = start(agent, "gpu-0", priority=5, gpus=1)
        big = add_task("big", priority=1, gpus=2)
        add_task("small", priority=5, gpus=1)
        for _ in range(5):
            assert hand_over(agent) == {}
        assert reserved(app) == [(big, agent.id)]
        finish(first)
        assert hand_over(agent) == {"big": [0, 1]}


def test_held_room_is_given_back_exactly():
    cap = Capacity(free_cores=3, gpus=[GpuSlot(0, GIB80, GIB80, reserved_mib=1000, holders=1),
                                       GpuSlot(1, GIB80, GIB80, exclusive=True, holders=1),
                                       GpuSlot(2, GIB80, GIB80)])
    before = cap.copy()
    for request in (dict(cpu_cores=4, gpu_count=3, gpu_memory=0),
                    dict(cpu_cores=1, gpu_count=2, gpu_memory=70000)):
        held = cap.hold(SimpleNamespace(id=1, priority=1, **request))
        assert cap != before
        cap.release(held)
        assert cap == before
