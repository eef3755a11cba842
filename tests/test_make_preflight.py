"""`make` says in one line what the machine lacks, before it builds anything."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def _fake(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _preflight(tmp_path: Path, py: str, checks=("python", "node")) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PY": py}
    return subprocess.run(["bash", "scripts/preflight.sh", *checks], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_preflight_passes_on_this_machine(tmp_path: Path):
    result = subprocess.run(["make", "preflight"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_too_old_python_and_node_each_get_one_line(tmp_path: Path):
    old_python = _fake(tmp_path, "python3.9", 'case "$2" in *%d.%d.%d*) echo 3.9.18 ;; *) exit 1 ;; esac\n')
    _fake(tmp_path, "node", '[ "$1" = --version ] && echo v20.11.1 && exit 0\nexit 1\n')
    result = _preflight(tmp_path, str(old_python))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert "Python 3.9.18 is too old: 3.11 or newer" in lines[0]
    assert "node v20.11.1 is too old" in lines[1] and "20.19" in lines[1]


def test_missing_python_is_one_line(tmp_path: Path):
    result = _preflight(tmp_path, "no-such-python3", checks=("python",))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no-such-python3 does not run here" in result.stderr
