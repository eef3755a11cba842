"""The phases of a sub-agent's life (agent/sub_agent.py), and which may follow which.

  STARTING   register with the server and start bash; or, for a `deliver_only` sub-agent, take up
             the end and output an earlier sub-agent of the task left in the spool
  RUNNING    bash runs; its output and usage go out in heartbeats
  DRAINING   bash exited: what it left behind is killed and the pipe's last bytes are read, so the
             end (return code, final output size) is not fixed yet
  REPORTING  the end is fixed (and in the spool's end.json): every heartbeat carries it, with the
             output the server lacks, until the server answers `finished`
  DONE       the sub-agent exits with `exit_code` (finished, refused, left undelivered, ...)

Any phase may end in DONE (the server refuses the task, a stop signal, a lost spool); nothing leaves DONE.
"""
from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    REPORTING = "reporting"
    DONE = "done"


ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset({Phase.RUNNING, Phase.REPORTING, Phase.DONE}),  # REPORTING: deliver_only
    Phase.RUNNING: frozenset({Phase.DRAINING, Phase.DONE}),
    Phase.DRAINING: frozenset({Phase.REPORTING, Phase.DONE}),
    Phase.REPORTING: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}


class PhaseError(RuntimeError):
    """A transition the table does not allow: a bug in the sub-agent, never a condition of the world."""


def check_transition(old: Phase, new: Phase) -> None:
    if new not in ALLOWED[old]:
        raise PhaseError(f"a sub-agent cannot go from {old.value} to {new.value}")
