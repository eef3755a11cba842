"""The agent protocol's HTTP routes: each validates one protocol message and calls one service."""
from __future__ import annotations

from flask import jsonify
from flask_openapi3 import APIBlueprint, Tag

from backend.services import agents as agent_service
from backend.services import heartbeats
from backend.utils import protocol as p

bp = APIBlueprint("agent_protocol", __name__, abp_tags=[Tag(name="agent protocol")])


@bp.post(p.REGISTER_MAIN_PATH)
def register_main(body: p.RegisterMain):
    return jsonify(agent_service.create_main_agent(body).to_dict())


@bp.post(p.MAIN_HEARTBEAT_PATH)
def main_heartbeat(body: p.MainHeartbeat):
    """Main agent heartbeat; may be held open up to wait_s until a task is ready (long poll)."""
    return jsonify(heartbeats.handle_main_heartbeat(body).to_dict())


@bp.post(p.REGISTER_SUB_PATH)
def register_sub(body: p.RegisterSub):
    return jsonify(agent_service.create_sub_agent(body).to_dict())


@bp.post(p.SUB_HEARTBEAT_PATH)
def sub_heartbeat(body: p.SubHeartbeat):
    return jsonify(heartbeats.handle_sub_heartbeat(body).to_dict())
