"""The agent protocol's HTTP routes: each validates one protocol message and calls one service."""
from __future__ import annotations

from flask import jsonify, request
from flask_openapi3 import APIBlueprint, RawModel, Tag

from backend.api.errors import error_response
from backend.api.responses import answers
from backend.services import agents as agent_service
from backend.services import heartbeats, sub_heartbeats
from backend.services import sub_output as sub_output_service
from task_common import protocol as p

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


@bp.post(p.SUB_HEARTBEAT_PATH, responses=answers({200: p.SubHeartbeatReply}, 404, 409))
def sub_heartbeat(body: p.SubHeartbeat):
    return jsonify(sub_heartbeats.handle_sub_heartbeat(body).to_dict())


class OutputBody(RawModel):
    """The upload's body in the OpenAPI document: raw bytes, read by the view itself."""

    mimetypes = [p.OUTPUT_CONTENT_TYPE]


@bp.post(p.SUB_OUTPUT_PATH, responses=answers({200: p.OutputUploadReply}, 404, 409, 413, 415))
def sub_output(query: p.OutputUpload, raw: OutputBody):
    """Bulk task output as the raw body (no base64, no JSON), stored from byte `offset` of the task's log."""
    if request.mimetype != p.OUTPUT_CONTENT_TYPE:
        return error_response(415, "unsupported_media_type", f"Send the output as {p.OUTPUT_CONTENT_TYPE}.")
    body = request.get_data(cache=False)  # refused with 413 past MAX_REQUEST_BYTES before it is read
    return jsonify(sub_output_service.store_output(query, body).to_dict())
