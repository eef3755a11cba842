"""What this machine has and what a process tree uses: CPU cores (cgroup-aware), CPU %, memory, GPUs.

GPUs come from NVML (module `pynvml` of the nvidia-ml-py package). Without a driver the GPU list is
empty and one info line is logged. `--simulate-gpus COUNTxMIB` replaces NVML with declared, clearly
labelled fake GPUs (simulated=True, zero use) for tests and demos on machines without any.
"""
from __future__ import annotations

import math
import re
import time
import weakref
from dataclasses import dataclass
from typing import Iterable, Optional

import psutil
import pynvml
import structlog

from agent.cpu_limits import read_cgroup_cpu_limit, usable_cpu_ids
from agent.process_tree import descendant_pids
from task_common.protocol import GpuInfo, ProcessGpuUsage

log = structlog.get_logger()

MIB = 1024 * 1024
MIN_CPU_SAMPLE_S = 0.1  # a process's CPU share is measured over at least this long (see _cpu_percent)
SIMULATED_GPU_NAME = "Simulated GPU"
_SIMULATE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class SimulatedGpus:
    count: int
    memory_mib: int


@dataclass(frozen=True)
class MemoryUsage:
    used_mib: float
    total_mib: float
    percent: float


def parse_simulated_gpus(spec: str) -> SimulatedGpus:
    """Parse 'COUNTxMIB' (e.g. '2x81920'); raises ValueError with a sentence people understand."""
    match = _SIMULATE_RE.match(spec or "")
    if not match:
        raise ValueError(f"expected COUNTxMIB such as 2x81920, got {spec!r}")
    count, memory_mib = int(match.group(1)), int(match.group(2))
    if count < 1 or memory_mib < 1:
        raise ValueError(f"GPU count and memory must be positive, got {spec!r}")
    return SimulatedGpus(count, memory_mib)


class ResourceUtil:
    """Reads this machine's resources. Keeps psutil.Process objects between samples so CPU % is real."""

    def __init__(self, simulate_gpus: Optional[SimulatedGpus] = None):
        self.simulated = simulate_gpus
        self._nvml_handles: list = []
        self._trees: dict[int, dict[int, psutil.Process]] = {}  # root pid -> pid -> Process
        self._cpu_seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Process -> (when, %)
        self._gpu_util_seen_us: dict[int, int] = {}  # GPU index -> last sample timestamp
        psutil.cpu_percent(interval=None)  # prime the machine-wide counter
        if simulate_gpus is None:
            self._init_nvml()

    def _init_nvml(self) -> None:
        try:
            pynvml.nvmlInit()
            self._nvml_handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                                  for i in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError_LibraryNotFound:
            log.info("gpu_monitoring_unavailable", reason="NVML library not found (no NVIDIA driver)")
        except pynvml.NVMLError as exc:
            log.warning("gpu_monitoring_unavailable", reason=str(exc))
            self._nvml_handles = []

    def after_fork(self) -> None:
        """In a forked child: forget NVML without calling it. Its state belongs to the parent: a
        shutdown here tore down the parent's NVML client (seen on an H200: SIGSEGV here, 'Unknown
        Error' there), so a forked sub-agent gets its GPU readings from the main agent instead."""
        self._nvml_handles = []
        self._trees.clear()
        self._cpu_seen.clear()
        self._gpu_util_seen_us.clear()

    def close(self) -> None:
        if self._nvml_handles:
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass
            self._nvml_handles = []

    # -- machine --------------------------------------------------------------------------------

    def get_cpu_core_count(self) -> int:
        """Cores we may really use: min of the cgroup quota and the affinity mask, else psutil's count."""
        count = len(usable_cpu_ids()) or (psutil.cpu_count(logical=True) or 1)
        quota = read_cgroup_cpu_limit()
        if quota is not None:
            count = min(count, max(1, math.floor(quota)))
        return count

    def get_gpu_info(self) -> list[GpuInfo]:
        """Every GPU with utilisation and memory in MiB; simulated ones when asked; [] without NVML."""
        if self.simulated is not None:
            return [GpuInfo(index=i, name=SIMULATED_GPU_NAME, uuid=f"SIM-GPU-{i}", utilization=0,
                            memory_used=0, memory_total=self.simulated.memory_mib, simulated=True)
                    for i in range(self.simulated.count)]
        gpus = []
        for index, handle in enumerate(self._nvml_handles):
            try:
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                gpus.append(GpuInfo(
                    index=index, name=_text(pynvml.nvmlDeviceGetName(handle)),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    utilization=float(_gpu_utilization(handle)),
                    memory_used=int(memory.used // MIB), memory_total=int(memory.total // MIB)))
            except pynvml.NVMLError as exc:
                log.warning("gpu_read_failed", gpu_index=index, reason=str(exc))
        return gpus

    def get_machine_cpu_usage(self) -> float:
        """Percent of the whole machine's CPU time since the previous call."""
        return float(psutil.cpu_percent(interval=None))

    def get_machine_memory_usage(self) -> MemoryUsage:
        vm = psutil.virtual_memory()
        return MemoryUsage(used_mib=(vm.total - vm.available) / MIB, total_mib=vm.total / MIB,
                           percent=float(vm.percent))

    # -- process trees --------------------------------------------------------------------------

    def tree_processes(self, root_pid: int, include_root: bool = True) -> list[psutil.Process]:
        """The live processes of a tree, reusing the Process objects of earlier samples."""
        known = self._trees.get(root_pid, {})
        alive = {}
        for pid in [root_pid, *descendant_pids(root_pid)]:
            try:
                alive[pid] = known.get(pid) or psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
        if root_pid not in alive:
            self._trees.pop(root_pid, None)
            return []
        self._trees[root_pid] = alive
        return [p for pid, p in alive.items() if include_root or pid != root_pid]

    def get_cpu_usage(self, root_pid: int, include_root: bool = True,
                      processes: Optional[list[psutil.Process]] = None) -> float:
        """CPU percent of one core, summed over the process and all its descendants, since last call."""
        total = 0.0
        for proc in self.tree_processes(root_pid, include_root) if processes is None else processes:
            try:
                total += self._cpu_percent(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _cpu_percent(self, proc: psutil.Process) -> float:
        """psutil's reading since the previous one, but never over less than MIN_CPU_SAMPLE_S: CPU
        times tick in 10 ms steps, so two readings 0.3 ms apart once gave 2800 % for one process."""
        now = time.monotonic()
        taken_at, value = self._cpu_seen.get(proc, (None, 0.0))
        if taken_at is not None and now - taken_at < MIN_CPU_SAMPLE_S:
            return value
        value = proc.cpu_percent(interval=None)
        self._cpu_seen[proc] = (now, value)
        return value

    def get_memory_usage(self, root_pid: int, include_root: bool = True,
                         processes: Optional[list[psutil.Process]] = None) -> MemoryUsage:
        """Resident memory of the process and all its descendants (or of `processes`, already listed)."""
        rss = 0
        for proc in self.tree_processes(root_pid, include_root) if processes is None else processes:
            try:
                rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        total = psutil.virtual_memory().total
        return MemoryUsage(used_mib=rss / MIB, total_mib=total / MIB, percent=100.0 * rss / total)

    @property
    def has_nvml(self) -> bool:
        return bool(self._nvml_handles)

    def get_gpu_processes(self) -> dict[int, dict[int, tuple[int, float]]]:
        """One NVML reading of every GPU's processes: GPU index -> pid -> (memory MiB, SM util %)."""
        snapshot = {}
        for index, handle in enumerate(self._nvml_handles):
            utilization = self._process_utilization(index, handle)
            per_pid = {pid: (used // MIB, utilization.get(pid, 0.0)) for pid, used in _gpu_process_memory(handle)}
            for pid, util in utilization.items():
                per_pid.setdefault(pid, (0, util))
            snapshot[index] = per_pid
        return snapshot

    def get_process_gpu_usage(self, pids: Iterable[int], gpu_ids: Iterable[int] = (),
                              snapshot: Optional[dict] = None) -> list[ProcessGpuUsage]:
        """GPU memory (MiB) and utilisation of these pids, per GPU; the given gpu_ids always appear.

        Pass one get_gpu_processes() snapshot when asking for several process trees in a row."""
        pids = set(pids)
        usage = {i: ProcessGpuUsage(index=i) for i in gpu_ids}
        for index, per_pid in (self.get_gpu_processes() if snapshot is None else snapshot).items():
            memory_mib = sum(m for pid, (m, _) in per_pid.items() if pid in pids)
            utilization = min(100.0, sum(u for pid, (_, u) in per_pid.items() if pid in pids))
            if memory_mib or utilization or index in usage:
                usage[index] = ProcessGpuUsage(index=index, memory_used=int(memory_mib), utilization=utilization)
        return [usage[i] for i in sorted(usage)]

    def _process_utilization(self, index: int, handle) -> dict[int, float]:
        try:
            samples = pynvml.nvmlDeviceGetProcessUtilization(handle, self._gpu_util_seen_us.get(index, 0))
        except pynvml.NVMLError:  # NotSupported on many boards, NotFound when nothing ran lately
            return {}
        latest: dict[int, float] = {}
        for sample in samples:
            self._gpu_util_seen_us[index] = max(self._gpu_util_seen_us.get(index, 0), sample.timeStamp)
            latest[sample.pid] = float(sample.smUtil)
        return latest


def _gpu_process_memory(handle) -> list[tuple[int, int]]:
    """(pid, bytes) for every compute and graphics process on one GPU; [] when NVML cannot tell."""
    found: dict[int, int] = {}
    for query in (pynvml.nvmlDeviceGetComputeRunningProcesses,
                  pynvml.nvmlDeviceGetGraphicsRunningProcesses):
        try:
            for proc in query(handle):
                used = proc.usedGpuMemory if isinstance(proc.usedGpuMemory, int) else 0
                found[proc.pid] = max(found.get(proc.pid, 0), used)
        except pynvml.NVMLError:
            continue
    return list(found.items())


def _gpu_utilization(handle) -> int:
    try:
        return pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
    except pynvml.NVMLError:
        return 0


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
