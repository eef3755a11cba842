#!/usr/bin/env bash
# Start the server and one local main agent; Ctrl-C stops both (running tasks are left to finish
# by the agent's first signal; a second Ctrl-C kills them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
URL="http://127.0.0.1:${PORT}"

"$PY" app.py --host "$HOST" --port "$PORT" &
server_pid=$!
trap 'kill -TERM ${agent_pid:-} $server_pid 2>/dev/null; wait' INT TERM EXIT

for _ in $(seq 1 100); do
  if "$PY" - "$URL" <<'PYEOF' 2>/dev/null; then break; fi
import sys, requests
sys.exit(0 if requests.get(sys.argv[1] + "/api/health", timeout=1).status_code in (200, 401) else 1)
PYEOF
  kill -0 $server_pid 2>/dev/null || { echo "server failed to start" >&2; exit 1; }
  sleep 0.2
done

"$PY" setup_master_agent.py --server "$URL" --name "$(hostname)-local" ${AGENT_ARGS:-} &
agent_pid=$!
echo "task_system is up: open ${URL}/  (Ctrl-C to stop)"
wait $server_pid
