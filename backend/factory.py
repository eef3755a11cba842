"""create_app(): config, extensions, blueprints, error handlers, logging, background jobs."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import structlog
from flask import g, request
from flask_openapi3 import Info, OpenAPI

from backend import models  # noqa: F401 (every table on db.metadata)
from backend.api.errors import register_error_handlers, validation_error_response
from backend.api.responses import ErrorResponse
from backend.extensions import db, migrate, sock
from backend.services import database, notifications, schema
from task_common.logging import configure_logging
from config import load_config

log = structlog.get_logger()


def create_app(config: Optional[dict[str, Any]] = None) -> OpenAPI:
    settings = load_config(config)
    data_dir = Path(settings["DATA_DIR"]).resolve()
    settings["DATA_DIR"] = str(data_dir)
    for sub in ("database", "logs/tasks", "logs/system"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    settings.setdefault("SQLALCHEMY_DATABASE_URI", settings["DATABASE_URL"])
    # Requests past the pool size wait for a connection; a unit of work takes its connection before the
    # write lock (services/unit_of_work.py), so the lock holder never waits for one.
    settings.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                        database.engine_options(settings["SQLALCHEMY_DATABASE_URI"], settings["DB_POOL_SIZE"]))
    settings["MAX_CONTENT_LENGTH"] = settings["MAX_REQUEST_BYTES"]
    settings["SYSTEM_LOG_FILE"] = str(configure_logging("server", data_dir / "logs" / "system", settings["LOG_LEVEL"]))

    app = OpenAPI(__name__, info=Info(title="task_system API", version="0.1.0"),
                  doc_prefix="/api", doc_url="/openapi.json",
                  # declared even when no token is set: an absent scheme is emitted as null, invalid OpenAPI
                  security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
                  validation_error_status=400, validation_error_callback=validation_error_response,
                  validation_error_model=ErrorResponse)  # every route declares its 400: the document's only error shape
    schema.upgrade_database(settings["SQLALCHEMY_DATABASE_URI"], data_dir)  # app.py did already: a read
    app.config.update(settings)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(schema.MIGRATIONS_DIR))  # `flask db ...` (backend/migrations/README.md)
    with app.app_context():
        database.configure_engine(db.engine)  # SQLite's pragmas; psycopg's waits under gevent
    _register_routes(app)
    register_error_handlers(app)
    _register_request_context(app)
    if settings["RUN_BACKGROUND_JOBS"]:
        _start_liveness_thread(app)
        notifications.start(app)
    return app


def _register_routes(app: OpenAPI) -> None:
    from backend import web
    from backend.api import agents, health, log_ws, protocol, tasks, templates  # noqa: F401 (log_ws: sock routes)
    from backend.api.auth import register_auth

    register_auth(app)
    for module in (tasks, templates, agents, health, protocol):
        app.register_api(module.bp)
    sock.init_app(app)  # after importing log_ws: flask-sock registers its routes on a blueprint
    app.register_blueprint(web.bp)


def _register_request_context(app: OpenAPI) -> None:
    @app.before_request
    def bind_request():
        structlog.contextvars.clear_contextvars()
        g.request_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(request_id=g.request_id, method=request.method, path=request.path)

    @app.teardown_request
    def unbind_request(_exc):
        structlog.contextvars.clear_contextvars()


def _start_liveness_thread(app: OpenAPI) -> None:
    """check_agents_status() every LIVENESS_CHECK_INTERVAL_S, for the life of the process."""
    from backend.services import liveness

    liveness.mark_server_started()
    stop = threading.Event()

    def loop():
        interval = app.config["LIVENESS_CHECK_INTERVAL_S"]
        ticked = time.monotonic()
        while not stop.wait(interval):
            liveness.check_for_server_stall(time.monotonic() - ticked - interval)
            with app.app_context():
                try:
                    liveness.check_agents_status()
                except Exception:
                    log.exception("liveness_check_failed")
                finally:
                    db.session.remove()
            ticked = time.monotonic()

    threading.Thread(target=loop, name="liveness", daemon=True).start()
    app.extensions["liveness_stop"] = stop
