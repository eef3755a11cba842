"""A throwaway PostgreSQL 15 cluster for the test session, when TASK_SYSTEM_TEST_DATABASE=postgresql
(`make test-postgres`): initdb in a temp dir, a Unix socket only (no TCP port to collide on), trust
auth, no fsync. Each data dir a test gives a server gets its own database (CREATE DATABASE ... TEMPLATE
template0, ~50 ms), so a fresh data dir is a fresh database and a restarted server finds its own again.

The hook is config.default_database_url (the URL a server uses when none is set): replaced here for
in-process apps (create_app), and passed as TASK_SYSTEM_DATABASE_URL to server subprocesses
(tests/conftest.py ServerProcess). initdb and postgres refuse to run as root: as root the cluster runs
as the `postgres` user (or `nobody`), and root reaches its socket anyway.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

ENV = "TASK_SYSTEM_TEST_DATABASE"
BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")
PORT = 5432  # only names the socket file, in a directory of its own
# Not UTC on purpose: the server must set its sessions' zone itself (services/database.py).
SERVER_OPTIONS = ("-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=300 -c timezone=America/New_York")

current: Optional["Cluster"] = None  # the session's cluster, while one runs


def enabled() -> bool:
    return os.environ.get(ENV, "sqlite") == "postgresql"


def _binary(name: str) -> str:
    for directory in BIN_DIRS:
        if os.access(os.path.join(directory, name), os.X_OK):
            return os.path.join(directory, name)
    raise RuntimeError(f"{ENV}=postgresql needs PostgreSQL 15's {name} (Debian: apt-get install postgresql-15)")


def _run_as() -> Optional[str]:
    """The user to run the cluster as when this is root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    raise RuntimeError("running as root, with neither a postgres nor a nobody user to run PostgreSQL as")


class Cluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="task-system-pg-"))
        self.user = _run_as()
        self._databases: dict[Path, str] = {}  # data dir -> URL
        self._made = 0

    def start(self) -> "Cluster":
        if self.user:
            shutil.chown(self.dir, user=self.user)
        self._run(_binary("initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        self._run(_binary("pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w",
                  "-o", f"-k {self.dir} -p {PORT} {SERVER_OPTIONS}", "start")
        return self

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.dir}&port={PORT}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host=str(self.dir), port=PORT, user="postgres", dbname=database, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        self._made += 1
        name = f"ts_{self._made}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def database_for(self, data_dir: str | Path) -> str:
        """The URL of the database that belongs to this data dir, made on first use."""
        key = Path(data_dir).resolve()
        if key not in self._databases:
            self._databases[key] = self.create_database()
        return self._databases[key]


def server_env(data_dir: Path) -> dict[str, str]:
    """What a server subprocess on this data dir needs in its environment: its database, if PostgreSQL."""
    return {"TASK_SYSTEM_DATABASE_URL": current.database_for(data_dir)} if current else {}


def session():
    """The session fixture's body: a running cluster that every default database URL points at."""
    global current
    if not enabled():
        yield None
        return
    import config

    cluster = Cluster().start()
    original, current = config.default_database_url, cluster
    config.default_database_url = cluster.database_for
    try:
        yield cluster
    finally:
        config.default_database_url, current = original, None
        cluster.stop()
