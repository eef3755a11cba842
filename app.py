"""Start the task_system server: REST API, WebSocket and the web UI, in one process.

    python app.py [--host H] [--port P] [--data-dir DIR] [--token TOKEN]

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

from config import Config, load_config


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description="Run the task_system server.")
    parser.add_argument("--host", default=None, help=f"address to listen on (default {Config.HOST})")
    parser.add_argument("--port", type=int, default=None, help=f"port (default {Config.PORT})")
    parser.add_argument("--data-dir", default=None, help=f"database and logs (default {Config.DATA_DIR}/)")
    parser.add_argument("--token", default=None, help="require this access token (or set TASK_SYSTEM_TOKEN)")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    return args


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
    args = parse_args(argv)
    overrides = {k: v for k, v in {"HOST": args.host, "PORT": args.port, "DATA_DIR": args.data_dir,
                                   "TOKEN": args.token}.items() if v is not None}
    settings = load_config(overrides)
    problem = data_dir_problem(settings["DATA_DIR"])
    if problem:
        print(f"app.py: error: --data-dir {settings['DATA_DIR']}: {problem}", file=sys.stderr)
        return 2

    from gunicorn.app.base import BaseApplication

    import structlog

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
            return app

    Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
