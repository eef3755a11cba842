"""The files a sub-agent keeps for its task under `<state-dir>/spool/<sub_agent_id>/`.

`output.log` holds every byte the task wrote (stdout and stderr on one fd, so arrival order is kept)
until the server has acknowledged it; `task.pgid` lets the main agent kill the task if the sub-agent
dies; `outcome` tells a main agent (even one restarted meanwhile) how the sub-agent ended;
`gpu_usage.json` is the main agent's NVML reading of the task's processes, for the sub-agent to report.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

from task_common.protocol import ProcessGpuUsage

OUTCOME_FINISHED = "finished"  # the server recorded the end and all output
OUTCOME_REFUSED = "refused"  # the server said not to run it (or no longer ours): nothing to report


class Spool:
    def __init__(self, state_dir: Path, sub_agent_id: str):
        self.dir = Path(state_dir) / "spool" / sub_agent_id
        self.script = self.dir / "script.sh"
        self.output = self.dir / "output.log"
        self.pgid_file = self.dir / "task.pgid"
        self.outcome_file = self.dir / "outcome"
        self.gpu_usage_file = self.dir / "gpu_usage.json"  # written by the main agent (it owns NVML)

    def create(self, script_content: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.script.write_text(script_content, encoding="utf-8")

    def read_pgid(self) -> Optional[int]:
        try:
            return int(self.pgid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def write_pgid(self, pgid: int) -> None:
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
        except FileNotFoundError:
            pass

    def read_gpu_usage(self) -> Optional[list[ProcessGpuUsage]]:
        try:
            return [ProcessGpuUsage.from_dict(u) for u in json.loads(self.gpu_usage_file.read_text())]
        except (OSError, ValueError):
            return None

    def finish(self, outcome: str) -> None:
        """Drop the task's bytes (the server has them, or must not get them) and record the outcome."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in (self.script, self.output, self.pgid_file, self.gpu_usage_file):
            path.unlink(missing_ok=True)
        self.outcome_file.write_text(outcome)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
