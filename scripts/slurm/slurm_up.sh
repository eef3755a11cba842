#!/usr/bin/env bash
# Copied from ../shared/tools/slurm (used by scripts/slurm_for_tests.sh).
# Start a throw-away single-node Slurm (munged + slurmctld + slurmd) on this machine, loopback only.
#   bash slurm_up.sh [--base DIR] [--cpus N] [--gpus N]
# Needs Debian's slurm-wlm (apt-get install -y slurm-wlm; it pulls in munge). Runs as root.
# Prints `export SLURM_CONF=...`: sbatch/squeue/scancel need it. PIDs go to DIR/pids so that
# slurm_down.sh stops exactly these daemons. --gpus N declares N GPUs as a GRES without devices
# (jobs can ask --gres=gpu:K; Slurm sets no CUDA_VISIBLE_DEVICES for them, there being no device files).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BASE=/tmp/slurm-local; CPUS="$(nproc)"; GPUS=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) BASE="$2"; shift 2;; --cpus) CPUS="$2"; shift 2;; --gpus) GPUS="$2"; shift 2;;
    *) echo "usage: slurm_up.sh [--base DIR] [--cpus N] [--gpus N]" >&2; exit 2;;
  esac
done
command -v slurmctld >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm >/dev/null; }
HOST="$(hostname -s)"
export SLURM_CONF="$BASE/etc/slurm.conf"
mkdir -p "$BASE"/{etc,pids,log,slurmctld,slurmd}
for f in "$BASE"/pids/*.pid; do
  [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null && { echo "already running: $f; run slurm_down.sh first" >&2; exit 1; }
done
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  /usr/sbin/mungekey --create --force
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F >"$BASE/log/munged.out" 2>&1 </dev/null &
  echo $! >"$BASE/pids/munged.pid"
  for _ in $(seq 1 50); do [[ -S /run/munge/munge.socket.2 ]] && break; sleep 0.1; done
  munge -n | unmunge >/dev/null
fi
GRES=""; [[ "$GPUS" -gt 0 ]] && GRES="Gres=gpu:$GPUS"
sed -e "s|@HOST@|$HOST|g" -e "s|@BASE@|$BASE|g" -e "s|@CPUS@|$CPUS|g" -e "s|@GRES@|$GRES|g" "$HERE/slurm.conf.in" >"$SLURM_CONF"
: >"$BASE/etc/gres.conf"
if [[ "$GPUS" -gt 0 ]]; then   # stand-in device files: Slurm counts and hands out GPUs by file
  mkdir -p "$BASE/dev"
  for i in $(seq 0 $((GPUS - 1))); do touch "$BASE/dev/gpu$i"; done
  echo "AutoDetect=off" >"$BASE/etc/gres.conf"
  echo "Name=gpu File=$BASE/dev/gpu[0-$((GPUS - 1))]" >>"$BASE/etc/gres.conf"
fi
# The daemons run from /: a job step starts in slurmd's directory first, and a checkout deleted under a
# reused Slurm made every job print "Unable to get current working directory" into its output.
(cd / && exec setsid /usr/sbin/slurmctld -D -c -i -f "$SLURM_CONF" >"$BASE/log/slurmctld.out" 2>&1 </dev/null) &
echo $! >"$BASE/pids/slurmctld.pid"
for _ in $(seq 1 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
(cd / && exec setsid /usr/sbin/slurmd -D -f "$SLURM_CONF" >"$BASE/log/slurmd.out" 2>&1 </dev/null) &
echo $! >"$BASE/pids/slurmd.pid"
for _ in $(seq 1 150); do
  [[ "$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)" == idle* ]] && break; sleep 0.2
done
[[ "$(sinfo -h -N -o %T | head -1)" == idle* ]] || { echo "node not idle; see $BASE/log/" >&2; exit 1; }
echo "export SLURM_CONF=$SLURM_CONF"
