"""Which waiting tasks a main agent's heartbeat hands over, on which GPUs: priority and FIFO,
backfill beside room kept for a task that fits later (tests/test_starvation.py has that rule), whole
and shared GPUs, many per reply, no double hand-over under concurrency, and placements that survive a
server restart. A real server, driven by tests/protocol_agent.py."""
from __future__ import annotations

import threading
import time

from tests.helpers import Api
from tests.protocol_agent import ProtocolAgent

GIB80 = 81920


def started(reply) -> dict[int, list[int]]:
    """task id -> gpu_ids of every hand-over in a heartbeat reply."""
    return {a.task_id: a.gpu_ids for a in reply.start}


def test_priority_1_runs_first_then_fifo_within_a_priority(shared_server, shared_client: Api):
    order = [("p3-first", 3), ("p1-first", 1), ("p3-second", 3), ("p2", 2), ("p1-second", 1), ("p5", 5),
             ("p3-third", 3)]
    ids = {name: shared_client.create_task("echo", name=name, priority=prio)["id"] for name, prio in order}
    agent = ProtocolAgent(shared_server.url, cpu_cores=1).register()  # room for one task at a time
    ran = []
    for _ in order:
        reply = agent.heartbeat()
        assert len(reply.start) == 1, reply
        ran.append(reply.start[0].task_id)
        agent.run_to_end(reply.start[0])
    names = {v: k for k, v in ids.items()}
    assert [names[i] for i in ran] == ["p1-first", "p1-second", "p2", "p3-first", "p3-second", "p3-third", "p5"]
    assert agent.heartbeat().start == []


def test_task_that_fits_nowhere_is_skipped_and_one_that_fits_later_keeps_its_room(server, client: Api):
    """A fresh server: on the shared one, other tests' agents could be where the big task fits now."""
    agent = ProtocolAgent(server.url, cpu_cores=4).register()
    first = client.create_task("echo", name="half", cpu_cores=2)
    reply = agent.heartbeat()
    assert started(reply) == {first["id"]: []}
    agent.start_sub(reply.start[0])
    too_big = client.create_task("echo", name="never fits", cpu_cores=5, priority=1)
    big = client.create_task("echo", name="big", cpu_cores=3, priority=2)
    small = client.create_task("echo", name="small", cpu_cores=1, priority=5)
    coreless = client.create_task("echo", name="needs no core", cpu_cores=0, priority=5)
    reply = agent.heartbeat()
    # small would fit in the 2 free cores, but big keeps 3 (services/reservations.py); the task that
    # needs none may run beside it, and too_big, larger than any agent, holds nothing back.
    assert started(reply) == {coreless["id"]: []}
    agent.run_to_end(reply.start[0])
    assert agent.heartbeat().start == []  # "half" still holds 2 of the 4 cores
    agent.running[first["id"]].finish(0)
    assert started(agent.heartbeat()) == {big["id"]: [], small["id"]: []}  # small uses the core big leaves
    assert client.task(too_big["id"])["status"] == "waiting"


def test_whole_gpu_tasks_take_free_gpus_exclusively(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=8, gpus=f"2x{GIB80}").register()
    w1, w2, w3 = (shared_client.create_task("echo", name=f"whole-{i}", gpu_count=1) for i in range(3))
    shared = shared_client.create_task("echo", name="shared", gpu_count=1, gpu_memory=1000)
    reply = agent.heartbeat()
    assert started(reply) == {w1["id"]: [0], w2["id"]: [1]}
    subs = {a.task_id: agent.start_sub(a) for a in reply.start}
    assert shared_client.task(w1["id"])["gpu_ids"] == [0]
    subs[w1["id"]].finish(0)
    reply = agent.heartbeat()
    assert started(reply) == {w3["id"]: [0]}  # FIFO: the next whole-GPU task, not the shared one
    agent.start_sub(reply.start[0])
    assert shared_client.task(shared["id"])["status"] == "waiting"


def test_multi_gpu_whole_task_needs_that_many_idle_gpus(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=8, gpus=f"2x{GIB80}").register()
    shared = shared_client.create_task("echo", name="shared", gpu_count=1, gpu_memory=100)
    both = shared_client.create_task("echo", name="both gpus", gpu_count=2)
    reply = agent.heartbeat()
    assert started(reply) == {shared["id"]: [0]}  # a GPU with any holder is not free for a whole-GPU task
    agent.run_to_end(reply.start[0])
    assert started(agent.heartbeat()) == {both["id"]: [0, 1]}


def test_shared_gpu_tasks_pack_onto_one_gpu_within_its_memory(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=8, gpus=f"2x{GIB80}").register()
    a, b, c = (shared_client.create_task("echo", name=f"30g-{i}", gpu_count=1, gpu_memory=30000) for i in range(3))
    pair = shared_client.create_task("echo", name="2x40g", gpu_count=2, gpu_memory=40000)
    whole = shared_client.create_task("echo", name="whole", gpu_count=1)
    reply = agent.heartbeat()
    # a and b share GPU 0 (60000 of 81920 MiB); c no longer fits there and goes to GPU 1.
    assert started(reply) == {a["id"]: [0], b["id"]: [0], c["id"]: [1]}
    for assignment in reply.start:
        assert assignment.gpu_memory == 30000
        agent.start_sub(assignment)
    assert agent.heartbeat().start == []
    assert shared_client.task(pair["id"])["status"] == "waiting"  # GPU 0 has only 21920 MiB unreserved
    assert shared_client.task(whole["id"])["status"] == "waiting"  # no GPU without holders
    agent.running[a["id"]].finish(0)
    agent.running[b["id"]].finish(0)
    assert started(agent.heartbeat()) == {pair["id"]: [0, 1]}


def test_reserved_gpu_memory_counts_even_before_the_task_uses_it(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=8, gpus=f"1x{GIB80}").register()
    first = shared_client.create_task("echo", name="60g", gpu_count=1, gpu_memory=60000)
    second = shared_client.create_task("echo", name="30g", gpu_count=1, gpu_memory=30000)
    reply = agent.heartbeat()
    assert started(reply) == {first["id"]: [0]}
    agent.start_sub(reply.start[0])
    assert agent.heartbeat().start == []  # NVML still measures 0 MiB used, but 60000 are promised
    assert shared_client.task(second["id"])["status"] == "waiting"


def test_measured_gpu_memory_in_use_by_others_is_respected(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=8, gpus=[(GIB80, 70000), (GIB80, 0)]).register()
    one = shared_client.create_task("echo", name="1x20g", gpu_count=1, gpu_memory=20000)
    two = shared_client.create_task("echo", name="2x20g", gpu_count=2, gpu_memory=20000)
    reply = agent.heartbeat()
    assert started(reply) == {one["id"]: [1]}  # GPU 0 has only 11920 MiB actually free
    agent.start_sub(reply.start[0])
    assert shared_client.task(two["id"])["status"] == "waiting"
    agent.set_gpu_used(0, 0)  # the other user of GPU 0 went away
    assert started(agent.heartbeat()) == {two["id"]: [0, 1]}


def test_one_reply_hands_over_every_task_that_fits_each_with_its_gpus(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=6, gpus=f"2x{GIB80}").register()
    made = [shared_client.create_task(f"echo {name}", name=name, **fields) for name, fields in [
        ("cpu-1", {}), ("shared-1", {"gpu_memory": 10000, "gpu_count": 1}), ("whole-1", {"gpu_count": 1}),
        ("shared-2", {"gpu_memory": 10000, "gpu_count": 1}), ("cpu-2", {"cpu_cores": 2}),
        ("too-big", {"cpu_cores": 6}), ("cpu-zero", {"cpu_cores": 0})]]
    ids = {t["name"]: t["id"] for t in made}
    reply = agent.heartbeat()
    assert started(reply) == {ids["cpu-1"]: [], ids["shared-1"]: [0], ids["whole-1"]: [1], ids["shared-2"]: [0],
                              ids["cpu-2"]: [], ids["cpu-zero"]: []}
    assert [a.task_id for a in reply.start] == sorted(a.task_id for a in reply.start)
    by_id = {a.task_id: a for a in reply.start}
    for task in made:
        if task["name"] == "too-big":
            continue
        assignment = by_id[task["id"]]
        assert (assignment.name, assignment.script_content, assignment.cpu_cores, assignment.gpu_memory) == \
            (task["name"], task["script_content"], task["cpu_cores"], task["gpu_memory"])
        stored = shared_client.task(task["id"])
        assert stored["status"] == "running" and stored["agent_id"] == agent.agent_id
        assert stored["gpu_ids"] == assignment.gpu_ids and stored["start_time"].endswith("+00:00")
    assert shared_client.task(ids["too-big"])["status"] == "waiting"
    listed = shared_client.get(f"/api/agents/{agent.agent_id}").json()
    assert listed["available_cpu_cores"] == 0


def test_concurrent_main_agents_never_get_the_same_task(shared_server, shared_client: Api):
    count = 36
    ids = {shared_client.create_task("echo", name=f"race-{i}", priority=1 + i % 5)["id"] for i in range(count)}
    agents = [ProtocolAgent(shared_server.url, name=f"racer-{n}", cpu_cores=2).register() for n in range(3)]
    handed: dict[str, list[int]] = {a.agent_id: [] for a in agents}
    errors: list[BaseException] = []
    done = threading.Event()
    deadline = time.monotonic() + 30

    def work(agent: ProtocolAgent):
        try:
            while not done.is_set() and time.monotonic() < deadline:
                reply = agent.heartbeat(wait_s=0.2)
                for assignment in reply.start:
                    handed[agent.agent_id].append(assignment.task_id)
                    agent.run_to_end(assignment, output=f"ran on {agent.name}\n".encode())
                if sum(len(v) for v in handed.values()) >= count:
                    done.set()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=work, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert not errors, errors
    everything = [task_id for got in handed.values() for task_id in got]
    assert sorted(everything) == sorted(ids), "every task handed over exactly once"
    for agent in agents:
        for task_id in handed[agent.agent_id]:
            task = shared_client.task(task_id)
            assert task["status"] == "completed" and task["agent_id"] == agent.agent_id
            assert shared_client.log(task_id) == f"ran on {agent.name}\n".encode()


def test_resources_held_by_running_tasks_survive_a_server_restart(server, client: Api):
    agent = ProtocolAgent(server.url, cpu_cores=2, gpus=f"1x{GIB80}").register()
    holder = client.create_task("echo", name="holds everything", cpu_cores=2, gpu_count=1)
    reply = agent.heartbeat()
    assert started(reply) == {holder["id"]: [0]}
    sub = agent.start_sub(reply.start[0])
    sub.write(b"before the restart\n")

    server.kill()
    server.start()

    cpu_task = client.create_task("echo", name="needs a core")
    gpu_task = client.create_task("echo", name="needs gpu memory", cpu_cores=0, gpu_count=1, gpu_memory=1000)
    for _ in range(3):
        assert agent.heartbeat(wait_s=0.1).start == []  # still full: no double booking after the restart
    assert client.task(holder["id"])["status"] == "running"
    sub.write(b"after the restart\n")
    sub.finish(0)
    assert client.task(holder["id"])["status"] == "completed"
    assert client.log(holder["id"]) == b"before the restart\nafter the restart\n"
    assert started(agent.heartbeat()) == {cpu_task["id"]: [], gpu_task["id"]: [0]}



def test_once_the_cores_are_full_tasks_that_need_none_still_start(shared_server, shared_client: Api):
    """The rescan for core-less tasks runs on its own index (ix_tasks_coreless): it must still find them,
    in priority order, behind any number of waiting tasks that need a core."""
    agent = ProtocolAgent(shared_server.url, cpu_cores=1, gpus=f"2x{GIB80}").register()
    first = shared_client.create_task("echo", name="takes the core")
    blocked = [shared_client.create_task("echo", name=f"needs a core {i}") for i in range(3)]
    late = shared_client.create_task("echo", name="gpu only, low", cpu_cores=0, gpu_count=1, priority=5)
    urgent = shared_client.create_task("echo", name="gpu only, urgent", cpu_cores=0, gpu_count=1, priority=1)
    assert started(agent.heartbeat()) == {first["id"]: [], urgent["id"]: [0], late["id"]: [1]}
    assert all(shared_client.task(t["id"])["status"] == "waiting" for t in blocked)
