"""An agent's status and draining (services/agent_status.py): the ALLOWED table in full for main and
sub-agents, what is logged, and the batched beat statement. In-process app, services called directly."""
from __future__ import annotations

import itertools
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import bindparam

from backend.extensions import db
from backend.models import Agent, AgentStatus, AgentType
from backend.services import agent_status
from backend.services.agent_status import AgentState
from backend.services.errors import Conflict
from backend.services.unit_of_work import unit_of_work
from backend.utils.time import as_utc, utcnow

ON, OFF = AgentStatus.ONLINE, AgentStatus.OFFLINE
STATES = [AgentState(status, draining) for status in (ON, OFF) for draining in (False, True)]
# One of the two changes at a time; a new agent starts online and not draining.
EXPECTED_ALLOWED = {
    None: {AgentState(ON, False)},
    AgentState(ON, False): {AgentState(OFF, False), AgentState(ON, True)},
    AgentState(ON, True): {AgentState(OFF, True), AgentState(ON, False)},
    AgentState(OFF, False): {AgentState(ON, False), AgentState(OFF, True)},
    AgentState(OFF, True): {AgentState(ON, True), AgentState(OFF, False)},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from backend.factory import create_app

    return create_app({"TESTING": True, "DATA_DIR": str(tmp_path_factory.mktemp("agent_status")),
                       "RUN_BACKGROUND_JOBS": False})


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


_ids = itertools.count()


def agent_in(state: AgentState, agent_type: AgentType = AgentType.MAIN) -> str:
    """An agent row in `state` (set-up only: columns written straight)."""
    agent_id = f"agent-{next(_ids)}"
    with unit_of_work():
        db.session.add(Agent(id=agent_id, name=agent_id, type=agent_type.value, status=state.status.value,
                             draining=state.draining, created_time=utcnow(), started_time=utcnow()))
    return agent_id


def fresh(agent_id: str) -> Agent:
    db.session.expire_all()
    return db.session.get(Agent, agent_id)


def test_allowed_table_changes_one_thing_at_a_time():
    assert agent_status.ALLOWED == EXPECTED_ALLOWED


@pytest.mark.parametrize("agent_type, old, new", [
    (agent_type, old, new) for agent_type, old, new in itertools.product(AgentType, STATES, STATES)
    if not (agent_type is AgentType.SUB and old.draining)], ids=str)  # a sub-agent is never draining
def test_transition_follows_allowed_table(ctx, monkeypatch, agent_type, old, new):
    logged = []
    record = lambda level: lambda event, **f: logged.append({"level": level, "event": event, **f})  # noqa: E731
    monkeypatch.setattr(agent_status, "log", SimpleNamespace(info=record("info"), debug=record("debug")))
    agent_id = agent_in(old, agent_type)
    legal = new in EXPECTED_ALLOWED[old] and not (agent_type is AgentType.SUB and new.draining)
    if new == old:
        with unit_of_work():
            assert agent_status.transition(db.session.get(Agent, agent_id), new, "again") is False
        assert logged == []
    elif legal:
        with unit_of_work():
            assert agent_status.transition(db.session.get(Agent, agent_id), new, "because") is True
        level = "info" if agent_type is AgentType.MAIN else "debug"  # a sub-agent's follows its task
        assert [(e["level"], e["event"], e["old"], e["new"], e["reason"]) for e in logged] == \
            [(level, "agent_status_changed", str(old), str(new), "because")]
    else:
        with pytest.raises(Conflict) as err, unit_of_work():
            agent_status.transition(db.session.get(Agent, agent_id), new, "because")
        assert err.value.code == "invalid_agent_transition" and err.value.status == 409
        assert logged == []
    assert agent_status.state_of(fresh(agent_id)) == (new if legal or new == old else old)


def test_a_new_agent_starts_online_and_not_draining(ctx):
    with unit_of_work():
        agent = Agent(id="brand-new", name="n", type=AgentType.MAIN.value, created_time=utcnow(), started_time=utcnow())
        db.session.add(agent)
        assert agent_status.state_of(agent) is None
        assert agent_status.set_online(agent, "registered") is True
    assert agent_status.state_of(fresh("brand-new")) == AgentState(ON, False)


@pytest.mark.parametrize("state", STATES, ids=str)
def test_online_offline_keep_draining_and_draining_keeps_the_status(ctx, state):
    agent_id = agent_in(state)
    with unit_of_work():
        agent = db.session.get(Agent, agent_id)
        agent_status.set_offline(agent, "silent")
        assert agent_status.state_of(agent) == AgentState(OFF, state.draining)
        agent_status.set_online(agent, "heartbeat")
        assert agent_status.state_of(agent) == AgentState(ON, state.draining)
        agent_status.set_draining(agent, not state.draining, "asked")
    assert agent_status.state_of(fresh(agent_id)) == AgentState(ON, not state.draining)


@pytest.mark.parametrize("state", [s for s in STATES if not s.draining], ids=str)
def test_a_batched_beat_puts_a_sub_agent_online_only_over_an_older_beat(ctx, state):
    agent_id, now = agent_in(state, AgentType.SUB), utcnow()
    statement = agent_status.beat_statement(cpu_usage=bindparam("beat_cpu_usage"))
    with unit_of_work():
        db.session.execute(statement, [{"beat_sub_agent_id": agent_id, "beat_time": now, "beat_cpu_usage": 42.0}])
    agent = fresh(agent_id)
    assert (agent.status, as_utc(agent.last_heartbeat_time), agent.cpu_usage) == (ON.value, now, 42.0)
    with unit_of_work():
        db.session.get(Agent, agent_id).status = OFF.value  # set-up: its end, written after that beat
        db.session.execute(statement, [{"beat_sub_agent_id": agent_id, "beat_time": now - timedelta(seconds=1),
                                        "beat_cpu_usage": 1.0}])
    agent = fresh(agent_id)
    assert (agent.status, agent.cpu_usage) == (OFF.value, 42.0)
