#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and driver. Run from anywhere:
#
#     bash scripts/gpu_check.sh            (PY=/path/to/python to choose the interpreter with our deps)
#
# 1. prints what ResourceUtil reads through NVML (the numbers the agents report);
# 2. starts a throw-away server (python app.py, temp data dir) and a main agent without simulation,
#    submits a task with gpu_count=1 that prints CUDA_VISIBLE_DEVICES and holds ~1 GiB of GPU memory
#    for a few seconds (torch, else cupy, else a tiny CUDA C program built with nvcc), and checks that
#    the task's sub-agent reported that memory (GET /api/agents: a sub-agent gpu_info memory_used > 500).
# Prints PASS/FAIL lines; exits 0 only if every check passed. GPU_CHECK_SIMULATE=1 runs the plumbing
# with a simulated GPU on a machine without one (the memory check then fails, as it should).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
TMP=$(mktemp -d -t gpu-check-XXXXXX)
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
api() { $PY -c 'import json, sys, urllib.request as u
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = u.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
print(u.urlopen(req, timeout=10).read().decode())' "$@"; }
diagnose() {
  echo "--- diagnosis: NVML's processes per GPU vs the processes of task $TASK_ID"
  $PY -c 'import pynvml; pynvml.nvmlInit()
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    for q in (pynvml.nvmlDeviceGetComputeRunningProcesses, pynvml.nvmlDeviceGetGraphicsRunningProcesses):
        print(i, q.__name__, [(p.pid, p.usedGpuMemory) for p in q(h)])' 2>&1
  ps -eo pid,ppid,pgid,cmd | grep -E "agent.sub_agent|torch|cupy|hold" | grep -v grep
  echo "---"
}
cleanup() {
  [ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT

echo "== 1. NVML readings, as ResourceUtil takes them"
if $PY - <<'EOF'
import sys
from agent.resource_util import ResourceUtil
util = ResourceUtil()
print(f"cpu cores (cgroup- and affinity-aware): {util.get_cpu_core_count()}")
gpus = util.get_gpu_info()
for gpu in gpus:
    print(f"gpu {gpu.index}: {gpu.name} {gpu.uuid} util={gpu.utilization}% "
          f"memory {gpu.memory_used}/{gpu.memory_total} MiB")
util.close()
sys.exit(0 if gpus else 1)
EOF
then pass "NVML lists the GPUs"; else fail "NVML lists no GPU (driver missing?)"; fi

echo "== 2. a CUDA task through server + agent (data and logs in $TMP)"
TASK_SYSTEM_MAIN_HEARTBEAT_INTERVAL_S=0.5 TASK_SYSTEM_SUB_HEARTBEAT_INTERVAL_S=0.5 \
  $PY app.py --host 127.0.0.1 --port "$PORT" --data-dir "$TMP/data" >"$TMP/server.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do api GET "$URL/api/health" >/dev/null 2>&1 && break; sleep 0.2; done
SIM=(); [ "${GPU_CHECK_SIMULATE:-0}" = 1 ] && SIM=(--simulate-gpus 1x81920)
$PY setup_master_agent.py --server "$URL" --name gpu-check --state-dir "$TMP/agent" \
  --work-dir "$TMP/work" "${SIM[@]}" >"$TMP/agent.out" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do api GET "$URL/api/agents" 2>/dev/null | grep -q '"online"' && break; sleep 0.2; done
api GET "$URL/api/agents" | grep -q '"online"' && pass "server and main agent are up" || fail "agent did not come online (see $TMP)"

read -r -d '' TASK_SCRIPT <<'EOF'
echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
export PATH="$PATH:/usr/local/cuda/bin"
for py in python3 python; do
  command -v "$py" >/dev/null || continue
  if "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "using torch"
    exec "$py" -c 'import torch, time
x = torch.ones(1 << 30, dtype=torch.uint8, device="cuda"); torch.cuda.synchronize()
print("holding 1 GiB on", torch.cuda.get_device_name(0), flush=True); time.sleep(8); print("done")'
  fi
  if "$py" -c 'import cupy' 2>/dev/null; then
    echo "using cupy"
    exec "$py" -c 'import cupy, time
x = cupy.ones(1 << 30, dtype=cupy.uint8); cupy.cuda.Device().synchronize()
print("holding 1 GiB", flush=True); time.sleep(8); print("done")'
  fi
done
if command -v nvcc >/dev/null; then
  echo "using nvcc"
  printf '%s\n' '#include <cstdio>' '#include <unistd.h>' \
    'int main() { void *p; if (cudaMalloc(&p, 1ull << 30) != cudaSuccess) { puts("cudaMalloc failed"); return 1; }' \
    '  cudaMemset(p, 1, 1ull << 30); cudaDeviceSynchronize(); puts("holding 1 GiB"); fflush(stdout);' \
    '  sleep(8); cudaFree(p); puts("done"); return 0; }' > hold.cu
  nvcc -o hold hold.cu && exec ./hold
fi
echo "no torch, cupy or nvcc: cannot run a CUDA program"
exit 2
EOF
BODY=$($PY -c 'import json, sys; print(json.dumps({"name": "gpu check", "template_type": "gpu-check",
  "script_content": sys.argv[1], "gpu_count": 1, "cpu_cores": 1}))' "$TASK_SCRIPT")
TASK_ID=$(api POST "$URL/api/tasks" "$BODY" | $PY -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "submitted task $TASK_ID"

best=0
for _ in $(seq 150); do  # up to ~30 s: the sub-agent reports usage once per heartbeat
  used=$(api GET "$URL/api/agents" | $PY -c "import json, sys
subs = [s for a in json.load(sys.stdin) for s in a['sub_agents'] if s.get('task_id') == $TASK_ID]
print(max([int(g.get('memory_used') or 0) for s in subs for g in (s.get('gpu_info') or [])] or [0]))")
  [ "$used" -gt "$best" ] && best=$used
  [ "$best" -gt 500 ] && break
  if api GET "$URL/api/tasks/$TASK_ID/log" | grep -q holding; then
    held=$((${held:-0} + 1))
    [ "$held" = 10 ] && diagnose  # holding for ~2 s and still not reported: show what NVML sees
  fi
  status=$(api GET "$URL/api/tasks/$TASK_ID" | $PY -c 'import json, sys; print(json.load(sys.stdin)["status"])')
  case "$status" in completed|failed|canceled) break ;; esac
  sleep 0.2
done
[ "$best" -gt 500 ] && pass "sub-agent reported the task's GPU memory: $best MiB" \
  || fail "sub-agent reported at most $best MiB of GPU memory for the task (want > 500)"

for _ in $(seq 100); do
  status=$(api GET "$URL/api/tasks/$TASK_ID" | $PY -c 'import json, sys; print(json.load(sys.stdin)["status"])')
  case "$status" in completed|failed|canceled) break ;; esac
  sleep 0.3
done
echo "--- task $TASK_ID log:"
api GET "$URL/api/tasks/$TASK_ID/log" | $PY -c 'import json, sys; print(json.load(sys.stdin)["data"], end="")'
echo "---"
TASK=$(api GET "$URL/api/tasks/$TASK_ID")
GPU_IDS=$(echo "$TASK" | $PY -c 'import json, sys; print(",".join(map(str, json.load(sys.stdin)["gpu_ids"])))')
[ "$status" = completed ] && pass "task completed" || fail "task ended $status: $(echo "$TASK" | $PY -c 'import json, sys; print(json.load(sys.stdin)["status_reason"])')"
api GET "$URL/api/tasks/$TASK_ID/log" | grep -q "CUDA_VISIBLE_DEVICES=$GPU_IDS\\\\n" \
  && pass "task saw CUDA_VISIBLE_DEVICES=$GPU_IDS (its gpu_ids)" || fail "CUDA_VISIBLE_DEVICES did not match gpu_ids=$GPU_IDS"

echo "== $([ $failures = 0 ] && echo 'ALL PASSED' || echo "$failures FAILED") (server and agent output in $TMP)"
exit $([ $failures = 0 ] && echo 0 || echo 1)
