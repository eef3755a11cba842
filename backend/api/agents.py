"""Agent routes for people: the agent tree, single agents, and drain / resume / forget a main agent."""
from __future__ import annotations

from typing import Literal, Optional

from flask import jsonify
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from backend.api.responses import AgentOut, AnyAgentOut, MainAgentList, MainAgentOut, answers, to_json
from backend.api.schemas import AgentPath
from backend.models import Agent
from backend.services import agents as agent_service
from backend.services import gpu_view

bp = APIBlueprint("agents", __name__, url_prefix="/api", abp_tags=[Tag(name="agents")])


class AgentListQuery(BaseModel):
    sub_agents: Literal["recent", "all"] = "recent"


@bp.get("/agents", responses=answers({200: MainAgentList}))
def list_agents(query: AgentListQuery):
    """Every main agent with its sub-agents (online and recently finished ones, or all)."""
    tree = agent_service.get_all_agents(all_sub_agents=query.sub_agents == "all")
    held = gpu_view.reservations([main.id for main, _ in tree])
    return jsonify(to_json(MainAgentList, [_tree_json(main, subs, held) for main, subs in tree]))


@bp.get("/agents/<agent_id>", responses=answers({200: AnyAgentOut}, 404))
def get_agent(path: AgentPath):
    return jsonify(_agent_json(*agent_service.get_agent_tree(path.agent_id)))


@bp.post("/agents/<agent_id>/drain", responses=answers({200: MainAgentOut}, 404, 409))
def drain_agent(path: AgentPath):
    """The main agent takes no new tasks; the ones it runs finish. Draining twice is fine; a sub-agent: 409."""
    return jsonify(_agent_json(*agent_service.drain_agent(path.agent_id)))


@bp.post("/agents/<agent_id>/resume", responses=answers({200: MainAgentOut}, 404, 409))
def resume_agent(path: AgentPath):
    """Undo drain: the main agent takes new tasks again."""
    return jsonify(_agent_json(*agent_service.resume_agent(path.agent_id)))


@bp.delete("/agents/<agent_id>", responses=answers({204: None}, 404, 409))
def forget_agent(path: AgentPath):
    """Forget an offline main agent and its sub-agents (their tasks keep the agent ids). Online, or
    with tasks still running: 409. If the box comes back with that id, it registers as new."""
    agent_service.forget_agent(path.agent_id)
    return "", 204


def _agent_json(agent: Agent, subs: Optional[list[Agent]]) -> dict:
    """A sub-agent's JSON (subs None), or a main agent's carrying all its sub-agents."""
    if subs is None:
        return to_json(AgentOut, agent.to_dict())
    return to_json(MainAgentOut, _tree_json(agent, subs, gpu_view.reservations([agent.id])))


def _tree_json(main: Agent, subs: list[Agent], held: dict[str, list[dict]]) -> dict:
    return {**main.to_dict(), "sub_agents": [s.to_dict() for s in subs],
            "gpu_reservations": held.get(main.id, []), "gpu_history": gpu_view.history(main.id)}
