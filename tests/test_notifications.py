"""A finished task (completed, failed, canceled) is told once to the server's NOTIFY_URLS and to its own
`notify` URLs: http(s) get the task JSON, other schemes go through Apprise; a dead or hung endpoint is
retried and logged, never delays a task, a dispatch or a request, and never changes the task."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from backend.services.notification_worker import WorkerPool
from backend.utils.notify_urls import shown_url
from tests.conftest import ServerProcess, free_port
from tests.helpers import Api, server_events, wait_for

NOTIFY_ENV = {"TASK_SYSTEM_NOTIFY_ATTEMPTS": "3", "TASK_SYSTEM_NOTIFY_TIMEOUT_S": "0.5",
              "TASK_SYSTEM_NOTIFY_BACKOFF_S": "0.1"}
HANG_S = 10  # the hung endpoint's send times out after this: longer than the checks made meanwhile


class Listener:
    """A local HTTP endpoint that keeps (path, JSON body) of each POST and answers 200 (500 under /fail)."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in list(self.received) if p == path]


class HungEndpoint:
    """Accepts connections and never answers a byte."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return


@pytest.fixture
def listener():
    endpoint = Listener()
    yield endpoint
    endpoint.httpd.shutdown()


@pytest.fixture
def hung():
    endpoint = HungEndpoint()
    yield endpoint
    endpoint.sock.close()
    for conn in endpoint.held:
        conn.close()


@pytest.fixture
def server(data_dir: Path, request, listener: Listener, hung: HungEndpoint):
    """The real server (conftest's), its NOTIFY_URLS the listener's /all, or the hung endpoint
    (parametrize server with "hung", indirect)."""
    server_wide = hung.url if getattr(request, "param", None) == "hung" else listener.base + "/all"
    timeout = {"TASK_SYSTEM_NOTIFY_TIMEOUT_S": str(HANG_S)} if server_wide == hung.url else {}
    proc = ServerProcess(data_dir, env={**NOTIFY_ENV, **timeout, "TASK_SYSTEM_NOTIFY_URLS": server_wide}).start()
    yield proc
    proc.kill()


def test_each_finished_task_is_told_once_with_its_json(main_agent, client: Api, listener: Listener):
    done = client.create_task("echo hello", name="done", notify=[listener.base + "/mine"])
    failed = client.create_task("exit 3", name="broken")
    running = client.create_task("sleep 30", name="long")
    client.wait_status(done["id"], "completed")
    client.wait_status(failed["id"], "failed")
    client.wait_status(running["id"], "running")
    assert client.post(f"/api/tasks/{running['id']}/cancel").status_code == 200  # told now, not at the kill
    wait_for(lambda: len(listener.bodies("/all")) == 3 and len(listener.bodies("/mine")) == 1, 15,
             message="one webhook per finished task, and the task's own")
    time.sleep(0.5)  # not waiting for an outcome: giving a second webhook the time to show up
    server_wide = {body["task"]["id"]: body for body in listener.bodies("/all")}
    assert len(listener.bodies("/all")) == 3 and len(listener.bodies("/mine")) == 1
    for task, status, exit_code in ((done, "completed", 0), (failed, "failed", 3), (running, "canceled", None)):
        body = server_wide[task["id"]]
        assert body["event"] == "task_finished"
        assert (body["task"]["status"], body["task"]["name"]) == (status, task["name"])
        if exit_code is not None:
            assert body["task"]["exit_code"] == exit_code
        assert body["task"].keys() == client.task(task["id"]).keys()  # the task JSON the API answers
    assert listener.bodies("/mine")[0] == server_wide[done["id"]]
    assert listener.bodies("/mine")[0]["task"]["log_size"] == len(b"hello\n")


@pytest.mark.parametrize("server", ["hung"], indirect=True)
def test_hung_endpoint_delays_no_task_dispatch_or_request(server, main_agent, client: Api, hung: HungEndpoint):
    first = client.create_task("echo one", name="first")
    client.wait_status(first["id"], "completed")
    wait_for(lambda: hung.held, 5, message="the server to connect to the hung endpoint")
    started = time.monotonic()
    second = client.create_task("echo two", name="second")
    client.wait_status(second["id"], "completed", timeout_s=HANG_S / 2)
    for path in ("/api/health", "/api/tasks", f"/api/tasks/{first['id']}"):
        t0 = time.monotonic()
        assert client.get(path, timeout=2).status_code == 200
        assert time.monotonic() - t0 < 1, path
    assert time.monotonic() - started < HANG_S / 2, "the send to the hung endpoint is still waiting"
    t0 = time.monotonic()
    server.stop()  # SIGTERM while sends hang: the server exits within gunicorn's grace, not the sends'
    assert time.monotonic() - t0 < HANG_S / 2


def test_refusing_endpoint_is_retried_then_given_up_and_the_task_unchanged(main_agent, client: Api, data_dir,
                                                                           listener: Listener):
    port = free_port()
    url = f"http://user:s3cret@127.0.0.1:{port}/hook?token=t0ken"  # nothing listens there
    task = client.create_task("echo fine", notify=[url, listener.base + "/fail"])
    client.wait_status(task["id"], "completed")
    failures = wait_for(lambda: (f := server_events(data_dir, "notification_failed", task_id=task["id"]))
                        and sum(e["gave_up"] for e in f) == 2 and f, 15, message="both notifications to be given up")
    refused = [f for f in failures if "/hook" in f["url"]]
    assert [(f["attempt"], f["level"]) for f in refused] == [(1, "warning"), (2, "warning"), (3, "error")]
    assert {f["url"] for f in refused} == {f"http://user:***@127.0.0.1:{port}/hook?token=***"}
    assert "s3cret" not in json.dumps(failures) and "t0ken" not in json.dumps(failures)
    assert [f["error"] for f in failures if "/fail" in f["url"]] == ["HTTP 500"] * 3
    assert len(listener.bodies("/fail")) == 3
    after = client.task(task["id"])
    assert (after["status"], after["exit_code"], after["status_reason"]) == ("completed", 0, None)


def test_apprise_url_gets_a_message_with_status_and_log_tail(main_agent, client: Api, listener: Listener):
    port = listener.httpd.server_port
    script = "for i in $(seq 1 15); do echo line $i; done; exit 4"
    task = client.create_task(script, name="train-bert", notify=[f"json://127.0.0.1:{port}/apprise"])
    client.wait_status(task["id"], "failed")
    message = wait_for(lambda: listener.bodies("/apprise"), 15, message="Apprise's JSON message")[0]
    assert message["title"] == f"Task {task['id']} train-bert failed"
    lines = message["message"].splitlines()
    assert "Status: failed (exit code 4)" in lines
    assert any(line.startswith("Took: ") for line in lines)
    assert lines[-10:] == [f"line {i}" for i in range(6, 16)]
    assert "line 5" not in lines
    assert message["type"] == "failure"


@pytest.mark.parametrize("url, error", [
    ("nosuchservice://token", "nosuchservice:// is neither http(s) nor a scheme Apprise knows"),
    ("not a url", "is not a URL"),
])
def test_unusable_notify_url_is_refused_at_create(app, url, error):
    body = {"name": "t", "template_type": "custom", "script_content": "true", "notify": [url]}
    resp = app.test_client().post("/api/tasks", json=body)
    assert resp.status_code == 400 and error in resp.json["error"]["message"]


@pytest.mark.parametrize("url, shown", [
    ("https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-1111-2222-3333-444455556666",
     "https://open.feishu.cn/open-apis/bot/v2/hook/***"),
    ("https://oapi.dingtalk.com/robot/send?access_token=abc", "https://oapi.dingtalk.com/robot/send?access_token=***"),
    ("http://me:pw@[::1]:8080/h", "http://me:***@[::1]:8080/h"),
    ("mailto://user:pass@example.com", "mailto://user:****@example.com/"),
])
def test_urls_are_logged_without_their_secrets(url, shown):
    assert shown_url(url) == shown


def test_worker_pool_refuses_calls_past_its_bound_and_stop_cuts_waits_short():
    idle = WorkerPool("bound", workers=1, max_pending=2)  # not started: nothing takes from the queue
    assert idle.submit(print, 1) and idle.submit(print, 2)
    assert not idle.submit(print, 3) and idle.pending() == 2
    pool = WorkerPool("stop", workers=1, max_pending=10).start()
    waited, started = [], threading.Event()
    pool.submit(lambda: started.set() or waited.append(pool.stopping.wait(30)))  # as a send between retries
    assert started.wait(5)
    t0 = time.monotonic()
    pool.stop()
    wait_for(lambda: waited, 5, message="the wait to end at stop()")
    assert waited == [True] and time.monotonic() - t0 < 5
    assert not pool.submit(print, 4)
