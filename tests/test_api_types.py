"""The web UI's API types (frontend/src/api-schema.d.ts) are generated from the server's OpenAPI document
and committed; this fails while they are stale. `make test` installs frontend/node_modules first."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
COMMITTED = FRONTEND / "src" / "api-schema.d.ts"
REGENERATE = "make api-types"


def generate(out_dir: Path) -> Path:
    """Dump the document and run the frontend's own `gen:api` script on it (never installs anything)."""
    document, types = out_dir / "openapi.json", out_dir / "api-schema.d.ts"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "dump_openapi.py"), str(document)],
                   check=True, capture_output=True, timeout=120)
    assert (FRONTEND / "node_modules" / ".bin" / "openapi-typescript").exists(), \
        "openapi-typescript is not installed: run `cd frontend && npm ci` (make test does)"
    env = {**os.environ, "API_DOC": str(document), "API_TYPES": str(types)}
    result = subprocess.run(["npm", "run", "--silent", "gen:api"], cwd=FRONTEND, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return types


def test_generated_api_types_are_up_to_date(tmp_path):
    fresh = generate(tmp_path).read_text(encoding="utf-8")
    assert COMMITTED.exists(), f"{COMMITTED.relative_to(ROOT)} is missing: run `{REGENERATE}` and commit it"
    assert fresh == COMMITTED.read_text(encoding="utf-8"), (
        f"{COMMITTED.relative_to(ROOT)} is stale: the API's routes or response models changed. "
        f"Run `{REGENERATE}` and commit the result.")
