"""Drain, resume and forget a main agent (POST /api/agents/<id>/drain|resume, DELETE /api/agents/<id>),
against a real server and a real main agent."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers import Api, wait_for


def gated_script(flag: Path) -> str:
    """A task that runs until the test creates `flag`."""
    return f"while [ ! -e '{flag}' ]; do sleep 0.05; done; echo released"


def agent_json(client: Api, agent_id: str) -> dict:
    resp = client.get(f"/api/agents/{agent_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_heartbeats(client: Api, agent_id: str, count: int = 2) -> None:
    """Until the agent's last_heartbeat_time advanced `count` times: it asked for work that often."""
    seen = [agent_json(client, agent_id)["last_heartbeat_time"]]

    def advanced() -> bool:
        now = agent_json(client, agent_id)["last_heartbeat_time"]
        if now != seen[-1]:
            seen.append(now)
        return len(seen) > count

    wait_for(advanced, 15, message=f"{count} heartbeats of agent {agent_id}")


def only_main_id(client: Api) -> str:
    [main] = client.get("/api/agents").json()
    return main["id"]


def sub_agent_of(client: Api, task_id: int) -> str:
    return wait_for(lambda: client.task(task_id)["sub_agent_id"], 20, message=f"task {task_id}'s sub-agent")


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"], error


def test_drained_agent_takes_no_new_task_but_finishes_its_running_one_and_resume_runs_it(
        client: Api, main_agent, tmp_path: Path):
    main_id = only_main_id(client)
    running = client.create_task(gated_script(tmp_path / "go"), name="running")
    client.wait_status(running["id"], "running")
    sub_id = sub_agent_of(client, running["id"])

    resp = client.post(f"/api/agents/{main_id}/drain")
    assert resp.status_code == 200, resp.text
    drained = resp.json()
    assert drained["id"] == main_id and drained["draining"] is True
    assert sub_id in [s["id"] for s in drained["sub_agents"]]
    assert client.post(f"/api/agents/{main_id}/drain").json()["draining"] is True  # twice is fine

    waiting = client.create_task("echo later", name="later")
    wait_heartbeats(client, main_id)
    assert client.task(waiting["id"])["status"] == "waiting"
    agent = agent_json(client, main_id)
    assert agent["status"] == "online" and agent["draining"] is True
    assert agent["available_cpu_cores"] == 3  # its free room is still shown: 4 cores, 1 in use

    (tmp_path / "go").touch()
    assert client.wait_status(running["id"], {"completed", "failed"})["status"] == "completed"
    wait_heartbeats(client, main_id)  # the freed core is offered to nobody while draining
    assert client.task(waiting["id"])["status"] == "waiting"

    resp = client.post(f"/api/agents/{main_id}/resume")
    assert resp.status_code == 200 and resp.json()["draining"] is False, resp.text
    assert client.wait_status(waiting["id"], {"completed", "failed"})["status"] == "completed"
    assert client.task(waiting["id"])["agent_id"] == main_id


@pytest.mark.parametrize("method, suffix", [("POST", "/drain"), ("POST", "/resume"), ("DELETE", "")],
                         ids=["drain", "resume", "forget"])
def test_unknown_agent_answers_404(shared_client: Api, method: str, suffix: str):
    assert_error(shared_client.request(method, f"/api/agents/no-such-agent{suffix}"), 404, "agent_not_found")


def test_sub_agent_cannot_be_drained_resumed_or_forgotten(client: Api, main_agent, tmp_path: Path):
    task = client.create_task(gated_script(tmp_path / "go"))
    client.wait_status(task["id"], "running")
    sub_id = sub_agent_of(client, task["id"])
    for method, suffix in [("POST", "/drain"), ("POST", "/resume"), ("DELETE", "")]:
        assert_error(client.request(method, f"/api/agents/{sub_id}{suffix}"), 409, "agent_not_main")
    (tmp_path / "go").touch()
    client.wait_status(task["id"], "completed")


def test_forget_refuses_online_agent_and_forgets_offline_one_with_its_sub_agents(
        client: Api, start_agent, main_agent, tmp_path: Path):
    main_id = only_main_id(client)
    done = client.create_task("echo done", name="done")
    client.wait_status(done["id"], "completed")
    done_sub = client.task(done["id"])["sub_agent_id"]
    running = client.create_task(gated_script(tmp_path / "go"), name="outlives its agent")
    client.wait_status(running["id"], "running")
    running_sub = sub_agent_of(client, running["id"])
    assert_error(client.request("DELETE", f"/api/agents/{main_id}"), 409, "agent_online")

    main_agent.kill(signal.SIGTERM)  # stops; its running task goes on in its sub-agent
    main_agent.kill(signal.SIGKILL)
    wait_for(lambda: agent_json(client, main_id)["status"] == "offline", 15, message="the agent to go offline")
    assert_error(client.request("DELETE", f"/api/agents/{main_id}"), 409, "agent_has_running_tasks")

    (tmp_path / "go").touch()
    client.wait_status(running["id"], "completed")
    resp = client.request("DELETE", f"/api/agents/{main_id}")
    assert resp.status_code == 204, resp.text
    assert client.get("/api/agents", params={"sub_agents": "all"}).json() == []
    for agent_id in (main_id, done_sub, running_sub):
        assert_error(client.get(f"/api/agents/{agent_id}"), 404, "agent_not_found")
    for task, sub in ((done, done_sub), (running, running_sub)):
        record = client.task(task["id"])
        assert (record["agent_id"], record["sub_agent_id"]) == (main_id, sub)
    assert_error(client.request("DELETE", f"/api/agents/{main_id}"), 404, "agent_not_found")

    start_agent()  # the same box (same saved state) comes back: registered again, as new
    back = wait_for(lambda: next((a for a in client.get("/api/agents").json() if a["status"] == "online"), None),
                    20, message="the agent to register again")
    assert back["id"] == main_id and back["draining"] is False and back["sub_agents"] == []
