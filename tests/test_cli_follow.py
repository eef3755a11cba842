"""`tq logs` and `tq wait` against a real server and agent: the log byte for byte while it grows (10,000
lines with invalid UTF-8 and \\r), through a server restart in the middle, from --tail; wait's exit codes."""
from __future__ import annotations

import subprocess

import pytest

from tests.cli_run import tq, tq_on_a_terminal, tq_popen
from tests.helpers import Api, wait_for

LINES = 10_000
CHATTY = (f"for i in $(seq 1 {LINES // 2}); do printf 'line %d \\xff\\xfe bad\\r中文 ok\\n' \"$i\"; done\n"
          "sleep 0.5\n"  # the follower has caught up here and waits for more
          f"for i in $(seq {LINES // 2 + 1} {LINES}); do printf 'line %d \\xff\\xfe bad\\r中文 ok\\n' \"$i\"; done\n"
          "printf 'cut \\xe4\\xb8'")
CHATTY_BYTES = (b"".join(b"line %d \xff\xfe bad\r" % i + "中文 ok\n".encode() for i in range(1, LINES + 1))
                + b"cut \xe4\xb8")


def raw_log(client: Api, task_id: int) -> bytes:
    return client.get(f"/api/tasks/{task_id}/log/raw").content


def test_logs_follow_prints_exactly_the_stored_bytes(server, client: Api, main_agent):
    task = client.create_task(CHATTY, name="chatty")
    follower = tq_popen(server.url, "logs", "-f", str(task["id"]))
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    assert client.task(task["id"])["status"] == "completed"
    assert out == CHATTY_BYTES == raw_log(client, task["id"])
    assert tq(server.url, "logs", str(task["id"])).stdout == CHATTY_BYTES
    assert tq(server.url, "logs", str(task["id"]), "--tail", "10").stdout == CHATTY_BYTES[-10:]


def test_logs_follow_survives_a_server_restart(server, client: Api, main_agent):
    script = "for i in $(seq 1 160); do echo \"line $i\"; sleep 0.05; done; printf 'the end'"
    task = client.create_task(script, name="through-a-restart")
    follower = tq_popen(server.url, "logs", "-f", str(task["id"]))
    assert follower.stdout.readline() == b"line 1\n"  # following, live
    server.kill()  # SIGKILL, as a crash; the task keeps running on its agent
    server.start()  # same port, same data dir
    assert client.task(task["id"])["status"] == "running"
    rest, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    expected = b"".join(b"line %d\n" % i for i in range(1, 161)) + b"the end"
    assert b"line 1\n" + rest == expected == raw_log(client, task["id"])


def test_wait_exit_codes(server, client: Api, main_agent):
    ok = client.create_task("echo ok")
    bad = client.create_task("exit 3")
    sleeper = client.create_task("sleep 60")
    client.wait_status(sleeper["id"], "running")
    client.post(f"/api/tasks/{sleeper['id']}/cancel")
    completed = tq(server.url, "wait", str(ok["id"]))
    assert completed.returncode == 0 and completed.stdout == f"{ok['id']} completed\n".encode()
    failed = tq(server.url, "wait", str(ok["id"]), str(bad["id"]))
    assert failed.returncode == 1
    assert failed.stdout.decode().splitlines() == [f"{ok['id']} completed", f"{bad['id']} failed: exit code 3"]
    canceled = tq(server.url, "wait", str(sleeper["id"]))
    assert canceled.returncode == 1 and canceled.stdout.decode().startswith(f"{sleeper['id']} canceled")
    assert completed.stderr == failed.stderr == canceled.stderr == b""  # not a terminal: no progress line


def test_wait_follows_a_task_to_its_end_and_times_out(server, client: Api, main_agent):
    slow = client.create_task("sleep 1.5")
    done = tq(server.url, "wait", str(slow["id"]))
    assert done.returncode == 0 and client.task(slow["id"])["status"] == "completed"
    never = client.create_task("sleep 1", gpu_count=99)  # no agent is that big: it waits forever
    timed_out = tq(server.url, "wait", str(never["id"]), "--timeout", "1")
    assert timed_out.returncode == 124 and b"timed out" in timed_out.stderr


def test_wait_shows_a_progress_line_on_a_terminal_only(server, client: Api, main_agent):
    task = client.create_task("sleep 1.5")
    code, out = tq_on_a_terminal(server.url, "wait", str(task["id"]))
    assert code == 0 and b"waiting for 1 task(s): " in out and out.endswith(f"{task['id']} completed\r\n".encode())
