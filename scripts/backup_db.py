"""Consistent copy of the SQLite database while the server runs (SQLite's online backup API); for a
PostgreSQL database (--database-url or TASK_SYSTEM_DATABASE_URL), the pg_dump command that backs it up.

    python scripts/backup_db.py [--data-dir data] [--database-url URL] [--out data/backups/task_system-<time>.db]
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url  # noqa: E402

from backend.services.database import backup_command, is_sqlite  # noqa: E402
from backend.services.schema import copy_sqlite  # noqa: E402


def backup(db_path: Path, out: Path) -> Path:
    verdict = copy_sqlite(db_path, out)
    if verdict != "ok":
        raise RuntimeError(f"backup failed its integrity check: {verdict}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="backup_db.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--database-url", default=os.environ.get("TASK_SYSTEM_DATABASE_URL") or None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.database_url and not is_sqlite(args.database_url):
        print("PostgreSQL: task_system copies only SQLite files; back up with pg_dump (the password from "
              f"PGPASSWORD or ~/.pgpass; restore with pg_restore):\n  {backup_command(args.database_url)}")
        return 0
    db_path = Path(make_url(args.database_url).database) if args.database_url else \
        Path(args.data_dir) / "database" / "task_system.db"
    if not db_path.is_file():
        parser.error(f"no database at {db_path}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else Path(args.data_dir) / "backups" / f"task_system-{stamp}.db"
    print(backup(db_path, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
