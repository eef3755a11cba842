"""The agent cards' GPU facts: who holds each GPU (shared and whole), and its utilisation history."""
from __future__ import annotations

from tests.helpers import wait_for


def _main(client) -> dict:
    return client.get("/api/agents").json()[0]


def test_reservations_show_per_gpu_who_holds_it_shared_and_whole(client, main_agent):
    shared_a = client.create_task("sleep 30", gpu_count=1, gpu_memory=1000, cpu_cores=0)
    shared_b = client.create_task("sleep 30", gpu_count=1, gpu_memory=2000, cpu_cores=0)
    whole = client.create_task("sleep 30", gpu_count=1, cpu_cores=0)
    for task in (shared_a, shared_b, whole):
        client.wait_status(task["id"], "running")
    gpus = {t["id"]: client.task(t["id"])["gpu_ids"] for t in (shared_a, shared_b, whole)}
    assert gpus[shared_a["id"]] == gpus[shared_b["id"]] != gpus[whole["id"]]  # shared ones pack onto one GPU
    held = {g["index"]: g for g in _main(client)["gpu_reservations"]}
    shared_gpu, whole_gpu = gpus[shared_a["id"]][0], gpus[whole["id"]][0]
    assert held[shared_gpu] == {"index": shared_gpu, "reserved_mib": 3000, "whole": False,
                                "task_ids": sorted([shared_a["id"], shared_b["id"]])}
    assert held[whole_gpu] == {"index": whole_gpu, "reserved_mib": 0, "whole": True, "task_ids": [whole["id"]]}
    client.post(f"/api/tasks/{shared_a['id']}/cancel")
    wait_for(lambda: {g["index"]: g for g in _main(client)["gpu_reservations"]}[shared_gpu]["task_ids"]
             == [shared_b["id"]], 15, message="the canceled task's hold to go")
    assert client.get(f"/api/agents/{_main(client)['id']}").json()["gpu_reservations"] == \
        _main(client)["gpu_reservations"]


def test_each_gpu_has_a_utilisation_history_for_the_sparkline(client, main_agent):
    history = wait_for(lambda: (h := _main(client)["gpu_history"]) and len(h) == 2 and h, 10)
    assert [g["index"] for g in history] == [0, 1]
    assert all(len(g["utilization"]) == 60 for g in history)
    assert history[0]["utilization"][-1] is not None  # the newest reading is in the last point
