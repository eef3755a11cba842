"""Raw output uploads (the sub-agent's bulk path, no base64/JSON): exact bytes, each stored once,
only from the task's own sub-agent, within the body limit, and a broken disk fails the task as the
heartbeat path does."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from task_common import protocol as p
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


def test_upload_stores_the_exact_bytes_and_the_end_completes_the_task(run, shared_client: Api):
    task, sub = run()
    reply = sub.upload(0, BINARY)
    assert (reply.log_size, reply.cancel) == (len(BINARY), False)
    assert stored(task) == BINARY  # (the log API answers text: not byte-exact for non-UTF-8)
    sub.produced += BINARY
    assert sub.finish(0).finished  # the end still comes by heartbeat: all bytes are in, so it completes
    assert shared_client.task(task["id"])["status"] == "completed"


def test_repeated_overlapping_and_gapped_uploads_answer_the_stored_size_and_store_each_byte_once(run):
    task, sub = run()
    assert sub.upload(0, b"hello ").log_size == 6
    assert sub.upload(0, b"hello ").log_size == 6  # repeated: nothing added
    assert sub.upload(0, b"he").log_size == 6  # wholly behind
    assert sub.upload(3, b"lo world").log_size == 11  # overlapping: only the new part
    assert sub.upload(20, b"gap").log_size == 11  # a gap: nothing stored
    assert sub.upload(11, b"").log_size == 11  # empty body: a size query
    assert stored(task) == b"hello world"


def test_end_waits_for_uploads_still_missing(run, shared_client: Api):
    task, sub = run()
    sub.upload(0, b"first half ")
    reply = sub.heartbeat(returncode=0, final_size=22)
    assert not reply.finished and shared_client.task(task["id"])["status"] == "running"
    sub.upload(11, b"second half")
    assert sub.heartbeat(returncode=0, final_size=22).finished
    assert stored(task) == b"first half second half"


def test_upload_for_a_canceled_task_is_stored_and_answers_cancel(run, shared_client: Api):
    task, sub = run()
    shared_client.post(f"/api/tasks/{task['id']}/cancel")
    reply = sub.upload(0, b"last words\n")
    assert (reply.log_size, reply.cancel) == (11, True)
    assert stored(task) == b"last words\n"


@pytest.mark.parametrize("who", ["other sub-agent", "unknown task"])
def test_upload_from_a_stranger_is_refused_with_404_and_stores_nothing(run, agent, who):
    task, sub = run()
    stranger = agent.sub_agent(task["id"], "sub-intruder") if who == "other sub-agent" else \
        FakeSubAgent(agent, 10**9, sub.sub_agent_id)
    with pytest.raises(ProtocolError) as refused:
        stranger.upload(0, b"not yours")
    assert (refused.value.status_code, refused.value.code) == (404, "sub_agent_not_found")
    assert stored(task) == b""


BAD_UPLOADS = [
    ("missing offset", {"sub_agent_id": "s", "task_id": 1}, p.OUTPUT_CONTENT_TYPE, 400, "invalid_input"),
    ("negative offset", {"sub_agent_id": "s", "task_id": 1, "offset": -1}, p.OUTPUT_CONTENT_TYPE, 400,
     "invalid_input"),
    ("offset not a number", {"sub_agent_id": "s", "task_id": 1, "offset": "x"}, p.OUTPUT_CONTENT_TYPE, 400,
     "invalid_input"),
    ("JSON body", {"sub_agent_id": "s", "task_id": 1, "offset": 0}, "application/json", 415,
     "unsupported_media_type"),
    ("old protocol", {"sub_agent_id": "s", "task_id": 1, "offset": 0, "protocol_version": 0},
     p.OUTPUT_CONTENT_TYPE, 409, "protocol_version_mismatch"),
]


@pytest.mark.parametrize("query, content_type, status, code", [b[1:] for b in BAD_UPLOADS],
                         ids=[b[0] for b in BAD_UPLOADS])
def test_bad_upload_is_refused_with_json_error(agent, query, content_type, status, code):
    resp = agent.transport.upload_raw(query, b"{}", content_type)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code


@pytest.mark.parametrize("via", ["upload", "heartbeat"])
def test_disk_refusing_output_fails_the_task_with_the_same_reason_either_way(run, shared_client: Api, via):
    task, sub = run()
    log_file = Path(task["log_file"])
    log_file.mkdir(parents=True)  # opening it for append now raises IsADirectoryError (an OSError)
    try:
        if via == "upload":
            assert sub.upload(0, b"lost").cancel
        else:
            sub.heartbeat([p.OutputChunk.from_bytes(0, b"lost")])
        failed = shared_client.task(task["id"])
    finally:
        shutil.rmtree(log_file)
    assert failed["status"] == "failed"
    assert failed["status_reason"].startswith("could not store the task's output on the server: ")
    assert "IsADirectoryError" in failed["status_reason"]


LIMIT_BYTES = 100_000


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("upload-limit"),
                         env={"TASK_SYSTEM_MAX_REQUEST_BYTES": str(LIMIT_BYTES)}).start()
    yield proc
    proc.kill()


def test_upload_over_the_body_limit_is_refused_with_413_json_and_stores_nothing(small_server):
    api = Api(small_server.url)
    agent = ProtocolAgent(small_server.url, cpu_cores=1).register()
    task = api.create_task("echo")
    sub = agent.start_sub(agent.heartbeat().start[0])
    with pytest.raises(ProtocolError) as refused:
        sub.upload(0, b"x" * (LIMIT_BYTES + 1))
    assert refused.value.status_code == 413
    assert refused.value.response.headers["Content-Type"].startswith("application/json")
    assert refused.value.code == "request_entity_too_large"
    agent.transport.session.close()  # the server may drop a connection whose body it did not read
    assert sub.upload(0, b"x" * (LIMIT_BYTES - 1000)).log_size == LIMIT_BYTES - 1000  # under it: stored
    assert api.log(task["id"]) == b"x" * (LIMIT_BYTES - 1000)
