"""Output that is not UTF-8 reaches people unchanged: /log/raw answers the stored bytes, JSON pages of any
size always advance and join into the log decoded with U+FFFD, and every WebSocket frame says which
stored bytes it was decoded from, so a client resumes exactly where the last frame ended.

One real server, one real main agent and real bash for the whole module (tasks print with printf)."""
from __future__ import annotations

import json
import signal

import pytest
import websocket

from tests.conftest import AgentProcess, ServerProcess, _kill_leftover_task_processes
from tests.helpers import Api, wait_for

LINES = 60
SMALL_SCRIPT = (f"for i in $(seq 1 {LINES}); do printf 'line %d \\xff\\xfe ok\\n' \"$i\"; done\n"
                "printf '中文 cut \\xe4\\xb8 then ✓ ok\\n'\n"
                "printf 'overlong \\xc0\\xaf \\xe0\\x80\\xaf surrogate \\xed\\xa0\\x80 lone \\x80\\xbf\\n'\n"
                "printf 'last \\xf0\\x9f'\n")
SMALL_BYTES = (b"".join(b"line %d \xff\xfe ok\n" % i for i in range(1, LINES + 1))
               + "中文 cut ".encode() + b"\xe4\xb8" + " then ✓ ok\n".encode()
               + b"overlong \xc0\xaf \xe0\x80\xaf surrogate \xed\xa0\x80 lone \x80\xbf\n"
               + b"last \xf0\x9f")  # the task ends in the middle of a character
BIG_LINES = 20_000  # about 370 KB: more than one /log/raw piece and more than one WebSocket read
BIG_SCRIPT = f"for i in $(seq 1 {BIG_LINES}); do printf 'row %d \\xff 中文\\n' \"$i\"; done\n"
BIG_BYTES = b"".join(b"row %d \xff " % i + "中文\n".encode() for i in range(1, BIG_LINES + 1))


def replaced(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def bytes_server(tmp_path_factory) -> ServerProcess:
    proc = ServerProcess(tmp_path_factory.mktemp("bytes-data")).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def api(bytes_server: ServerProcess) -> Api:
    return Api(bytes_server.url, bytes_server.token)


@pytest.fixture(scope="module")
def agent(bytes_server: ServerProcess, api: Api, tmp_path_factory) -> AgentProcess:
    root = tmp_path_factory.mktemp("bytes-agent")
    (root / "work").mkdir()
    proc = AgentProcess(bytes_server, "bytes-agent", root / "work", root / "state").start()
    wait_for(lambda: any(a["status"] == "online" for a in api.get("/api/agents").json()), 30,
             message="the main agent to come online")
    yield proc
    proc.kill(signal.SIGTERM)
    proc.kill(signal.SIGKILL)
    _kill_leftover_task_processes(root)


@pytest.fixture(scope="module")
def small(api: Api, agent) -> dict:
    task = api.create_task(SMALL_SCRIPT, name="small")
    return api.wait_status(task["id"], "completed", 30)


@pytest.fixture(scope="module")
def big(api: Api, agent) -> dict:
    task = api.create_task(BIG_SCRIPT, name="big")
    return api.wait_status(task["id"], "completed", 60)


# --- /log/raw -------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["small", "big"])
def test_raw_log_is_exactly_the_bytes_the_task_wrote(api: Api, request, which):
    task, expected = request.getfixturevalue(which), {"small": SMALL_BYTES, "big": BIG_BYTES}[which]
    resp = api.get(f"/api/tasks/{task['id']}/log/raw")
    assert resp.status_code == 200
    assert resp.content == expected
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="task-{task["id"]}.log"'
    assert api.task(task["id"])["log_size"] == len(expected)


def test_raw_log_of_an_unknown_task_is_a_json_404(api: Api):
    resp = api.get("/api/tasks/987654/log/raw")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "task_not_found" and resp.json()["error"]["message"]


def test_raw_log_is_in_the_openapi_document(api: Api):
    route = api.get("/api/openapi.json").json()["paths"]["/api/tasks/{task_id}/log/raw"]
    assert "text/plain" in route["get"]["responses"]["200"]["content"]


# --- JSON pages -----------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_small_pages_always_advance_and_join_into_the_log_with_replacement_characters(api: Api, small, limit):
    pages, offset = [], 0
    while offset < len(SMALL_BYTES):
        page = api.get(f"/api/tasks/{small['id']}/log", params={"offset": offset, "limit": limit}).json()
        assert page["offset"] == offset and page["size"] == len(SMALL_BYTES)
        # Longer than asked only to finish one character that starts on the page (at most 4 bytes).
        assert offset < page["next_offset"] <= offset + max(limit, 4), page
        assert page["data"] == replaced(SMALL_BYTES[offset:page["next_offset"]]), page
        pages.append(page["data"])
        offset = page["next_offset"]
    assert "".join(pages) == replaced(SMALL_BYTES)


@pytest.mark.parametrize("offset, limit, expected", [
    (7, 1, (1, "\ufffd")),  # 0xff can never become valid: consumed, never held back
    (7, 2, (2, "\ufffd\ufffd")),
    (SMALL_BYTES.index("中".encode()), 1, (3, "中")),  # less than a character asked for: the whole one
    (SMALL_BYTES.index(b"\xe4\xb8 then"), 2, (2, "\ufffd")),  # a character cut short for good
    (SMALL_BYTES.index(b"\xe4\xb8 then") - 1, 2, (1, " ")),  # a valid start cut at the page's end waits
])
def test_page_at_an_undecodable_byte_consumes_it(api: Api, small, offset, limit, expected):
    page = api.get(f"/api/tasks/{small['id']}/log", params={"offset": offset, "limit": limit}).json()
    assert (page["next_offset"] - offset, page["data"]) == expected


def test_tail_starts_and_ends_on_whole_characters(api: Api, small):
    size = len(SMALL_BYTES)
    for tail in range(2, 40):
        page = api.get(f"/api/tasks/{small['id']}/log", params={"tail": tail}).json()
        assert size - tail <= page["offset"] <= page["next_offset"] == size - 2, page  # "\xf0\x9f" is left
        assert SMALL_BYTES[page["offset"]] & 0xC0 != 0x80 or page["offset"] == page["next_offset"]
        assert page["data"] == replaced(SMALL_BYTES[page["offset"]:page["next_offset"]])
    rest = api.get(f"/api/tasks/{small['id']}/log", params={"offset": size - 2}).json()
    assert (rest["next_offset"], rest["data"]) == (size, "\ufffd")  # a finished log's cut end is shown



# --- WebSocket ------------------------------------------------------------------------------------

def ws_url(server: ServerProcess, task_id: int, offset: int = 0) -> str:
    return server.url.replace("http://", "ws://") + f"/api/tasks/{task_id}/log/ws?offset={offset}"


def receive(ws, timeout_s: float = 15.0) -> dict | None:
    ws.settimeout(timeout_s)
    try:
        raw = ws.recv()
    except websocket.WebSocketConnectionClosedException:
        return None
    return json.loads(raw) if raw else None


def all_frames(server: ServerProcess, task_id: int, offset: int = 0) -> list[dict]:
    """Every log frame of a finished task's stream from `offset`, until the server closes it."""
    ws = websocket.create_connection(ws_url(server, task_id, offset), timeout=15)
    try:
        frames = []
        while (frame := receive(ws)) is not None:
            frames.append(frame)
    finally:
        ws.close()
    return [f for f in frames if f["type"] == "log"]


def assert_contiguous(frames: list[dict], start: int) -> None:
    at = start
    for frame in frames:
        assert frame["offset"] == at and frame["end"] > frame["offset"], (at, frame)
        at = frame["end"]


@pytest.mark.parametrize("which", ["small", "big"])
def test_websocket_frames_say_which_bytes_they_hold(bytes_server, request, which):
    task, raw = request.getfixturevalue(which), {"small": SMALL_BYTES, "big": BIG_BYTES}[which]
    frames = all_frames(bytes_server, task["id"])
    assert_contiguous(frames, 0)
    assert frames[-1]["end"] == len(raw)
    assert "".join(f["data"] for f in frames) == replaced(raw)
    for frame in frames:
        assert frame["data"] == replaced(raw[frame["offset"]:frame["end"]])


def test_websocket_resumed_from_a_frame_end_or_page_end_gives_exactly_the_rest(bytes_server, api: Api, big, small):
    ends = [f["end"] for f in all_frames(bytes_server, big["id"])][:-1]
    assert ends, "the big log should come in more than one frame"
    for end in ends:
        rest = all_frames(bytes_server, big["id"], end)
        assert_contiguous(rest, end)
        assert "".join(f["data"] for f in rest) == replaced(BIG_BYTES[end:])
    for offset in (7, 8, SMALL_BYTES.index(b"\xe4\xb8 then"), len(SMALL_BYTES) - 2):
        start = api.get(f"/api/tasks/{small['id']}/log", params={"offset": offset, "limit": 1}).json()["next_offset"]
        rest = all_frames(bytes_server, small["id"], start)
        assert_contiguous(rest, start)
        assert "".join(f["data"] for f in rest) == replaced(SMALL_BYTES[start:])


def test_live_websocket_holds_back_a_split_character_and_resumes_from_end(bytes_server, api: Api, agent, tmp_path):
    """The task writes a character in two parts (and an invalid byte in each part), waiting for the test
    in between: the first frame ends before the split character, the next one starts with it."""
    gate = tmp_path / "gate"
    script = (f"printf 'one \\xff \\xe4\\xb8'\nwhile [ ! -e '{gate}' ]; do sleep 0.05; done\n"
              "printf '\\xad two \\xfe\\n'\n")
    first, second = b"one \xff \xe4\xb8", b"\xad two \xfe\n"
    task = api.create_task(script, name="live")
    api.wait_status(task["id"], "running", 30)
    wait_for(lambda: api.task(task["id"])["log_size"] == len(first), 15, message="the first part to be stored")
    raw_now = api.get(f"/api/tasks/{task['id']}/log/raw")
    assert raw_now.content == first and raw_now.headers["Content-Length"] == str(len(first))

    ws = websocket.create_connection(ws_url(bytes_server, task["id"]), timeout=15)
    try:
        frames = []
        while not frames or frames[-1]["type"] != "log":
            frames.append(receive(ws))
        before = frames[-1]
        assert (before["offset"], before["end"], before["data"]) == (0, len(first) - 2, "one \ufffd ")
        gate.touch()
        while (frame := receive(ws)) is not None:
            frames.append(frame)
    finally:
        ws.close()
    logs = [f for f in frames if f["type"] == "log"]
    assert_contiguous(logs, 0)
    assert logs[1]["offset"] == len(first) - 2 and logs[1]["data"].startswith("中")
    assert logs[-1]["end"] == len(first + second) == api.task(task["id"])["log_size"]
    assert "".join(f["data"] for f in logs) == replaced(first + second) == "one \ufffd 中 two \ufffd\n"
    resumed = all_frames(bytes_server, task["id"], before["end"])
    assert "".join(f["data"] for f in resumed) == "中 two \ufffd\n"
