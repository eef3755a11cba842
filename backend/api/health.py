"""GET /api/health."""
from flask import jsonify
from flask_openapi3 import APIBlueprint, Tag

from task_common.protocol import PROTOCOL_VERSION

bp = APIBlueprint("health", __name__, url_prefix="/api", abp_tags=[Tag(name="health")])

VERSION = "0.1.0"


@bp.get("/health")
def health():
    """Liveness probe: the server answers and knows its version."""
    return jsonify({"status": "ok", "version": VERSION, "protocol_version": PROTOCOL_VERSION})
