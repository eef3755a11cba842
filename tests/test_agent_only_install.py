"""An agent box needs only the agent: `make install-agent` makes a venv without Flask, SQLAlchemy,
gunicorn or gevent, and a real main agent from that venv runs a task through a real server."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, AgentProcess
from tests.helpers import Api, wait_for

SERVER_ONLY = ["flask", "sqlalchemy", "gunicorn", "gevent", "flask_sqlalchemy", "pydantic_settings", "alembic"]


@pytest.fixture(scope="module")
def agent_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("agent-venv") / "venv"
    result = subprocess.run(["make", "install-agent", f"VENV={venv}", f"PY={sys.executable}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def test_agent_venv_has_none_of_the_server_packages(agent_venv: Path):
    for module in SERVER_ONLY:
        probe = subprocess.run([str(agent_venv / "bin" / "python"), "-c", f"import {module}"],
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module


def test_agent_from_an_agent_only_venv_runs_a_task(agent_venv: Path, server, client: Api, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    agent = AgentProcess(server, "agent-only-box", work, tmp_path / "state")
    agent.args[0] = str(agent_venv / "bin" / "python")
    agent.start()
    try:
        wait_for(lambda: any(a["name"] == "agent-only-box" and a["status"] == "online"
                             for a in client.get("/api/agents").json()), 30, message="the agent to come online")
        task = client.create_task("echo from an agent-only box; printf '%s\\n' $CUDA_VISIBLE_DEVICES", gpu_count=1)
        done = client.wait_status(task["id"], ("completed", "failed"), 30)
        assert done["status"] == "completed", done
        assert client.log(task["id"]) == b"from an agent-only box\n0\n"
    finally:
        agent.kill(15)
        agent.kill()
