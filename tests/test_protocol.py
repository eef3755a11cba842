"""The agent protocol: message round trips, resends after a lost reply, the first sub-agent wins,
rejected and died reports, unknown agents and protocol version checks."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from task_common import protocol as p
from task_common import protocol_v1 as v1
from tests.helpers import Api
from tests.protocol_agent import ProtocolAgent, ProtocolError, Transport

# --- messages ------------------------------------------------------------------------------------

EXAMPLES = [
    p.RegisterMain(agent_id="a1", name="box", hostname="h", cpu_cores=8, memory_total_mib=64000,
                   gpus=[p.GpuInfo(index=0, name="H100", uuid="GPU-1", utilization=12.5, memory_used=10,
                                   memory_total=81920, simulated=True)], monitor_file="/tmp/a.log"),
    p.RegisterMainReply(agent_id="a1", heartbeat_interval_s=2.0, sub_heartbeat_interval_s=1.0, server_id="srv"),
    p.MainHeartbeat(agent_id="a1", cpu_cores=8, cpu_usage=50.5, memory_usage=20.0, memory_used_mib=100,
                    memory_total_mib=64000, running_task_ids=[3, 4], died=[p.TaskReport(task_id=5, reason="oom")],
                    rejected=[p.TaskReport(task_id=6)], wait_s=1.5),
    p.MainHeartbeatReply(known=True, start=[p.TaskAssignment(task_id=7, name="n", script_content="echo ✓",
                                                             cpu_cores=2, gpu_ids=[0, 1], gpu_memory=100)],
                         kill_task_ids=[8], next_interval_s=2.0, server_id="srv"),
    p.RegisterSub(sub_agent_id="s1", main_agent_id="a1", task_id=7, pid=123, hostname="h", monitor_file="/x"),
    p.RegisterSubReply(sub_agent_id="s1", log_size=10, cancel=False, heartbeat_interval_s=1.0),
    p.SubHeartbeat(sub_agent_id="s1", task_id=7, offset=3, cpu_usage=150.0, memory_used_mib=12.5, memory_usage=0.1,
                   gpus=[p.ProcessGpuUsage(index=0, memory_used=5, utilization=3.0)], returncode=-9, final_size=7,
                   stop_reason="time limit of 2s reached", queue_note="Slurm: PENDING (Resources)"),
    p.SubHeartbeatReply(log_size=7, cancel=True, finished=False, next_interval_s=1.0),
    v1.SubHeartbeatV1(sub_agent_id="s1", task_id=7, usage=p.ProcessUsage(
        cpu_usage=150.0, memory_used_mib=12.5, memory_usage=0.1,
        gpus=[p.ProcessGpuUsage(index=0, memory_used=5, utilization=3.0)]),
        chunks=[v1.OutputChunk.from_bytes(0, "héllo\n".encode())], returncode=-9, final_size=7),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_message_survives_a_json_round_trip(message):
    import json

    wire = json.loads(json.dumps(message.to_dict()))
    assert type(message).from_dict(wire) == message


def test_messages_ignore_unknown_keys_from_a_newer_peer():
    data = {**EXAMPLES[2].to_dict(), "some_future_field": {"x": 1}}
    assert p.MainHeartbeat.from_dict(data) == EXAMPLES[2]


def test_replies_of_a_server_from_before_identities_still_parse():
    old_register = {"agent_id": "a1", "heartbeat_interval_s": 2.0, "sub_heartbeat_interval_s": 1.0}
    assert p.RegisterMainReply.from_dict(old_register).server_id is None
    assert p.MainHeartbeatReply.from_dict({"known": True, "next_interval_s": 2.0}).server_id is None


def test_messages_default_to_this_protocol_version():
    assert p.RegisterMain(name="x", cpu_cores=1).protocol_version == p.PROTOCOL_VERSION
    assert p.SubHeartbeat(sub_agent_id="s", task_id=1, offset=0).protocol_version == p.PROTOCOL_VERSION
    assert v1.SubHeartbeatV1(sub_agent_id="s", task_id=1).protocol_version == v1.PROTOCOL_1


def test_sub_heartbeat_survives_the_query_string_it_travels_in():
    from urllib.parse import parse_qs, urlencode

    beat = EXAMPLES[6]
    query = parse_qs(urlencode(beat.to_dict(), doseq=True))  # every value a list of strings, as a server gets it
    fields = {k: v if k == "gpus" else v[0] for k, v in query.items()}
    assert p.SubHeartbeat.from_dict(fields) == beat
    assert beat.usage() == p.ProcessUsage(cpu_usage=150.0, memory_used_mib=12.5, memory_usage=0.1,
                                          gpus=[p.ProcessGpuUsage(index=0, memory_used=5, utilization=3.0)])


@pytest.mark.parametrize("bad", [
    {"gpus": ["0:5"]}, {"gpus": ["x:5:1"]}, {"gpus": ["0:-5:1"]},
    {"returncode": 0}, {"final_size": 3},  # the end is both or neither
    {"offset": -1},
])
def test_sub_heartbeat_refuses_bad_fields(bad):
    with pytest.raises(ValidationError):
        p.SubHeartbeat.from_dict({"sub_agent_id": "s", "task_id": 1, "offset": 0, **bad})


def test_output_chunk_carries_arbitrary_bytes():
    raw = bytes(range(256)) + "日本".encode()
    chunk = v1.OutputChunk.from_bytes(42, raw)
    assert chunk.offset == 42 and chunk.raw() == raw
    assert v1.OutputChunk.from_dict(chunk.to_dict()).raw() == raw


@pytest.mark.parametrize("bad", [
    {"offset": 0, "data": "not base64!"},
    {"offset": -1, "data": ""},
    {"data": ""},
])
def test_output_chunk_refuses_bad_data(bad):
    with pytest.raises(ValidationError):
        v1.OutputChunk.from_dict(bad)


@pytest.mark.parametrize("message_type, data", [
    (p.RegisterMain, {"name": "", "cpu_cores": 1}),
    (p.RegisterMain, {"name": "x", "cpu_cores": -1}),
    (p.MainHeartbeat, {"agent_id": "a", "cpu_cores": 1, "wait_s": 61}),
    (p.MainHeartbeat, {"agent_id": "a", "cpu_cores": 1, "died": [{"task_id": 1, "reason": "x" * 2001}]}),
    (p.RegisterSub, {"sub_agent_id": "", "main_agent_id": "a", "task_id": 1}),
    (p.GpuInfo, {"index": -1}),
])
def test_messages_refuse_invalid_fields(message_type, data):
    with pytest.raises(ValidationError):
        message_type.from_dict(data)


@pytest.mark.parametrize("returncode, outcome", [
    (0, (True, "")),
    (1, (False, "exit code 1")),
    (255, (False, "exit code 255")),
    (130, (False, "exit code 130 (killed by SIGINT)")),
    (137, (False, "exit code 137 (killed by SIGKILL)")),
    (-9, (False, "killed by SIGKILL")),
    (-15, (False, "killed by SIGTERM")),
    (-200, (False, "killed by signal 200")),
])
def test_describe_returncode(returncode, outcome):
    assert p.describe_returncode(returncode) == outcome


# --- over HTTP -----------------------------------------------------------------------------------

@pytest.fixture
def agent(shared_server) -> ProtocolAgent:
    return ProtocolAgent(shared_server.url, cpu_cores=2).register()


def test_register_gives_an_id_and_intervals_and_re_register_keeps_the_id(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, name="keeper", cpu_cores=3, gpus="1x1024").register()
    reply = agent.register_reply
    assert reply.agent_id and reply.heartbeat_interval_s > 0 and reply.sub_heartbeat_interval_s > 0
    first_id = agent.agent_id
    agent.cpu_cores = 5
    agent.register()
    assert agent.agent_id == first_id
    listed = shared_client.get(f"/api/agents/{first_id}").json()
    assert listed["type"] == "main" and listed["status"] == "online" and listed["cpu_cores"] == 5
    assert listed["name"] == "keeper" and listed["is_simulated_gpu"] is True
    assert [g["memory_total"] for g in listed["gpu_info"]] == [1024]
    assert listed["created_time"].endswith("+00:00") and listed["last_heartbeat_time"].endswith("+00:00")


def test_heartbeat_records_the_agents_state(agent: ProtocolAgent, shared_client: Api):
    agent.gpus = ProtocolAgent("http://x", gpus=[(2048, 1024)]).gpus
    agent.heartbeat()
    listed = shared_client.get(f"/api/agents/{agent.agent_id}").json()
    assert listed["cpu_usage"] == 12.5 and listed["memory_usage"] == 40.0
    assert listed["gpu_info"][0]["memory_used"] == 1024 and listed["gpu_info"][0]["memory_total"] == 2048
    assert listed["available_cpu_cores"] == 2 and listed["running_time"] >= 0


def test_lost_heartbeat_reply_is_resent_and_the_task_starts_once(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo once")
    lost = agent.heartbeat()  # the reply "never arrives": the agent starts nothing
    assert [a.task_id for a in lost.start] == [task["id"]]
    started_at = shared_client.task(task["id"])["start_time"]
    again = agent.heartbeat(running_task_ids=[])
    assert again.start == lost.start  # the same hand-over, resent
    assert shared_client.task(task["id"])["start_time"] == started_at
    sub = agent.start_sub(again.start[0], sub_agent_id="sub-once")
    assert agent.heartbeat().start == []  # acknowledged: never resent again
    assert agent.heartbeat(running_task_ids=[]).start == []
    twin = agent.sub_agent(task["id"], sub_agent_id="sub-twin")
    with pytest.raises(ProtocolError) as refused:
        twin.register()
    assert refused.value.status_code == 409 and refused.value.code == "task_already_started"
    assert sub.register().cancel is False  # the same sub-agent registering again is fine
    sub.finish(0)
    final = shared_client.task(task["id"])
    assert final["status"] == "completed" and final["sub_agent_id"] == "sub-once"


def test_sub_agent_re_registering_resumes_from_the_stored_log_size(agent: ProtocolAgent, shared_client: Api):
    shared_client.create_task("echo")
    assignment = agent.heartbeat().start[0]
    sub = agent.start_sub(assignment, sub_agent_id="sub-resume")
    sub.write(b"12345")
    assert sub.register().log_size == 5


def test_sub_agent_of_another_main_agent_is_refused(shared_server, agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    assert agent.heartbeat().start[0].task_id == task["id"]
    stranger = ProtocolAgent(shared_server.url, name="stranger").register()
    with pytest.raises(ProtocolError) as refused:
        stranger.sub_agent(task["id"]).register()
    assert refused.value.status_code == 409 and refused.value.code == "task_not_assigned"


def test_sub_agent_registering_for_a_canceled_task_is_told_not_to_start(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    assignment = agent.heartbeat().start[0]
    shared_client.post(f"/api/tasks/{task['id']}/cancel")
    assert agent.start_sub(assignment).register().cancel is True
    assert shared_client.task(task["id"])["status"] == "canceled"


def test_heartbeat_from_a_sub_agent_that_never_registered_is_refused(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    agent.heartbeat()
    with pytest.raises(ProtocolError) as refused:
        agent.sub_agent(task["id"], sub_agent_id="sub-ghost").heartbeat()
    assert refused.value.status_code == 404 and refused.value.code == "sub_agent_not_found"
    assert shared_client.task(task["id"])["status"] == "running"


def test_rejected_hand_over_goes_back_to_waiting(shared_server, shared_client: Api):
    agent = ProtocolAgent(shared_server.url, cpu_cores=1).register()
    task = shared_client.create_task("echo")
    assert [a.task_id for a in agent.heartbeat().start] == [task["id"]]
    reply = agent.heartbeat(running_task_ids=[], rejected=[(task["id"], "work dir is full")])
    assert reply.start == []  # not handed straight back to the agent that just refused it
    back = shared_client.task(task["id"])
    assert back["status"] == "waiting" and "work dir is full" in back["status_reason"]
    assert back["agent_id"] is None and back["start_time"] is None and back["gpu_ids"] == []
    assert [a.task_id for a in agent.heartbeat().start] == [task["id"]]  # a later heartbeat may retry it


def test_rejected_report_for_a_task_whose_sub_agent_started_is_ignored(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    agent.heartbeat(rejected=[task["id"]])
    assert shared_client.task(task["id"])["status"] == "running"
    sub.finish(0)
    assert shared_client.task(task["id"])["status"] == "completed"


def test_died_report_fails_the_task_at_once_with_that_reason(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo", cpu_cores=2)
    agent.start_sub(agent.heartbeat().start[0])
    agent.running.pop(task["id"])
    after = agent.heartbeat(died=[(task["id"], "sub-agent exited with code 1 (segfault)")])
    failed = shared_client.task(task["id"])
    assert failed["status"] == "failed" and failed["status_reason"] == "sub-agent exited with code 1 (segfault)"
    assert failed["end_time"] is not None
    next_task = shared_client.create_task("echo", cpu_cores=2)
    assert after.start == [] and [a.task_id for a in agent.heartbeat().start] == [next_task["id"]]  # place freed


def test_died_report_without_a_reason_still_says_why(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    agent.start_sub(agent.heartbeat().start[0])
    agent.heartbeat(running_task_ids=[], died=[task["id"]])
    failed = shared_client.task(task["id"])
    assert failed["status"] == "failed" and failed["status_reason"]


def test_agent_still_running_a_canceled_task_is_told_to_kill_it(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    assert shared_client.post(f"/api/tasks/{task['id']}/cancel").status_code == 200
    assert agent.heartbeat().kill_task_ids == [task["id"]]
    reply = sub.heartbeat()
    assert reply.cancel is True  # the sub-agent ends it (the main agent's kill list is its fallback)
    sub.finish(-15)
    canceled = shared_client.task(task["id"])
    assert canceled["status"] == "canceled" and canceled["exit_code"] == -15


def test_unknown_agent_heartbeat_answers_known_false(shared_server):
    reply = ProtocolAgent(shared_server.url, agent_id="never-registered").heartbeat()
    assert reply.known is False and reply.start == [] and reply.next_interval_s > 0


def test_sub_agent_id_is_not_a_main_agent(agent: ProtocolAgent, shared_server, shared_client: Api):
    shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0], sub_agent_id="sub-not-main")
    assert ProtocolAgent(shared_server.url, agent_id=sub.sub_agent_id).heartbeat().known is False


@pytest.mark.parametrize("call", ["register_main", "main_heartbeat", "register_sub", "sub_heartbeat"])
def test_protocol_version_mismatch_is_refused_with_409(agent: ProtocolAgent, shared_client: Api, call):
    shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    calls = {
        "register_main": lambda: agent.register(protocol_version=p.PROTOCOL_VERSION + 1),
        "main_heartbeat": lambda: agent.heartbeat(protocol_version=p.PROTOCOL_VERSION + 1),
        "register_sub": lambda: sub.register(protocol_version=p.PROTOCOL_VERSION + 1),
        "sub_heartbeat": lambda: sub.heartbeat(protocol_version=p.PROTOCOL_VERSION + 1),
    }
    with pytest.raises(ProtocolError) as refused:
        calls[call]()
    assert refused.value.status_code == 409 and refused.value.code == "protocol_version_mismatch"
    assert str(p.PROTOCOL_VERSION) in refused.value.response.json()["error"]["message"]


@pytest.mark.parametrize("path", [p.REGISTER_MAIN_PATH, p.MAIN_HEARTBEAT_PATH, p.REGISTER_SUB_PATH,
                                  p.SUB_HEARTBEAT_PATH, v1.SUB_HEARTBEAT_V1_PATH])
@pytest.mark.parametrize("body", [{}, {"agent_id": ["x"]}, [1]])
def test_malformed_protocol_message_answers_400_json(shared_server, path, body):
    resp = Transport(shared_server.url).post_raw(path, body)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_input"


def test_invalid_base64_chunk_answers_400_and_stores_nothing(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    message = v1.SubHeartbeatV1(sub_agent_id=sub.sub_agent_id, task_id=task["id"]).to_dict()
    message["chunks"] = [{"offset": 0, "data": "@@@"}]
    resp = agent.transport.post_raw(v1.SUB_HEARTBEAT_V1_PATH, message)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_input"
    assert shared_client.get(f"/api/tasks/{task['id']}/log").json()["size"] == 0


def test_main_agent_registering_with_a_sub_agents_id_gets_a_fresh_id(agent: ProtocolAgent, shared_server,
                                                                      shared_client: Api):
    shared_client.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0], sub_agent_id="sub-id-clash")
    newcomer = ProtocolAgent(shared_server.url, name="newcomer", agent_id=sub.sub_agent_id).register()
    assert newcomer.agent_id not in (sub.sub_agent_id, agent.agent_id)
    assert shared_client.get(f"/api/agents/{sub.sub_agent_id}").json()["type"] == "sub"


def test_sub_agent_may_not_take_a_main_agents_id(agent: ProtocolAgent, shared_client: Api):
    task = shared_client.create_task("echo")
    agent.heartbeat()
    with pytest.raises(ProtocolError) as refused:
        agent.sub_agent(task["id"], sub_agent_id=agent.agent_id).register()
    assert refused.value.status_code == 409 and refused.value.code == "sub_agent_id_taken"
    shown = shared_client.get(f"/api/agents/{agent.agent_id}").json()
    assert shown["type"] == "main" and shown["task_id"] is None
    assert shared_client.task(task["id"])["sub_agent_id"] is None
