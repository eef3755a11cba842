#!/usr/bin/env bash
# What `make` needs before it builds anything, each missing piece said in one line:
#   scripts/preflight.sh python       the server or an agent (Python >= 3.11 with venv)
#   scripts/preflight.sh python node  plus the web UI (node >= 20.19 and npm: vite 8 refuses older)
set -u
PY=${PY:-python3}
missing=0
say() { echo "preflight: $*" >&2; missing=1; }

check_python() {
  local version
  version=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) \
    || { say "$PY does not run here: install Python 3.11 or newer (or run make PY=/path/to/python3.11)"; return; }
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { say "Python $version is too old: 3.11 or newer is needed (make PY=/path/to/python3.11)"; return; }
  "$PY" -c 'import venv, ensurepip' 2>/dev/null \
    || say "Python $version has no venv/ensurepip module: install it (Debian/Ubuntu: apt install python3-venv)"
}

check_node() {
  if ! command -v node >/dev/null 2>&1; then
    say "node not found: install Node.js 20.19 or newer (with npm) to build the web UI"; return
  fi
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
    || say "node $(node --version) is too old: the web UI's build (vite 8) needs Node.js 20.19 or newer"
  command -v npm >/dev/null 2>&1 || say "npm not found: install npm (it comes with Node.js) to build the web UI"
}

for need in "$@"; do
  case "$need" in
    python) check_python ;;
    node) check_node ;;
    *) echo "preflight: unknown check $need" >&2; exit 2 ;;
  esac
done
exit $missing
