#!/usr/bin/env bash
# CI: the README's first command, as a new user runs it. `make run` with a brand-new venv that only
# ever sees requirements.txt (no test or dev packages), on a fresh data dir and a free port; one task
# submitted with curl must complete with its exact output; then Ctrl-C (SIGINT to the whole process
# group, as a terminal sends it) must stop the server and the agent.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
venv="$work/venv"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

setsid make run VENV="$venv" PORT="$port" DATA_DIR="$work/data" >"$work/run.log" 2>&1 </dev/null &
group=$!
fail() {
  echo "fresh-install-check: FAILED: $*" >&2
  echo "--- make run output:" >&2; tail -n 40 "$work/run.log" >&2
  kill -KILL -- "-$group" 2>/dev/null || true
  exit 1
}
trap 'kill -KILL -- "-$group" 2>/dev/null || true; rm -rf "$work"' EXIT

wait_until() {  # wait_until SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$group" 2>/dev/null || fail "make run exited while waiting for $what"
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
    sleep 0.5
  done
}

wait_until 900 "the server to answer" curl -sf "$url/api/health"
"$venv/bin/python" -c 'import pytest' 2>/dev/null && fail "the venv has dev packages: the check proves nothing"
wait_until 60 "the local agent to come online" \
  sh -c "curl -sf '$url/api/agents' | grep -q '\"status\": *\"online\"'"
task=$(curl -sf "$url/api/tasks" -H 'content-type: application/json' \
  -d '{"name":"fresh-install","template_type":"custom","script_content":"echo hello from a fresh install"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') || fail "could not submit a task"
wait_until 60 "task $task to complete" sh -c "curl -sf '$url/api/tasks/$task' | grep -q '\"status\": *\"completed\"'"
log=$(curl -sf "$url/api/tasks/$task/log" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"], end="")')
[ "$log" = "hello from a fresh install" ] || fail "task $task's log is '$log'"

kill -INT -- "-$group"
deadline=$((SECONDS + 30))
while pgrep -g "$group" >/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "Ctrl-C left processes running: $(pgrep -g "$group" -a)"
  sleep 0.2
done
# a second `make run` must start at once: nothing reinstalled, the UI not rebuilt
again=$(make -n run VENV="$venv" PORT="$port" DATA_DIR="$work/data")
if grep -E 'pip install|npm ci|npm run build|-m venv' <<<"$again"; then fail "a second make run would redo the above"; fi
echo "fresh-install-check: ok (make run from a venv with only requirements.txt ran task $task; Ctrl-C stopped everything; a second make run rebuilds nothing)"
