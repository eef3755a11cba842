"""How a sub-agent stops (a mixin of SubAgent, agent/sub_agent.py) without losing its task's output.

A stop signal (SIGTERM: the main agent's kill or its second stop signal, or the box shutting down)
is a cancel: the task is killed. Once it is over the sub-agent delivers the rest for
STOP_DELIVERY_GRACE_S at most, even to a server that cannot be reached, then leaves it in the spool
(output segments + end.json) and exits EXIT_UNDELIVERED. The main agent, or the next one after a
restart, then starts a sub-agent with `deliver_only` for the task (agent/main_agent_subs.py), which
sends the rest from the spool: nothing is lost, unless the disk was too full to keep it (said in
the log; the task is then reported as died).
"""
from __future__ import annotations

import contextlib
import signal
import time

import structlog

from agent.output_spool import OutputSpool
from agent.spool import TaskEnd

log = structlog.get_logger()

EXIT_UNDELIVERED = 5  # stopped before the server had everything: the rest is in the spool, with end.json
STOP_DELIVERY_GRACE_S = 5.0  # after a stop signal, once the task is over: time to hand the server the rest


class DeliveryStopped(BaseException):
    """Raised out of a server call by the stop signal's handler once the grace is over: leave now.
    A BaseException, so that no `except Exception` on the way swallows it (like KeyboardInterrupt)."""


class Stopping:
    def on_stop_signal(self, *_) -> None:
        """SIGTERM: a cancel (apply_stop_request). Once the task is over, the grace starts now: the loop
        may be stuck in a call to a server that hangs."""
        self.cancel_requested = True
        if self.returncode is not None:
            self.start_stop_grace()
        self.on_alarm()

    def start_stop_grace(self) -> None:
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + STOP_DELIVERY_GRACE_S
            signal.setitimer(signal.ITIMER_REAL, STOP_DELIVERY_GRACE_S + 0.05)  # on_alarm: a hanging call

    def on_alarm(self, *_) -> None:
        """SIGALRM at the end of the grace: leave a server call that hangs (a frozen server). Only a
        server call: nothing of ours is then half done."""
        if self.in_server_call and self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
            raise DeliveryStopped()

    @contextlib.contextmanager
    def server_call(self):
        self.in_server_call = True
        try:
            yield
        finally:
            self.in_server_call = False

    def resume_delivery(self) -> bool:
        """Take up what an earlier sub-agent of this task left: its end and the output still owed."""
        end = self.spool.read_end()
        self.output = OutputSpool.reopen(self.spool.dir, end.final_size if end else 0)
        if end is None or self.output.size != end.final_size:
            log.error("task_output_lost", reason="the spool does not hold the rest of the output",
                      spool_size=self.output.size, final_size=end.final_size if end else None)
            return False
        self.acked, self.task_rc, self.returncode, self.final_size = \
            self.output.base, end.returncode, end.returncode, end.final_size
        self.last_sent = self.last_usage_at = time.monotonic()
        log.info("sub_agent_delivery_resumed", offset=self.acked, final_size=end.final_size)
        return True

    def apply_stop_request(self) -> None:
        """A stop signal is a cancel: kill the task; once it is over, deliver the rest for
        STOP_DELIVERY_GRACE_S, then leave it in the spool for a later sub-agent (leave_undelivered)."""
        if not self.cancel_requested:
            return
        if self.returncode is None:
            if self.proc is not None:
                self.request_kill("sub-agent received SIGTERM")
            return
        self.start_stop_grace()
        if time.monotonic() >= self.stop_deadline:
            self.leave_undelivered()

    def leave_undelivered(self) -> None:
        """Exit before the server has everything: the rest stays in the spool with end.json, for the
        sub-agent the main agent starts next (deliver_only). A disk that cannot take it loses it: said."""
        kept = self.output.flush_held() and self.spool.write_end(TaskEnd(self.returncode, self.final_size))
        self.output.close()
        level = log.warning if kept else log.error
        level("task_output_left_undelivered", pending_bytes=self.final_size - self.acked, kept_on_disk=kept)
        self.exit_code = EXIT_UNDELIVERED
