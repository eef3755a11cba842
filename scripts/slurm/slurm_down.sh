#!/usr/bin/env bash
# Copied from ../shared/tools/slurm (used by scripts/slurm_for_tests.sh).
# Stop the daemons that slurm_up.sh started, strictly by their recorded PIDs.   bash slurm_down.sh [--base DIR]
BASE=/tmp/slurm-local; [[ "${1:-}" == --base ]] && BASE="$2"
for name in slurmd slurmctld munged; do
  f="$BASE/pids/$name.pid"; [[ -s "$f" ]] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$f"
done
