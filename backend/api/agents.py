"""Agent routes for people: the agent tree and single agents."""
from __future__ import annotations

from typing import Literal

from flask import jsonify
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from backend.api.schemas import AgentPath
from backend.models import AgentType
from backend.services import agents as agent_service

bp = APIBlueprint("agents", __name__, url_prefix="/api", abp_tags=[Tag(name="agents")])


class AgentListQuery(BaseModel):
    sub_agents: Literal["recent", "all"] = "recent"


@bp.get("/agents")
def list_agents(query: AgentListQuery):
    """Every main agent with its sub-agents (online and recently finished ones, or all)."""
    tree = agent_service.get_all_agents(all_sub_agents=query.sub_agents == "all")
    return jsonify([{**main.to_dict(), "sub_agents": [s.to_dict() for s in subs]} for main, subs in tree])


@bp.get("/agents/<agent_id>")
def get_agent(path: AgentPath):
    agent = agent_service.get_agent_by_id(path.agent_id)
    body = agent.to_dict()
    if agent.type == AgentType.MAIN.value:
        [(_, subs)] = agent_service.get_all_agents(all_sub_agents=True, main_agent_id=agent.id)
        body["sub_agents"] = [s.to_dict() for s in subs]
    return jsonify(body)
