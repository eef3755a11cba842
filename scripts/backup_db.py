"""Consistent copy of the SQLite database while the server runs (SQLite's online backup API).

    python scripts/backup_db.py [--data-dir data] [--out data/backups/task_system-<time>.db]
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path


def backup(db_path: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)  # copies a consistent snapshot, even while the server writes
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    if ok != "ok":
        raise RuntimeError(f"backup failed its integrity check: {ok}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="backup_db.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    db_path = Path(args.data_dir) / "database" / "task_system.db"
    if not db_path.is_file():
        parser.error(f"no database at {db_path}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else Path(args.data_dir) / "backups" / f"task_system-{stamp}.db"
    print(backup(db_path, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
