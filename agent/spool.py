"""The files a sub-agent keeps for its task under `<state-dir>/spool/<sub_agent_id>/`.

`script.sh` is written by the main agent before the fork (a full disk refuses the hand-over there);
`output.<offset>.log` segments hold the task's output the server has not acknowledged yet
(agent/output_spool.py); `task.pgid` lets the main agent kill the task if the sub-agent dies;
`end.json` (return code, final size, stop reason) is written once the task's output is complete, so that a
sub-agent that had to leave before the server had it all can be followed by one that delivers the
rest; `outcome` tells a main agent (even one restarted meanwhile) how the sub-agent ended;
`gpu_usage.json` is the main agent's NVML reading of the task's processes, for the sub-agent to report.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from task_common.protocol import ProcessGpuUsage

OUTCOME_FINISHED = "finished"  # the server recorded the end and all output
OUTCOME_REFUSED = "refused"  # the server said not to run it (or no longer ours): nothing to report


@dataclass
class TaskEnd:
    """How the task ended, once all its output is in the spool."""

    returncode: int
    final_size: int
    stop_reason: Optional[str] = None  # the sub-agent stopped it itself ("time limit of 2s reached")


class Spool:
    def __init__(self, state_dir: Path, sub_agent_id: str):
        self.dir = Path(state_dir) / "spool" / sub_agent_id
        self.script = self.dir / "script.sh"
        self.pgid_file = self.dir / "task.pgid"
        self.outcome_file = self.dir / "outcome"
        self.end_file = self.dir / "end.json"
        self.gpu_usage_file = self.dir / "gpu_usage.json"  # written by the main agent (it owns NVML)

    def create(self, script_content: str) -> None:
        """Raises OSError (a full disk: ENOSPC) and leaves nothing behind then."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.script.write_text(script_content, encoding="utf-8")
        except OSError:
            self.remove()
            raise

    def read_pgid(self) -> Optional[int]:
        try:
            return int(self.pgid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def write_pgid(self, pgid: int) -> None:
        """Best effort: without it (a full disk) a main agent still finds a lost task by its marker."""
        with contextlib.suppress(OSError):
            self.pgid_file.write_text(str(pgid))

    def read_outcome(self) -> Optional[str]:
        try:
            return self.outcome_file.read_text().strip() or None
        except OSError:
            return None

    def write_gpu_usage(self, usage: list[ProcessGpuUsage]) -> None:
        """Atomically; skipped while the sub-agent has not made its spool yet (or after it is gone)."""
        tmp = self.gpu_usage_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps([u.to_dict() for u in usage]))
            os.replace(tmp, self.gpu_usage_file)
        except OSError:  # gone, or a full disk: the sub-agent reports the last reading it has
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def read_gpu_usage(self) -> Optional[list[ProcessGpuUsage]]:
        try:
            return [ProcessGpuUsage.from_dict(u) for u in json.loads(self.gpu_usage_file.read_text())]
        except (OSError, ValueError):
            return None

    def write_end(self, end: TaskEnd) -> bool:
        """Atomically; False when the disk refused it."""
        tmp = self.end_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"returncode": end.returncode, "final_size": end.final_size,
                                       "stop_reason": end.stop_reason}))
            os.replace(tmp, self.end_file)
            return True
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return False

    def read_end(self) -> Optional[TaskEnd]:
        try:
            raw = json.loads(self.end_file.read_text())
            return TaskEnd(returncode=int(raw["returncode"]), final_size=int(raw["final_size"]),
                           stop_reason=raw.get("stop_reason"))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def finish(self, outcome: str) -> None:
        """Drop the task's files (the server has its bytes, or must not get them) and record the
        outcome; deleting first frees the room the outcome needs on a full disk."""
        with contextlib.suppress(OSError):
            for path in self.dir.iterdir():
                with contextlib.suppress(OSError):
                    path.unlink()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.outcome_file.write_text(outcome)
        except OSError:
            pass  # the sub-agent's exit code tells its main agent the same; only an adopting one needs this

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
