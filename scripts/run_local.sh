#!/usr/bin/env bash
# Start the server and one local main agent; Ctrl-C stops both (running tasks are left to finish
# by the agent's first signal; a second Ctrl-C kills them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
DATA_DIR=${DATA_DIR:-data}
NAME="$(hostname)-local"
URL="http://127.0.0.1:${PORT}"

"$PY" app.py --host "$HOST" --port "$PORT" --data-dir "$DATA_DIR" &
server_pid=$!
trap 'kill -TERM ${agent_pid:-} $server_pid 2>/dev/null; wait' INT TERM EXIT

ready=
for _ in $(seq 1 150); do
  if "$PY" - "$URL" <<'PYEOF' 2>/dev/null; then ready=1; break; fi
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/api/health", timeout=1)
except urllib.error.HTTPError as exc:
    sys.exit(exc.code != 401)  # a token is set: it answers, so it is up
except OSError:
    sys.exit(1)
PYEOF
  kill -0 $server_pid 2>/dev/null || { echo "server failed to start (see above)" >&2; exit 1; }
  sleep 0.2
done
[ -n "$ready" ] || { echo "server did not answer on $URL within 30 s" >&2; exit 1; }

"$PY" setup_master_agent.py --server "$URL" --name "$NAME" --state-dir "$DATA_DIR/agents/$NAME" ${AGENT_ARGS:-} &
agent_pid=$!
echo "task_system is up: open ${URL}/  (Ctrl-C to stop)"
wait $server_pid
