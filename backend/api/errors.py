"""The only error handlers: every error leaves as {"error": {"code", "message"}} JSON, never HTML."""
from __future__ import annotations

import re

import structlog
from flask import Flask, Response, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from backend.api.responses import error_json
from backend.services.errors import ServiceError, storage_full

log = structlog.get_logger()


def error_response(status: int, code: str, message: str, details=None) -> Response:
    response = jsonify(error_json(code, message, details))
    response.status_code = status
    return response


def validation_error_response(exc: ValidationError) -> Response:
    """flask-openapi3's callback: pydantic errors become a 400 with per-field details."""
    errors = exc.errors()
    if errors and not errors[0]["loc"] and errors[0]["type"] in ("model_type", "dict_type", "json_invalid"):
        # no body, a body that is not JSON, or JSON that is not an object
        return error_response(400, "invalid_input", "The request body must be a JSON object.")
    details = [{"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in errors]
    first = details[0] if details else {"field": "", "message": "invalid input"}
    where = f"{first['field']}: " if first["field"] else ""
    return error_response(400, "invalid_input", f"Invalid input: {where}{first['message']}.", details)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def handle_service_error(exc: ServiceError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        if exc.response is not None and exc.response.mimetype == "application/json":
            return exc.response  # already in our shape (validation errors)
        code = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(RecursionError)
    def handle_recursion_error(exc: RecursionError):
        return error_response(400, "invalid_input", "The request body is nested too deeply.")

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        full = storage_full(exc)  # an OSError (ENOSPC) or the database's own "disk is full": 507
        if full is not None:
            log.error("server_disk_full", error=str(exc))
            return handle_service_error(full)
        log.exception("unhandled_error")
        return error_response(500, "internal_error", "The server hit an unexpected error; see the system log.")
