"""`python app.py` refuses bad arguments with one short line naming the flag and exit code 2 (the contract)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("args, named", [
    (["--port", "0"], "--port"),
    (["--port", "65536"], "--port"),
    (["--port", "http"], "--port"),
    (["--host", " "], "--host"),
    (["--token", ""], "--token"),
    (["--database-url", "nonsense"], "--database-url"),
    (["--database-url", "mysql://x"], "--database-url"),
    (["--database-url", "sqlite://"], "--database-url"),
    (["--data-dir", "/proc/no-such-dir"], "--data-dir"),
    (["--unknown"], "unrecognized arguments: --unknown"),
    (["--port"], "argument --port"),
])
def test_bad_arguments_give_a_one_line_error_and_exit_2(args, named):
    result = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()] and f"app.py: error: {named}" in result.stderr
