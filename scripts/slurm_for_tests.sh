#!/usr/bin/env bash
# The single-node Slurm the Slurm executor's tests use (tests/test_slurm_executor.py), started once:
#   bash scripts/slurm_for_tests.sh [BASE]      (default /tmp/task-system-slurm; as root)
# A Slurm already up under BASE is reused; otherwise what is left there is stopped and a fresh one
# started (scripts/slurm/slurm_up.sh, a copy of ../shared/tools/slurm: installs Debian's slurm-wlm
# with apt when missing). The last line printed is `export SLURM_CONF=...`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BASE="${1:-/tmp/task-system-slurm}"
CONF="$BASE/etc/slurm.conf"
if [[ -s "$CONF" ]] && command -v sinfo >/dev/null \
    && SLURM_CONF="$CONF" sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
  echo "export SLURM_CONF=$CONF"
  exit 0
fi
bash "$HERE/slurm/slurm_down.sh" --base "$BASE" >/dev/null 2>&1 || true
bash "$HERE/slurm/slurm_up.sh" --base "$BASE" --gpus 2
