"""Serves the built web UI (frontend/dist) at / with history-mode fallback to index.html."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, send_from_directory
from werkzeug.routing import PathConverter

DIST_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"


class UiPathConverter(PathConverter):
    """Any path outside /api, so an unknown /api route answers 404 for every method (not 405)."""

    regex = r"(?!api(?:/|$))[^/].*?"


bp = Blueprint("web", __name__)
bp.record_once(lambda state: state.app.url_map.converters.setdefault("ui_path", UiPathConverter))


@bp.get("/")
@bp.get("/<ui_path:path>")
def spa(path: str = ""):
    dist = Path(current_app.config.get("FRONTEND_DIST") or DIST_DIR)
    if path and (dist / path).is_file():
        return send_from_directory(dist, path)
    if not (dist / "index.html").is_file():
        return ("The web UI is not built yet: run `cd frontend && npm ci && npm run build` "
                "(the README's run command does it).", 503, {"Content-Type": "text/plain; charset=utf-8"})
    return send_from_directory(dist, "index.html")
