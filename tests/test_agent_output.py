"""Task output reaches the server's log exactly as written: every byte, in order, nothing added."""
from __future__ import annotations

import hashlib
import shlex

from tests.conftest import ROOT


def test_large_mixed_output_is_stored_byte_identical(main_agent, client, tmp_path):
    """~20 MB: short lines, non-ASCII text, a 3 MB line without newline, no newline at the end."""
    written = tmp_path / "written.bin"
    script = f"OUT_FILE={shlex.quote(str(written))}\n" + (ROOT / "tests/scripts/mixed_output.sh").read_text()
    task = client.create_task(script)
    done = client.wait_status(task["id"], {"completed", "failed"}, timeout_s=90)
    assert done["status"] == "completed", done["status_reason"]
    expected = written.read_bytes()
    stored = client.log(task["id"])
    assert len(expected) > 19_000_000
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (len(expected), hashlib.sha256(expected).hexdigest())


def test_stdout_and_stderr_keep_the_order_they_were_written_in(main_agent, client):
    script = "".join(f"echo out{i}\necho err{i} >&2\n" for i in range(50)) + "printf 'tail without newline'"
    task = client.create_task(script)
    client.wait_status(task["id"], "completed")
    expected = "".join(f"out{i}\nerr{i}\n" for i in range(50)) + "tail without newline"
    assert client.log(task["id"]).decode() == expected
