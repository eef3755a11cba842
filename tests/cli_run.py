"""Run the `tq` command line (python -m task_client) as a subprocess, as a person's shell would."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from typing import Optional

from tests.conftest import ROOT

CLIENT_VARIABLES = ("TASK_SYSTEM_URL", "TASK_SERVER_URL", "TASK_SYSTEM_TOKEN", "COLUMNS")


def tq_env(url: Optional[str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
    if url:
        env["TASK_SYSTEM_URL"] = url
    return {**env, **extra}


def tq(url: Optional[str], *args: str, stdin: bytes = b"", timeout_s: float = 60,
       **env: str) -> subprocess.CompletedProcess:
    """`tq ARGS` against the server at `url`; stdout and stderr as bytes. Never a traceback, whatever it did."""
    result = subprocess.run([sys.executable, "-m", "task_client", *args], cwd=ROOT, env=tq_env(url, **env),
                            input=stdin, capture_output=True, timeout=timeout_s)
    assert b"Traceback" not in result.stderr + result.stdout, result.stderr.decode(errors="replace")
    return result


def tq_popen(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "task_client", *args], cwd=ROOT, env=tq_env(url),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def tq_on_a_terminal(url: str, *args: str, timeout_s: float = 60) -> tuple[int, bytes]:
    """`tq ARGS` with stdout and stderr on a pseudo-terminal, as in a person's shell: (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "task_client", *args], cwd=ROOT, env=tq_env(url),
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal's other end closed: the command has exited
            break
        if not data:
            break
        out += data
    os.close(master)
    return proc.wait(timeout_s), out
