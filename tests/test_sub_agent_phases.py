"""The sub-agent's phase machine (agent/sub_agent_phase.py): the table in full, and the phases a real
SubAgent goes through against a scripted server for each way a task can go."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from agent.sub_agent_phase import ALLOWED, Phase, PhaseError, check_transition
from tests.conftest import ROOT

EXPECTED = {
    (Phase.STARTING, Phase.RUNNING), (Phase.STARTING, Phase.REPORTING), (Phase.STARTING, Phase.DONE),
    (Phase.RUNNING, Phase.DRAINING), (Phase.RUNNING, Phase.DONE),
    (Phase.DRAINING, Phase.REPORTING), (Phase.DRAINING, Phase.DONE),
    (Phase.REPORTING, Phase.DONE),
}


@pytest.mark.parametrize("old", list(Phase))
@pytest.mark.parametrize("new", list(Phase))
def test_the_transition_table_allows_exactly_these_moves(old, new):
    if (old, new) in EXPECTED:
        check_transition(old, new)
    else:
        with pytest.raises(PhaseError):
            check_transition(old, new)


def test_every_phase_has_a_row_and_every_phase_can_reach_done():
    assert set(ALLOWED) == set(Phase) and ALLOWED[Phase.DONE] == frozenset()
    for phase in Phase:
        seen, frontier = {phase}, [phase]
        while frontier:
            for nxt in ALLOWED[frontier.pop()] - seen:
                seen.add(nxt)
                frontier.append(nxt)
        assert Phase.DONE in seen, phase


# A SubAgent in a child process (it becomes a child subreaper and reaps children: never in pytest's own
# process), with a ServerClient stand-in scripted by `mode`; it prints the phases and what it sent.
DRIVER = textwrap.dedent("""
    import json, sys, tempfile
    from pathlib import Path
    from agent import sub_agent as sa
    from agent.resource_util import ResourceUtil, parse_simulated_gpus
    from agent.server_client import ServerRejected
    from agent.spool import Spool
    from task_common import protocol as p

    mode, script = sys.argv[1], sys.argv[2]
    phases, sent = [], []

    class Server:
        def __init__(self, *args, **kwargs):
            self.stored = b""
        def register_sub(self, message):
            return p.RegisterSubReply(sub_agent_id=message.sub_agent_id, log_size=0, heartbeat_interval_s=0.05,
                                      cancel=mode == "canceled before start")
        def sub_heartbeat(self, beat, output):
            sent.append([beat.offset, len(output), beat.returncode, beat.final_size])
            if mode == "refused":
                raise ServerRejected(404, "sub_agent_not_found", "not yours")
            self.stored = self.stored[:beat.offset] + output if beat.offset <= len(self.stored) else self.stored
            finished = beat.final_size is not None and len(self.stored) >= beat.final_size
            return p.SubHeartbeatReply(log_size=len(self.stored), cancel=mode == "canceled", finished=finished,
                                       next_interval_s=0.05)

    sa.ServerClient = Server
    moves = sa.SubAgent.move_to
    sa.SubAgent.move_to = lambda self, phase, code=None: (phases.append(phase.value), moves(self, phase, code))
    state = Path(tempfile.mkdtemp())
    Spool(state, "sub-1").create(script)
    handover = sa.Handover(sub_agent_id="sub-1", main_agent_id="m", heartbeat_interval_s=0.05,
                           task=p.TaskAssignment(task_id=1, name="t", script_content=script, cpu_cores=0))
    config = sa.SubAgentConfig(server_url="http://127.0.0.1:9", state_dir=state, work_dir=state, kill_grace_s=1)
    code = sa.SubAgent(config, handover, ResourceUtil(parse_simulated_gpus("1x1"))).run()
    print(json.dumps({"code": code, "phases": phases, "sent": sent}))
""")

THROUGH = ["running", "draining", "reporting", "done"]
CASES = [
    ("finished", "printf 'hello\\n'", 0, THROUGH),
    ("canceled", "echo started; sleep 30", 0, THROUGH),  # the reply's cancel kills it; the end is still reported
    ("canceled before start", "echo never", 3, ["done"]),
    ("refused", "sleep 30", 3, ["running", "done"]),
]


@pytest.mark.parametrize("mode, script, code, phases", CASES, ids=[c[0] for c in CASES])
def test_a_sub_agent_goes_through_the_phases_for_each_outcome(tmp_path, mode, script, code, phases):
    result = subprocess.run([sys.executable, "-c", DRIVER, mode, script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert (run["code"], run["phases"]) == (code, phases), result.stderr
    if mode in ("finished", "canceled"):
        offset, length, returncode, final_size = run["sent"][-1]
        assert final_size == offset + length or final_size == offset  # the end rides with the last output
        assert (returncode == 0) if mode == "finished" else (returncode == -15)
