"""Write the server's OpenAPI document (what /api/openapi.json serves) as JSON with sorted keys.

Usage: python scripts/dump_openapi.py OUT.json   (`make api-types` turns it into frontend/src/api-schema.d.ts)
The app is built in-process on a throw-away data dir: no server, no background jobs, same output every run.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.extensions import db  # noqa: E402 (after the path: run as a script from anywhere)
from backend.factory import create_app  # noqa: E402


def openapi_document() -> dict:
    with tempfile.TemporaryDirectory(prefix="openapi-") as data_dir:
        # its own SQLite database even when TASK_SYSTEM_DATABASE_URL names a real one
        app = create_app({"TESTING": True, "DATA_DIR": data_dir, "RUN_BACKGROUND_JOBS": False,
                          "DATABASE_URL": f"sqlite:///{data_dir}/openapi.db"})
        document = app.api_doc
        with app.app_context():
            db.engine.dispose()  # let go of the database before its folder is removed
        return document


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/dump_openapi.py OUT.json", file=sys.stderr)
        return 2
    text = json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    Path(argv[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(argv[0]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
