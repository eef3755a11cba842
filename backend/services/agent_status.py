"""An agent's status (online / offline) and whether a main agent drains: the only module that writes
Agent.status and Agent.draining.

Status follows what the server hears: a registration or a beat puts an agent online; silence past
AGENT_OFFLINE_AFTER_S (services/liveness.py) or its task's end (a sub-agent) puts it offline.
Draining is what a person asked (POST /api/agents/<id>/drain, /resume) and outlives restarts and
silences. A change moves one of the two, never both; a new agent starts online and not draining; a
sub-agent never drains. Every change goes through transition(), which checks ALLOWED and logs
agent_status_changed (old, new, reason): at info level for a main agent, at debug level for a sub-agent,
whose status follows its task (sub_agent_registered and task_status_changed are the info-level lines;
two more per task cost ~2 % of the server's CPU per task, bench: throughput).

beat_statement() is the one change made for many agents at once: the sub-agent beats that
services/beat_buffer.py writes in batches put each sub-agent online, unlogged (a sub-agent the
liveness check found silent, beating again).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import structlog
from sqlalchemy import Update, bindparam, literal_column, or_, update

from backend.models import Agent, AgentStatus, AgentType
from backend.services.errors import Conflict

log = structlog.get_logger()


class AgentState(NamedTuple):
    status: AgentStatus
    draining: bool

    def __str__(self) -> str:
        return f"{self.status.value}{', draining' if self.draining else ''}"


ON, OFF = AgentStatus.ONLINE, AgentStatus.OFFLINE
ALLOWED: dict[Optional[AgentState], set[AgentState]] = {
    None: {AgentState(ON, False)},  # a new agent: it just registered
    AgentState(ON, False): {AgentState(OFF, False), AgentState(ON, True)},
    AgentState(ON, True): {AgentState(OFF, True), AgentState(ON, False)},
    AgentState(OFF, False): {AgentState(ON, False), AgentState(OFF, True)},
    AgentState(OFF, True): {AgentState(ON, True), AgentState(OFF, False)},
}


def state_of(agent: Agent) -> Optional[AgentState]:
    """None for an agent not stored yet (its columns get their defaults on insert)."""
    if agent.status is None:
        return None
    return AgentState(AgentStatus(agent.status), bool(agent.draining))


def transition(agent: Agent, new: AgentState, reason: str, **log_fields) -> bool:
    """The only place an agent's status or draining changes: checks ALLOWED, logs; False when `new`
    is already its state (nothing to do)."""
    old = state_of(agent)
    if new == old:
        return False
    if new not in ALLOWED[old] or (new.draining and agent.type != AgentType.MAIN.value):
        raise Conflict("invalid_agent_transition", f"Agent {agent.id} cannot go from {old} to {new}.")
    agent.status, agent.draining = new.status.value, new.draining
    emit = log.info if agent.type == AgentType.MAIN.value else log.debug
    emit("agent_status_changed", agent_id=agent.id, agent_type=agent.type, old=str(old) if old else None,
         new=str(new), reason=reason, **log_fields)
    return True


def set_online(agent: Agent, reason: str) -> bool:
    return transition(agent, AgentState(ON, bool(agent.draining)), reason)


def set_offline(agent: Agent, reason: str, **log_fields) -> bool:
    return transition(agent, AgentState(OFF, bool(agent.draining)), reason, **log_fields)


def set_draining(agent: Agent, draining: bool, reason: str) -> bool:
    """Drain or resume a main agent, keeping its status; False when it already was so."""
    return transition(agent, AgentState(AgentStatus(agent.status), draining), reason)


_A = Agent.__table__


def beat_statement(**values) -> Update:
    """set_online() for many sub-agent beats at once (services/beat_buffer.py), with the bind parameters
    beat_sub_agent_id and beat_time, also writing last_heartbeat_time and `values` (column -> bind
    parameter): only over an older beat, so a newer write (the end, by its own beat) wins. Draining is
    left alone: online is allowed from any state (ALLOWED). The status is inline (no bind parameter),
    so that the statement also runs compiled on a bare cursor (services/raw_sql.py)."""
    return (update(_A)
            .where(_A.c.id == bindparam("beat_sub_agent_id"),
                   or_(_A.c.last_heartbeat_time.is_(None), _A.c.last_heartbeat_time < bindparam("beat_time")))
            .values(status=literal_column(f"'{ON.value}'"), last_heartbeat_time=bindparam("beat_time"), **values))
