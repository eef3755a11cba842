"""task_client.Client, the Python client, against a real server and agent: every method, its errors (one
TaskSystemError type with the server's code, message and status), retries on connection errors only,
the server from the environment, and a task that submits its own evaluation as a dependent task."""
from __future__ import annotations

import http.server
import sys
import threading
import time

import pytest

from task_client import Client, ServerUnreachable, TaskSystemError
from task_client.follow import decode_utf8
from tests.conftest import ROOT, AgentProcess, ServerProcess, free_port, running_agent, running_server


@pytest.fixture(scope="module")
def py_server(tmp_path_factory) -> ServerProcess:
    yield from running_server(tmp_path_factory, "client-data")


@pytest.fixture(scope="module")
def agent(py_server: ServerProcess, tmp_path_factory) -> AgentProcess:
    yield from running_agent(py_server, tmp_path_factory, "client-box", cpu_cores=4)


@pytest.fixture
def tq(py_server: ServerProcess) -> Client:
    return Client(py_server.url)


def test_submit_get_and_wait(tq: Client, agent):
    task = tq.submit("echo $GREETING", name="hello", env={"GREETING": "hi"}, priority=2, cpu_cores=1)
    assert (task["name"], task["priority"], task["env"], task["template_type"]) == ("hello", 2, {"GREETING": "hi"}, "custom")
    assert tq.get(task["id"])["id"] == task["id"]
    done = tq.wait(task["id"], timeout=30)
    assert done["status"] == "completed" and done["exit_code"] == 0
    assert "".join(tq.logs(task["id"])) == "hi\n"


def test_wait_raises_timeout_error(tq: Client):
    task = tq.submit("sleep 1", gpu_count=99)  # no agent has room: it waits
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"task {task['id']} is still waiting"):
        tq.wait(task["id"], timeout=0.5)
    assert time.monotonic() - started < 5
    tq.cancel(task["id"])


def test_list_filters_and_pages(tq: Client):
    marker = f"listed-{time.monotonic_ns()}"
    made = [tq.submit("echo x", name=f"{marker}-{i}", gpu_count=99) for i in range(3)]
    found = tq.list(name=marker)
    assert [t["id"] for t in found] == [t["id"] for t in reversed(made)]  # newest first
    assert len(tq.list(name=marker, limit=2)) == 2
    assert tq.list(name=marker, status=["waiting", "running"])[0]["id"] == made[-1]["id"]
    assert tq.list(name=marker, status="completed") == []
    for task in made:
        assert tq.cancel(task["id"])["status"] == "canceled"


def test_retry_with_overrides_recreates_the_cascade(tq: Client, agent):
    broken = tq.submit("exit 1", name="broken")
    after = tq.submit("echo after", name="after", depends_on=[broken["id"]])
    assert tq.wait(broken["id"], timeout=30)["status"] == "failed"
    result = tq.retry(broken["id"], script_content="echo fixed", priority=1)
    new, copies = result["task"], result["dependents"]
    assert (new["retry_of"], new["priority"], new["script_content"]) == (broken["id"], 1, "echo fixed")
    assert [c["retry_of"] for c in copies] == [after["id"]] and copies[0]["depends_on"] == [new["id"]]
    assert tq.wait(copies[0]["id"], timeout=30)["status"] == "completed"
    assert tq.get(broken["id"])["retried_as"] == new["id"]


def test_sweep_makes_one_task_per_combination(tq: Client, agent):
    tasks = tq.sweep("echo {{lr}} {{bs}}", {"lr": [0.1, 0.01], "bs": [32]}, name="sweep-{{lr}}")
    assert sorted(t["name"] for t in tasks) == ["sweep-0.01", "sweep-0.1"]
    assert all(t["env"]["bs"] == "32" for t in tasks)
    for task in tasks:
        tq.wait(task["id"], timeout=30)
    assert sorted("".join(tq.logs(t["id"])) for t in tasks) == ["0.01 32\n", "0.1 32\n"]


def test_logs_follow_decodes_across_chunks_keeping_split_characters(tq: Client, agent):
    script = "for i in $(seq 1 12000); do printf '中文\\xff'; done; sleep 0.3; printf '✓ end\\n'"
    stored = b"".join("中文".encode() + b"\xff" for _ in range(12000)) + "✓ end\n".encode()  # cut by 64 KiB reads
    task = tq.submit(script, name="text")
    assert "".join(tq.logs(task["id"], follow=True)) == "中文\ufffd" * 12000 + "✓ end\n"
    assert b"".join(tq.log_bytes(task["id"], offset=3)) == stored[3:]
    assert list(decode_utf8([b"\xe4", b"\xb8", b"\xad!", b"\xe6"])) == ["中!", "\ufffd"]


def test_errors_carry_the_servers_code_message_and_status(tq: Client, agent):
    with pytest.raises(TaskSystemError) as missing:
        tq.get(987654)
    assert (missing.value.code, missing.value.status, str(missing.value)) == \
        ("task_not_found", 404, "Task 987654 does not exist.")
    done = tq.submit("true")
    tq.wait(done["id"], timeout=30)
    with pytest.raises(TaskSystemError) as finished:
        tq.cancel(done["id"])
    assert finished.value.status == 409
    with pytest.raises(TaskSystemError) as invalid:
        tq.submit("echo x", env={"TASK_ID": "1"})
    assert invalid.value.status == 400 and "TASK_ID" in invalid.value.message


def test_an_unreachable_server_is_retried_a_few_times_then_raised():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServerUnreachable) as unreachable:
        Client(url, retry_delays_s=(0.2, 0.2)).list()
    assert time.monotonic() - started >= 0.4  # two retries, then it gave up
    assert unreachable.value.url == url and url in str(unreachable.value) and unreachable.value.status is None


class _Counting(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits += 1
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"busy")

    def log_message(self, *_args):
        pass


def test_an_http_error_is_never_retried():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TaskSystemError) as refused:
            Client(f"http://127.0.0.1:{httpd.server_port}").get(1)
        assert _Counting.hits == 1 and refused.value.status == 503 and refused.value.code == "http_503"
    finally:
        httpd.shutdown()


def test_server_and_token_from_the_environment(monkeypatch, tmp_path):
    server = ServerProcess(tmp_path, token="tok").start()
    try:
        monkeypatch.delenv("TASK_SYSTEM_URL", raising=False)
        monkeypatch.setenv("TASK_SERVER_URL", server.url)  # as inside a running task
        monkeypatch.setenv("TASK_SYSTEM_TOKEN", "tok")
        assert Client().url == server.url and Client().list() == []
        monkeypatch.setenv("TASK_SYSTEM_URL", "http://127.0.0.1:9")  # the first choice wins
        assert Client().url == "http://127.0.0.1:9"
        with pytest.raises(TaskSystemError) as no_token:
            Client(server.url, token="wrong").list()
        assert no_token.value.status == 401
    finally:
        server.kill()


def test_a_training_task_submits_its_own_evaluation(tq: Client, agent):
    submit_eval = ("from task_client import Client, current_task_id; "
                   "t = Client().submit('echo evaluating', name='eval', depends_on=[current_task_id()]); "
                   "print(t['id'])")
    train = tq.submit(f"echo training; {sys.executable} -c \"{submit_eval}\"", name="train",
                      env={"PYTHONPATH": str(ROOT)})
    assert tq.wait(train["id"], timeout=60)["status"] == "completed", "".join(tq.logs(train["id"]))
    eval_id = int("".join(tq.logs(train["id"])).split()[-1])
    evaluation = tq.wait(eval_id, timeout=30)
    assert evaluation["depends_on"] == [train["id"]] and evaluation["status"] == "completed"
    assert "".join(tq.logs(eval_id)) == "evaluating\n"
