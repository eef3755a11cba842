"""Task output: offsets and resends (each byte stored once, exactly), reads by offset/limit/tail,
the end recorded only after all output is in, and live delivery over the WebSocket."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import websocket

from task_common import protocol as p
from tests.helpers import Api
from tests.protocol_agent import FakeSubAgent, ProtocolAgent

TEXT = "héllo wörld ✓ 日本語 🎉\n"


@pytest.fixture
def agent(shared_server) -> ProtocolAgent:
    return ProtocolAgent(shared_server.url, cpu_cores=1).register()


@pytest.fixture
def run(agent: ProtocolAgent, shared_client: Api):
    """Create a task and start its fake sub-agent: run() -> (task dict, FakeSubAgent)."""
    def start(script: str = "echo") -> tuple[dict, FakeSubAgent]:
        task = shared_client.create_task(script)
        reply = agent.heartbeat()
        assert [a.task_id for a in reply.start] == [task["id"]], reply
        return task, agent.start_sub(reply.start[0])
    return start


def stored(task: dict) -> bytes:
    """The log file itself, byte for byte (the server's data dir is on this machine)."""
    path = Path(task["log_file"])
    return path.read_bytes() if path.exists() else b""


# --- offsets and resends ------------------------------------------------------------------------

def test_repeated_overlapping_and_gapped_output_stores_each_byte_once(run, shared_client: Api):
    task, sub = run()
    assert sub.beat(b"hello ", offset=0).log_size == 6
    assert sub.beat(b"hello ", offset=0).log_size == 6  # repeated: nothing added
    assert sub.beat(b"he", offset=0).log_size == 6  # wholly behind: nothing added
    assert sub.beat(b"lo world", offset=3).log_size == 11  # overlapping: only the new part
    assert sub.beat(b"gap", offset=20).log_size == 11  # a gap: stored size, nothing stored
    assert sub.beat(b"", offset=11).log_size == 11  # no output: the stored size
    assert stored(task) == b"hello world"
    assert shared_client.log(task["id"]) == b"hello world"


def test_protocol_1_chunks_out_of_order_in_one_beat_are_stored_in_order(run, shared_client: Api):
    from task_common.protocol_v1 import OutputChunk

    task, sub = run()
    assert sub.v1_heartbeat([OutputChunk.from_bytes(3, b"!!"), OutputChunk.from_bytes(0, b"abc")]).log_size == 5
    assert shared_client.log(task["id"]) == b"abc!!"


def test_gap_reply_lets_the_sub_agent_resend_from_the_stored_size(run):
    task, sub = run()
    sub.produced += b"0123456789"
    reply = sub.beat(b"56789", offset=5)  # the beat before it never arrived
    assert reply.log_size == 0 and stored(task) == b""
    assert sub.flush().log_size == 10  # resent from 0, as a real sub-agent does
    assert stored(task) == b"0123456789"


def test_non_ascii_output_split_mid_character_is_stored_byte_exact(run, shared_client: Api):
    task, sub = run()
    raw = (TEXT * 4).encode() + b"\xff\xfe binary \x00 bytes\n" + TEXT.encode()
    for start in range(0, len(raw), 7):  # 7-byte chunks cut many characters in half
        sub.write(raw[start:start + 7])
    sub.finish(0)
    assert stored(task) == raw
    assert shared_client.task(task["id"])["status"] == "completed"
    whole = shared_client.get(f"/api/tasks/{task['id']}/log").json()
    assert whole["size"] == len(raw) and whole["data"] == raw.decode("utf-8", errors="replace")


def test_resent_chunk_after_a_lost_reply_adds_nothing(run):
    task, sub = run()
    sub.write(TEXT.encode())
    sub.acked = 0  # the reply was lost: the sub-agent still thinks the server holds nothing
    assert sub.write(b"more\n").log_size == len(TEXT.encode()) + 5
    assert stored(task) == TEXT.encode() + b"more\n"


# --- reads --------------------------------------------------------------------------------------

@pytest.fixture
def digits_log(run) -> dict:
    task, sub = run()
    sub.write(b"0123456789")
    return task


@pytest.mark.parametrize("params, expected", [
    ({}, (0, 10, "0123456789")),
    ({"offset": 2, "limit": 3}, (2, 5, "234")),
    ({"offset": 7}, (7, 10, "789")),
    ({"offset": 10}, (10, 10, "")),
    ({"limit": 0}, (0, 0, "")),
    ({"offset": 8, "limit": 50}, (8, 10, "89")),
    ({"tail": 4}, (6, 10, "6789")),
    ({"tail": 100}, (0, 10, "0123456789")),
    ({"tail": 0}, (10, 10, "")),
])
def test_log_read_by_offset_limit_or_tail(shared_client: Api, digits_log, params, expected):
    page = shared_client.get(f"/api/tasks/{digits_log['id']}/log", params=params).json()
    assert page == {"task_id": digits_log["id"], "offset": expected[0], "next_offset": expected[1],
                    "size": 10, "data": expected[2]}


def test_log_pages_never_split_a_character(run, shared_client: Api):
    task, sub = run()
    raw = TEXT.encode() * 3
    sub.write(raw)
    pages, offset = [], 0
    while offset < len(raw):
        page = shared_client.get(f"/api/tasks/{task['id']}/log", params={"offset": offset, "limit": 5}).json()
        assert "\ufffd" not in page["data"] and page["next_offset"] > offset
        pages.append(page["data"])
        offset = page["next_offset"]
    assert "".join(pages).encode() == raw


def test_log_tail_starts_on_a_whole_character(run, shared_client: Api):
    task, sub = run()
    sub.write("abc✓".encode())  # ✓ is 3 bytes: the last 2 bytes are half a character
    page = shared_client.get(f"/api/tasks/{task['id']}/log", params={"tail": 2}).json()
    assert "\ufffd" not in page["data"]
    assert page["next_offset"] == page["size"] == 6
    page = shared_client.get(f"/api/tasks/{task['id']}/log", params={"tail": 4}).json()
    assert page == {"task_id": task["id"], "offset": 2, "next_offset": 6, "size": 6, "data": "c✓"}


def test_log_of_a_task_that_never_ran_is_empty(shared_client: Api):
    task = shared_client.create_task("echo", cpu_cores=10_000)
    assert shared_client.get(f"/api/tasks/{task['id']}/log").json() == {
        "task_id": task["id"], "offset": 0, "next_offset": 0, "size": 0, "data": ""}


# --- the end --------------------------------------------------------------------------------------

def test_end_is_recorded_only_after_all_output_is_in(run, shared_client: Api):
    task, sub = run()
    assert sub.beat(b"abc").log_size == 3
    early = sub.heartbeat(returncode=0, final_size=6)  # the last output is still in flight
    assert early.finished is False and early.log_size == 3 and early.cancel is False
    assert shared_client.task(task["id"])["status"] == "running"
    done = sub.beat(b"def", returncode=0, final_size=6)
    assert done.finished is True and done.log_size == 6
    final = shared_client.task(task["id"])
    assert final["status"] == "completed" and final["exit_code"] == 0 and final["end_time"]
    assert shared_client.log(task["id"]) == b"abcdef"


def test_final_heartbeat_repeated_after_a_lost_reply_changes_nothing(run, shared_client: Api):
    task, sub = run()
    sub.write(b"out\n")
    assert sub.finish(3).finished
    first = shared_client.task(task["id"])
    assert sub.flush(returncode=3).finished is True
    assert shared_client.task(task["id"]) == first
    assert first["status"] == "failed" and first["exit_code"] == 3 and first["status_reason"] == "exit code 3"


def test_finished_sub_agent_is_shown_offline_under_its_main_agent(agent, run, shared_client: Api):
    task, sub = run()
    sub.finish(0)
    tree = shared_client.get(f"/api/agents/{agent.agent_id}").json()
    [shown] = [s for s in tree["sub_agents"] if s["id"] == sub.sub_agent_id]
    assert shown["type"] == "sub" and shown["status"] == "offline" and shown["task_id"] == task["id"]
    assert shown["main_agent_id"] == agent.agent_id
    assert {s["main_agent_id"] for s in tree["sub_agents"]} == {agent.agent_id}  # only its own


# --- WebSocket ------------------------------------------------------------------------------------

def ws_url(server, task_id: int, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + f"/api/tasks/{task_id}/log/ws" + (f"?{query}" if query else "")


def receive(ws, timeout_s: float = 10.0):
    """The next frame as a dict, or None once the server closed the connection."""
    ws.settimeout(timeout_s)
    try:
        raw = ws.recv()
    except websocket.WebSocketConnectionClosedException:
        return None
    return json.loads(raw) if raw else None


def receive_until(ws, predicate, frames: list) -> dict:
    while True:
        frame = receive(ws)
        assert frame is not None, f"connection closed before the expected frame; got {frames}"
        frames.append(frame)
        if predicate(frame):
            return frame


def log_text(frames: list) -> str:
    out, expected_offset = [], None
    for frame in frames:
        if frame["type"] == "log":
            if expected_offset is not None:
                assert frame["offset"] == expected_offset, frames
            out.append(frame["data"])
            expected_offset = frame["offset"] + len(frame["data"].encode())
    return "".join(out)


def test_websocket_delivers_output_as_it_is_stored_then_status_then_closes(shared_server, run):
    task, sub = run()
    sub.write(b"first\n")
    ws = websocket.create_connection(ws_url(shared_server, task["id"]), timeout=10)
    frames: list = []
    try:
        receive_until(ws, lambda f: f["type"] == "status", frames)
        assert frames[-1]["status"] == "running"
        if log_text(frames) != "first\n":
            receive_until(ws, lambda f: f["type"] == "log", frames)
        assert log_text(frames) == "first\n" and frames[0]["offset"] == 0
        sub.write("second ✓".encode()[:-1])  # half a character: nothing to show yet
        sub.write("second ✓".encode()[-1:] + b"\n")
        receive_until(ws, lambda f: f["type"] == "log" and log_text(frames).endswith("✓\n"), frames)
        sub.write(b"third\n")
        sub.finish(0)
        final = receive_until(ws, lambda f: f["type"] == "status" and f["status"] != "running", frames)
        assert final == {"type": "status", "status": "completed", "exit_code": 0, "status_reason": None}
        assert log_text(frames) == "first\nsecond ✓\nthird\n"
        assert receive(ws) is None  # closed after the finished task's output
    finally:
        ws.close()


def test_websocket_starts_from_the_given_offset(shared_server, run):
    task, sub = run()
    sub.write("0123456789✓".encode())
    sub.finish(1)
    ws = websocket.create_connection(ws_url(shared_server, task["id"], "offset=6"), timeout=10)
    frames = []
    try:
        while (frame := receive(ws)) is not None:
            frames.append(frame)
    finally:
        ws.close()
    assert [f for f in frames if f["type"] == "log"][0]["offset"] == 6
    assert log_text(frames) == "6789✓"
    assert frames[-1] == {"type": "status", "status": "failed", "exit_code": 1, "status_reason": "exit code 1"}


def test_websocket_sends_status_changes_of_a_task_without_output(shared_server, shared_client: Api):
    task = shared_client.create_task("echo", cpu_cores=10_000)  # never placed
    ws = websocket.create_connection(ws_url(shared_server, task["id"]), timeout=10)
    try:
        assert receive(ws) == {"type": "status", "status": "waiting", "exit_code": None, "status_reason": None}
        shared_client.post(f"/api/tasks/{task['id']}/cancel")
        frame = receive(ws)
        assert frame["type"] == "status" and frame["status"] == "canceled" and frame["status_reason"]
        assert receive(ws) is None
    finally:
        ws.close()


@pytest.mark.parametrize("task_id, query, code", [
    (987_654, "", "task_not_found"),
    (None, "offset=abc", "invalid_input"),
    (None, "offset=-1", "invalid_input"),
    (None, "offset=100", "offset_out_of_range"),
])
def test_websocket_bad_request_gets_an_error_frame(shared_server, shared_client: Api, task_id, query, code):
    task_id = task_id or shared_client.create_task("echo", cpu_cores=10_000)["id"]
    ws = websocket.create_connection(ws_url(shared_server, task_id, query), timeout=10)
    try:
        frame = receive(ws)
        assert frame["type"] == "error" and frame["error"]["code"] == code and frame["error"]["message"]
        assert receive(ws) is None
    finally:
        ws.close()


def test_many_websocket_watchers_all_get_the_output(shared_server, run):
    task, sub = run()
    watchers = [websocket.create_connection(ws_url(shared_server, task["id"]), timeout=10) for _ in range(5)]
    try:
        for ws in watchers:
            assert receive(ws)["status"] == "running"
        sub.write(b"to everyone\n")
        sub.finish(0)
        for ws in watchers:
            frames = []
            while (frame := receive(ws)) is not None:
                frames.append(frame)
            assert log_text(frames) == "to everyone\n" and frames[-1]["status"] == "completed"
    finally:
        for ws in watchers:
            ws.close()
