"""How a sub-agent stops (a part of SubAgent, agent/sub_agent.py) without losing its task's output.

A stop signal (SIGTERM: the main agent's second stop signal or its fallback kill, the box shutting
down, a person) is a cancel: the task is killed. Once its end is fixed the sub-agent delivers the
rest for STOP_DELIVERY_GRACE_S at most, even to a server that cannot be reached, then leaves it in
the spool (output segments + end.json) and exits EXIT_UNDELIVERED. The main agent, or the next one
after a restart, then starts a sub-agent with `deliver_only` for the task (agent/main_agent_subs.py),
which sends the rest from the spool: nothing is lost, unless the disk was too full to keep it (said
in the log; the task is then reported as died).
"""
from __future__ import annotations

import contextlib
import signal
import time
from typing import Optional

EXIT_UNDELIVERED = 5  # stopped before the server had everything: the rest is in the spool, with end.json
STOP_DELIVERY_GRACE_S = 5.0  # after a stop signal, once the task is over: time to hand the server the rest


class DeliveryStopped(BaseException):
    """Raised out of a server call by SIGALRM once the grace is over: leave now. A BaseException, so
    that no `except Exception` on the way swallows it (like KeyboardInterrupt)."""


class StopRequest:
    """Whether a stop signal came, and the delivery grace that follows it once the task's end is fixed."""

    def __init__(self) -> None:
        self.is_requested = False
        self.deadline: Optional[float] = None  # leave undelivered from then on
        self.in_server_call = False

    def request(self, is_end_fixed: bool) -> None:
        """From the SIGTERM handler. With the end fixed the grace starts now: the loop may be stuck in a
        call to a server that hangs."""
        self.is_requested = True
        if is_end_fixed:
            self.start_grace()
        self.interrupt_hanging_call()

    def start_grace(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + STOP_DELIVERY_GRACE_S
            signal.setitimer(signal.ITIMER_REAL, STOP_DELIVERY_GRACE_S + 0.05)  # SIGALRM: a hanging call

    def is_grace_over(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def interrupt_hanging_call(self, *_) -> None:
        """Also the SIGALRM handler: leave a server call that hangs past the grace (a frozen server).
        Only a server call: nothing of ours is then half done."""
        if self.in_server_call and self.is_grace_over():
            raise DeliveryStopped()

    @contextlib.contextmanager
    def server_call(self):
        self.in_server_call = True
        try:
            yield
        finally:
            self.in_server_call = False
