"""GET /api/health."""
from flask import jsonify
from flask_openapi3 import APIBlueprint, Tag

from backend.api.responses import HealthOut, answers, to_json
from backend.services import identity as identity_service
from task_common.protocol import PROTOCOL_VERSION

bp = APIBlueprint("health", __name__, url_prefix="/api", abp_tags=[Tag(name="health")])

VERSION = "0.1.0"


@bp.get("/health", responses=answers({200: HealthOut}))
def health():
    """Liveness probe: the server answers, knows its version and which database it serves (server_id)."""
    return jsonify(to_json(HealthOut, {"status": "ok", "version": VERSION, "protocol_version": PROTOCOL_VERSION,
                                       "server_id": identity_service.get_server_id()}))
