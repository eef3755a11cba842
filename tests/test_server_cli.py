"""`python app.py` refuses bad arguments with a short error and exit code 2 (the contract)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("args", [
    ["--port", "0"],
    ["--port", "http"],
    ["--data-dir", "/proc/no-such-dir"],
    ["--unknown"],
])
def test_bad_arguments_give_a_short_error_and_exit_2(args):
    result = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
