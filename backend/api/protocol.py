"""The agent protocol's HTTP routes: each validates one protocol message and calls one service."""
from __future__ import annotations

from flask import jsonify, request
from flask_openapi3 import APIBlueprint, RawModel, Tag

from backend.api.errors import error_response
from backend.api.responses import answers
from backend.services import agents as agent_service
from backend.services import heartbeats, sub_heartbeats
from task_common import protocol as p
from task_common import protocol_v1 as v1

bp = APIBlueprint("agent_protocol", __name__, abp_tags=[Tag(name="agent protocol")])


@bp.post(p.REGISTER_MAIN_PATH, responses=answers({200: p.RegisterMainReply}, 409))
def register_main(body: p.RegisterMain):
    return jsonify(agent_service.create_main_agent(body).to_dict())


@bp.post(p.MAIN_HEARTBEAT_PATH, responses=answers({200: p.MainHeartbeatReply}, 409))
def main_heartbeat(body: p.MainHeartbeat):
    """Main agent heartbeat; may be held open up to wait_s until a task is ready (long poll)."""
    return jsonify(heartbeats.handle_main_heartbeat(body).to_dict())


@bp.post(p.REGISTER_SUB_PATH, responses=answers({200: p.RegisterSubReply}, 404, 409))
def register_sub(body: p.RegisterSub):
    return jsonify(agent_service.create_sub_agent(body).to_dict())


class OutputBody(RawModel):
    """The body of a sub-agent's heartbeat in the OpenAPI document: raw output bytes, read by the view itself."""

    mimetypes = [p.OUTPUT_CONTENT_TYPE]


@bp.post(p.SUB_HEARTBEAT_PATH, responses=answers({200: p.SubHeartbeatReply}, 404, 409, 413, 415))
def sub_heartbeat(query: p.SubHeartbeat, raw: OutputBody):
    """A sub-agent's heartbeat: usage and the task's end in the query, new output as the raw body.

    The body (no base64, no JSON) is stored from byte `offset` of the task's log."""
    if request.mimetype != p.OUTPUT_CONTENT_TYPE:
        return _unsupported_media_type()
    body = request.get_data(cache=False)  # refused with 413 past MAX_REQUEST_BYTES before it is read
    return jsonify(sub_heartbeats.handle_sub_heartbeat(query, body).to_dict())


@bp.post(v1.SUB_HEARTBEAT_V1_PATH, responses=answers({200: p.SubHeartbeatReply}, 404, 409))
def sub_heartbeat_v1(body: v1.SubHeartbeatV1):
    """Protocol 1 (sub-agents of the previous release): usage, base64 output and the end as JSON."""
    return jsonify(sub_heartbeats.handle_v1_heartbeat(body).to_dict())


@bp.post(v1.SUB_OUTPUT_V1_PATH, responses=answers({200: p.SubHeartbeatReply}, 404, 409, 413, 415))
def sub_output_v1(query: v1.OutputUploadV1, raw: OutputBody):
    """Protocol 1 (sub-agents of the previous release): output from byte `offset` as the raw body."""
    if request.mimetype != p.OUTPUT_CONTENT_TYPE:
        return _unsupported_media_type()
    return jsonify(sub_heartbeats.handle_v1_upload(query, request.get_data(cache=False)).to_dict())


def _unsupported_media_type():
    return error_response(415, "unsupported_media_type", f"Send the output as {p.OUTPUT_CONTENT_TYPE}.")
