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
