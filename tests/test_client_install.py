"""The client installs the way Python tools do: `pip install ./` of the checkout into a brand-new venv (no
system site-packages) brings requests and click and nothing of the server, and its `tq` works against a
real server. pip fetches the build backend and the two dependencies from the package registry (cached by
pip after the first run: ~10 s). Only pyproject.toml and task_client/ are copied: all a checkout needs."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import Api

SERVER_ONLY = ["flask", "sqlalchemy", "gunicorn", "gevent", "pydantic", "structlog", "psutil"]
CLIENT_DISTRIBUTIONS = {"task-client", "requests", "click", "urllib3", "idna", "certifi", "charset-normalizer"}
INSTALLER = {"pip", "setuptools"}  # what venv itself puts there


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("client-install")
    checkout = work / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "pyproject.toml", checkout)
    shutil.copytree(ROOT / "task_client", checkout / "task_client", ignore=shutil.ignore_patterns("__pycache__"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             str(checkout)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def test_the_client_venv_holds_the_client_and_its_two_dependencies_only(client_venv: Path):
    listed = subprocess.run([str(client_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze",
                             "--disable-pip-version-check"], capture_output=True, text=True, timeout=60).stdout
    names = {line.split("==")[0].lower() for line in listed.split()}
    assert names - INSTALLER == CLIENT_DISTRIBUTIONS, listed
    for module in SERVER_ONLY:
        probe = subprocess.run([str(client_venv / "bin" / "python"), "-c", f"import {module}"],
                               capture_output=True, text=True, timeout=60)
        assert "ModuleNotFoundError" in probe.stderr, module


def test_the_installed_tq_submits_and_lists_against_a_real_server(client_venv: Path, server, client: Api,
                                                                    tmp_path: Path):
    tq = str(client_venv / "bin" / "tq")
    env = {"PATH": "/usr/bin:/bin", "TASK_SYSTEM_URL": server.url}
    submitted = subprocess.run([tq, "submit", "-", "--name", "from-pip"], input=b"echo hi", env=env, cwd=tmp_path,
                               capture_output=True, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    assert client.task(int(submitted.stdout))["name"] == "from-pip"
    listed = subprocess.run([tq, "ls"], env=env, cwd=tmp_path, capture_output=True, timeout=60)
    assert b"from-pip" in listed.stdout
    version = subprocess.run([tq, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("tq, version ")
