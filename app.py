"""Start the task_system server: REST API, WebSocket and the web UI, in one process.

    python app.py [--host H] [--port P] [--data-dir DIR] [--token TOKEN] [--database-url URL] [--notify URL ...]

Every setting is checked before the server starts (config.py): a bad one stops it with one line
naming the flag or TASK_SYSTEM_ variable, exit code 2. So does a database that cannot be brought to this
release's schema (backend/services/schema.py upgrades it, after a backup, before gunicorn starts).

Runs gunicorn with one gevent worker: one process, one thread, a greenlet per connection, so
in-process state (the write lock, the change signals) is shared by every request. Agents keep a
connection open each and beat every 1-2 s; with gthread, handing each request between its event
loop and a pool of threads (and the GIL between those threads) cost more CPU than the requests
themselves (~50 context switches a request; bench: fleet). The gevent worker patches threading,
so the locks, conditions and the liveness thread here become cooperative.
"""
from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import sys
from pathlib import Path

from config import DEFAULTS, SettingError, load_config, unknown_variables


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line, like every other bad setting (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str]) -> dict[str, str | list[str]]:
    """The flags given, as setting overrides ({"PORT": "8080"}); config.py checks their values. A flag
    overrides its TASK_SYSTEM_<NAME> variable and is named after it: DATA_DIR is --data-dir."""
    parser = ArgumentParser(prog="app.py", description="Run the task_system server.")
    parser.add_argument("--host", dest="HOST", help=f"address to listen on (default {DEFAULTS['HOST']})")
    parser.add_argument("--port", dest="PORT", help=f"port (default {DEFAULTS['PORT']})")
    parser.add_argument("--data-dir", dest="DATA_DIR", metavar="DIR",
                        help=f"database and logs (default {DEFAULTS['DATA_DIR']}/)")
    parser.add_argument("--token", dest="TOKEN", help="require this access token (or set TASK_SYSTEM_TOKEN)")
    parser.add_argument("--database-url", dest="DATABASE_URL", metavar="URL",
                        help="database (default sqlite:///<data-dir>/database/task_system.db; "
                             "or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB)")
    parser.add_argument("--notify", dest="NOTIFY_URLS", metavar="URL", action="append",
                        help="tell this URL when any task finishes (repeatable; or TASK_SYSTEM_NOTIFY_URLS, "
                             "comma-separated): http(s) gets a JSON POST, other schemes go through Apprise")
    return {key: value for key, value in vars(parser.parse_args(argv)).items() if value is not None}


FLAG_NAMES = {"NOTIFY_URLS": "--notify"}  # the settings whose flag is not named after them


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def data_dir_problem(data_dir: str) -> str | None:
    """Why the server could not keep its database and logs there, or None."""
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if os.access(data_dir, os.W_OK | os.X_OK) else "not writable"


def main(argv: list[str]) -> int:
    overrides = parse_args(argv)
    try:
        settings = load_config(overrides)
    except SettingError as exc:
        flag = FLAG_NAMES.get(exc.key) or "--" + exc.key.lower().replace("_", "-")
        return refuse(flag if exc.key in overrides else exc.source, exc.problem)
    misspelt = unknown_variables(os.environ)
    for name, suggestion in misspelt:
        hint = f"; did you mean {suggestion}?" if suggestion else " (ignored)"
        print(f"app.py: warning: {name} is not a setting{hint}", file=sys.stderr, flush=True)
    problem = data_dir_problem(settings["DATA_DIR"])
    if problem:
        from_env = "DATA_DIR" not in overrides and "TASK_SYSTEM_DATA_DIR" in os.environ
        source = "TASK_SYSTEM_DATA_DIR" if from_env else "--data-dir"
        return refuse(f"{source} {settings['DATA_DIR']}", problem)
    problem = database_problem(settings)
    if problem:
        return refuse("database", problem)
    serve(settings, overrides, misspelt)
    return 0


def database_problem(settings: dict) -> str | None:
    """Bring the schema to this release's before gunicorn starts (backend/services/schema.py), so that
    an unusable or newer database is one line here, not a worker traceback; why not, or None."""
    from backend.services import schema
    from task_common.logging import configure_logging

    configure_logging("server", Path(settings["DATA_DIR"]) / "logs" / "system", settings["LOG_LEVEL"])
    try:
        schema.upgrade_database(settings["DATABASE_URL"], settings["DATA_DIR"])
    except schema.SchemaError as exc:
        return str(exc)
    return None


def refuse(name: str, problem: str) -> int:
    print(f"app.py: error: {name}: {problem}", file=sys.stderr, flush=True)
    return 2


def _build_app(settings: dict, overrides: dict[str, str], misspelt: list[tuple[str, str | None]]):
    """In the gunicorn worker: the app, then what a person starting the server should see."""
    import structlog

    from backend.factory import create_app

    app = create_app(overrides)
    # Everything made while starting (modules, the app, SQLAlchemy's metadata) lives as long as
    # the process: out of the collector's way, so a full collection takes ~1 ms, not ~70 ms
    # in the middle of some heartbeat (bench: scale).
    gc.freeze()
    log = structlog.get_logger()
    log.info("server_started", host=settings["HOST"], port=settings["PORT"],
             data_dir=app.config["DATA_DIR"], system_log=app.config["SYSTEM_LOG_FILE"],
             auth=bool(app.config["TOKEN"]), pid=os.getpid())
    print(f"task_system server on http://{settings['HOST']}:{settings['PORT']}  "
          f"system log: {app.config['SYSTEM_LOG_FILE']}", file=sys.stderr, flush=True)
    if not app.config["TOKEN"] and not is_loopback(settings["HOST"]):
        log.warning("auth_disabled_on_public_address", host=settings["HOST"],
                    hint="this server runs bash for anyone who can reach it; set --token")
    for name, suggestion in misspelt:
        log.warning("setting_unknown", variable=name, suggestion=suggestion)
    return app


def serve(settings: dict, overrides: dict[str, str], misspelt: list[tuple[str, str | None]]) -> None:
    """Run gunicorn (one gevent worker) until it stops; the worker builds the app from the same overrides."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {
                "bind": f"{settings['HOST']}:{settings['PORT']}", "workers": 1,
                "worker_class": "gevent", "worker_connections": settings["SERVER_CONNECTIONS"],
                "timeout": 60, "graceful_timeout": 3,
                "keepalive": 75, "accesslog": None, "control_socket_disable": True,
                # 0 = gunicorn's own 1 MiB cap: a long but valid filter (script=, up to 10 000 chars)
                # must reach the app and its JSON errors, not gunicorn's HTML 414 at 4 KiB
                "limit_request_line": 0,
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return _build_app(settings, overrides, misspelt)

    Server().run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
