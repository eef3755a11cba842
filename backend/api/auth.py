"""Optional shared token: when TOKEN is configured every /api call, WebSocket and agent presents it,
as `Authorization: Bearer <token>` or (for browser WebSockets, which cannot set headers) `?token=`."""
from __future__ import annotations

import hmac

from flask import Flask, current_app, request

from backend.api.errors import error_response


def register_auth(app: Flask) -> None:
    @app.before_request
    def require_token():
        token = current_app.config.get("TOKEN")
        if not token or not request.path.startswith("/api"):
            return None
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.args.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return error_response(401, "unauthorized", "A valid access token is required (Authorization: Bearer <token>).")
        return None
