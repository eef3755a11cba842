"""Output as a heartbeat's raw body (no base64/JSON): exact bytes, each stored once, only from the
task's own sub-agent, within the body limit, and a broken disk fails the task. Protocol 1's routes
(the previous release's sub-agents: JSON heartbeats with base64 chunks, raw uploads) store the same way."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from task_common import protocol as p
from task_common import protocol_v1 as v1
from tests.conftest import ServerProcess
from tests.helpers import Api
from tests.protocol_agent import FakeSubAgent, ProtocolAgent, ProtocolError

BINARY = "héllo ✓ 日本語 🎉\n".encode() + b"\xff\xfe\x00 not utf-8 \x80\n" + bytes(range(256))


@pytest.fixture
def agent(shared_server) -> ProtocolAgent:
    return ProtocolAgent(shared_server.url, cpu_cores=1).register()


@pytest.fixture
def run(agent: ProtocolAgent, shared_client: Api):
    """Create a task and start its fake sub-agent: run() -> (task dict, FakeSubAgent)."""
    def start() -> tuple[dict, FakeSubAgent]:
        task = shared_client.create_task("echo")
        reply = agent.heartbeat()
        assert [a.task_id for a in reply.start] == [task["id"]], reply
        return task, agent.start_sub(reply.start[0])
    return start


def stored(task: dict) -> bytes:
    path = Path(task["log_file"])
    return path.read_bytes() if path.exists() else b""


def test_a_beat_stores_the_exact_bytes_and_the_end_completes_the_task(run, shared_client: Api):
    task, sub = run()
    reply = sub.beat(BINARY)
    assert (reply.log_size, reply.cancel, reply.finished) == (len(BINARY), False, False)
    assert stored(task) == BINARY  # (the log API answers text: not byte-exact for non-UTF-8)
    sub.produced += BINARY
    assert sub.finish(0).finished  # all bytes are in, so the end completes it
    assert shared_client.task(task["id"])["status"] == "completed"


def test_the_last_output_and_the_end_in_one_beat_complete_the_task(run, shared_client: Api):
    task, sub = run()
    assert sub.beat(b"all of it\n", returncode=0, final_size=10).finished
    assert shared_client.task(task["id"])["status"] == "completed" and stored(task) == b"all of it\n"


def test_end_waits_for_output_still_missing(run, shared_client: Api):
    task, sub = run()
    sub.beat(b"first half ")
    reply = sub.heartbeat(returncode=0, final_size=22)
    assert not reply.finished and shared_client.task(task["id"])["status"] == "running"
    assert sub.beat(b"second half", returncode=0, final_size=22).finished
    assert stored(task) == b"first half second half"


def test_output_of_a_canceled_task_is_stored_and_the_reply_says_cancel(run, shared_client: Api):
    task, sub = run()
    shared_client.post(f"/api/tasks/{task['id']}/cancel")
    reply = sub.beat(b"last words\n")
    assert (reply.log_size, reply.cancel) == (11, True)
    assert stored(task) == b"last words\n"
    done = sub.beat(b"", returncode=-15, final_size=11)
    assert (done.finished, done.cancel) == (True, False)  # over: nothing left to cancel
    assert shared_client.task(task["id"])["exit_code"] == -15


@pytest.mark.parametrize("send", ["beat", "protocol 1 upload", "protocol 1 heartbeat"])
@pytest.mark.parametrize("who", ["other sub-agent", "unknown task"])
def test_output_from_a_stranger_is_refused_with_404_and_stores_nothing(run, agent, who, send):
    task, sub = run()
    stranger = agent.sub_agent(task["id"], "sub-intruder") if who == "other sub-agent" else \
        FakeSubAgent(agent, 10**9, sub.sub_agent_id)
    sends = {"beat": lambda: stranger.beat(b"not yours", offset=0),
             "protocol 1 upload": lambda: stranger.v1_upload(0, b"not yours"),
             "protocol 1 heartbeat": lambda: stranger.v1_heartbeat([v1.OutputChunk.from_bytes(0, b"not yours")])}
    with pytest.raises(ProtocolError) as refused:
        sends[send]()
    assert (refused.value.status_code, refused.value.code) == (404, "sub_agent_not_found")
    assert stored(task) == b""


BAD_BEATS = [
    ("missing offset", {"sub_agent_id": "s", "task_id": 1}, p.OUTPUT_CONTENT_TYPE, 400, "invalid_input"),
    ("negative offset", {"sub_agent_id": "s", "task_id": 1, "offset": -1}, p.OUTPUT_CONTENT_TYPE, 400,
     "invalid_input"),
    ("offset not a number", {"sub_agent_id": "s", "task_id": 1, "offset": "x"}, p.OUTPUT_CONTENT_TYPE, 400,
     "invalid_input"),
    ("bad gpus", {"sub_agent_id": "s", "task_id": 1, "offset": 0, "gpus": "0:1"}, p.OUTPUT_CONTENT_TYPE, 400,
     "invalid_input"),
    ("half an end", {"sub_agent_id": "s", "task_id": 1, "offset": 0, "returncode": 0}, p.OUTPUT_CONTENT_TYPE, 400,
     "invalid_input"),
    ("JSON body", {"sub_agent_id": "s", "task_id": 1, "offset": 0}, "application/json", 415,
     "unsupported_media_type"),
    ("old protocol", {"sub_agent_id": "s", "task_id": 1, "offset": 0, "protocol_version": 0},
     p.OUTPUT_CONTENT_TYPE, 409, "protocol_version_mismatch"),
]


BAD_REQUESTS = [(p.SUB_HEARTBEAT_PATH, *b) for b in BAD_BEATS] + \
    [(v1.SUB_OUTPUT_V1_PATH, *b) for b in BAD_BEATS if "gpus" not in b[1] and "returncode" not in b[1]]


@pytest.mark.parametrize("path, query, content_type, status, code", [(b[0], *b[2:]) for b in BAD_REQUESTS],
                         ids=[f"{b[0].rsplit('/', 1)[1]}: {b[1]}" for b in BAD_REQUESTS])
def test_bad_beat_or_upload_is_refused_with_json_error(agent, path, query, content_type, status, code):
    resp = agent.transport.post_body(path, query, b"{}", content_type)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code


@pytest.mark.parametrize("via", ["beat", "beat with the end", "protocol 1 upload", "protocol 1 heartbeat"])
def test_disk_refusing_output_fails_the_task_with_the_same_reason_every_way(run, shared_client: Api, via):
    task, sub = run()
    log_file = Path(task["log_file"])
    log_file.mkdir(parents=True)  # opening it for append now raises IsADirectoryError (an OSError)
    try:
        if via == "beat":
            assert sub.beat(b"lost").cancel
        elif via == "beat with the end":  # the output is given up: the sub-agent may leave
            assert sub.beat(b"lost", returncode=0, final_size=4).finished
        elif via == "protocol 1 upload":
            assert sub.v1_upload(0, b"lost").cancel
        else:
            assert sub.v1_heartbeat([v1.OutputChunk.from_bytes(0, b"lost")]).cancel
        failed = shared_client.task(task["id"])
    finally:
        shutil.rmtree(log_file)
    assert failed["status"] == "failed"
    assert failed["status_reason"].startswith("could not store the task's output on the server: ")
    assert "IsADirectoryError" in failed["status_reason"]


def test_a_protocol_1_sub_agent_still_delivers_everything_and_its_end(agent, shared_client: Api):
    """A sub-agent forked by the previous release, adopted by an upgraded main agent: its registration,
    its JSON heartbeats with base64 chunks, its raw uploads and its end (in a heartbeat) are all taken,
    each byte once."""
    task = shared_client.create_task("echo")
    sub = agent.sub_agent(agent.heartbeat().start[0])
    assert sub.register(protocol_version=v1.PROTOCOL_1).cancel is False  # it may register late, too
    first = sub.v1_heartbeat([v1.OutputChunk.from_bytes(0, b"line 1\n")], usage=p.ProcessUsage(cpu_usage=12.0))
    assert (first.log_size, first.cancel, first.finished) == (7, False, False)
    assert sub.v1_upload(7, BINARY).log_size == 7 + len(BINARY)
    assert sub.v1_upload(7, BINARY).log_size == 7 + len(BINARY)  # resent: stored once
    total = 7 + len(BINARY) + 7
    early = sub.v1_heartbeat(returncode=0, final_size=total)  # the last chunk still to come
    assert not early.finished and shared_client.task(task["id"])["status"] == "running"
    done = sub.v1_heartbeat([v1.OutputChunk.from_bytes(7 + len(BINARY), b"line 2\n")], returncode=0, final_size=total)
    assert done.finished
    assert stored(task) == b"line 1\n" + BINARY + b"line 2\n"
    assert shared_client.task(task["id"])["status"] == "completed"


def test_a_protocol_1_sub_agent_is_told_to_cancel_in_its_own_replies(run, shared_client: Api):
    task, sub = run()
    shared_client.post(f"/api/tasks/{task['id']}/cancel")
    assert sub.v1_heartbeat().cancel and sub.v1_upload(0, b"bye\n").cancel
    assert sub.v1_heartbeat(returncode=-15, final_size=4).finished
    assert shared_client.task(task["id"])["status"] == "canceled" and stored(task) == b"bye\n"


LIMIT_BYTES = 100_000


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("upload-limit"),
                         env={"TASK_SYSTEM_MAX_REQUEST_BYTES": str(LIMIT_BYTES)}).start()
    yield proc
    proc.kill()


def test_a_beat_over_the_body_limit_is_refused_with_413_json_and_stores_nothing(small_server):
    api = Api(small_server.url)
    agent = ProtocolAgent(small_server.url, cpu_cores=1).register()
    task = api.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    with pytest.raises(ProtocolError) as refused:
        sub.beat(b"x" * (LIMIT_BYTES + 1), offset=0)
    assert refused.value.status_code == 413
    assert refused.value.response.headers["Content-Type"].startswith("application/json")
    assert refused.value.code == "request_entity_too_large"
    agent.transport.session.close()  # the server may drop a connection whose body it did not read
    assert sub.beat(b"x" * (LIMIT_BYTES - 1000), offset=0).log_size == LIMIT_BYTES - 1000  # under it: stored
    assert api.log(task["id"]) == b"x" * (LIMIT_BYTES - 1000)
