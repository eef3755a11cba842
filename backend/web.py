"""Serves the built web UI (frontend/dist) at / with history-mode fallback to index.html."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

DIST_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"

bp = Blueprint("web", __name__)


@bp.get("/")
@bp.get("/<path:path>")
def spa(path: str = ""):
    if path.startswith("api/") or path == "api":
        abort(404)
    dist = Path(current_app.config.get("FRONTEND_DIST") or DIST_DIR)
    if path and (dist / path).is_file():
        return send_from_directory(dist, path)
    if not (dist / "index.html").is_file():
        return ("The web UI is not built yet: run `cd frontend && npm ci && npm run build` "
                "(the README's run command does it).", 503, {"Content-Type": "text/plain; charset=utf-8"})
    return send_from_directory(dist, "index.html")
