"""ResourceUtil: cgroup-aware core count, process-tree CPU/memory, simulated GPUs, NVML fallbacks."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pynvml
import pytest

from agent import resource_util
from agent.resource_util import ResourceUtil, parse_simulated_gpus, read_cgroup_cpu_limit
from tests.helpers import wait_for


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("cpu_max, expected", [
    ("200000 100000\n", 2.0),
    ("150000 100000\n", 1.5),
    ("max 100000\n", None),
])
def test_cgroup_v2_cpu_max_is_parsed(tmp_path, cpu_max, expected):
    _write(tmp_path / "proc_cgroup", "0::/\n")
    _write(tmp_path / "cg" / "cpu.max", cpu_max)
    assert read_cgroup_cpu_limit(tmp_path / "cg", tmp_path / "proc_cgroup") == expected


def test_cgroup_v2_quota_of_a_parent_cgroup_applies(tmp_path):
    _write(tmp_path / "proc_cgroup", "0::/job/step\n")
    _write(tmp_path / "cg" / "job" / "step" / "cpu.max", "max 100000\n")
    _write(tmp_path / "cg" / "job" / "cpu.max", "300000 100000\n")
    _write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    assert read_cgroup_cpu_limit(tmp_path / "cg", tmp_path / "proc_cgroup") == 3.0


@pytest.mark.parametrize("quota, expected", [("400000", 4.0), ("50000", 0.5), ("-1", None)])
def test_cgroup_v1_cfs_quota_is_parsed(tmp_path, quota, expected):
    _write(tmp_path / "proc_cgroup", "4:memory:/x\n2:cpu,cpuacct:/\n")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "cpu.cfs_quota_us", quota + "\n")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert read_cgroup_cpu_limit(tmp_path / "cg", tmp_path / "proc_cgroup") == expected


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert read_cgroup_cpu_limit(tmp_path / "missing", tmp_path / "missing_proc") is None


def test_core_count_honours_quota_and_affinity(monkeypatch):
    util = ResourceUtil(simulate_gpus=parse_simulated_gpus("1x1024"))
    monkeypatch.setattr(resource_util, "usable_cpu_ids", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(resource_util, "read_cgroup_cpu_limit", lambda: 2.5)
    assert util.get_cpu_core_count() == 2
    monkeypatch.setattr(resource_util, "read_cgroup_cpu_limit", lambda: 0.5)
    assert util.get_cpu_core_count() == 1  # a fractional quota still offers one core
    monkeypatch.setattr(resource_util, "read_cgroup_cpu_limit", lambda: None)
    assert util.get_cpu_core_count() == 4


BUSY_TREE = """
import os, time
if os.fork() == 0:  # a busy grandchild: the tree's CPU must include it
    while True: pass
block = bytearray(80 * 1024 * 1024)
for i in range(0, len(block), 4096): block[i] = 1
while True: pass
"""


@pytest.fixture
def busy_tree():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_TREE])
    yield proc
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.kill()
    proc.kill()
    proc.wait()


def test_process_tree_cpu_and_memory_include_descendants(busy_tree):
    util = ResourceUtil(simulate_gpus=parse_simulated_gpus("1x1024"))
    wait_for(lambda: len(util.tree_processes(busy_tree.pid)) == 2, 5, message="the grandchild to start")
    util.get_cpu_usage(busy_tree.pid)  # first sample primes the counters
    util.get_cpu_usage(busy_tree.pid, include_root=False)
    # the box may be busy with other work: ask for clearly-measured use, not a full core each
    cpu = wait_for(lambda: (c := util.get_cpu_usage(busy_tree.pid)) > 30 and c, 10, interval_s=0.3,
                   message="tree CPU above 30%")
    assert cpu < 100 * (psutil.cpu_count() or 1) + 20
    wait_for(lambda: util.get_cpu_usage(busy_tree.pid, include_root=False) > 10, 10, interval_s=0.3,
             message="the grandchild alone to show CPU use")
    memory = wait_for(lambda: (m := util.get_memory_usage(busy_tree.pid)).used_mib > 80 and m, 10,
                      message="tree RSS above 80 MiB")
    assert 0 < memory.percent < 100
    assert util.get_memory_usage(busy_tree.pid, include_root=False).used_mib < memory.used_mib


def test_process_tree_of_a_gone_process_is_empty():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    util = ResourceUtil(simulate_gpus=parse_simulated_gpus("1x1024"))
    assert util.get_cpu_usage(proc.pid) == 0.0
    assert util.get_memory_usage(proc.pid).used_mib == 0


@pytest.mark.parametrize("spec, count, mib", [("2x81920", 2, 81920), ("1X1024", 1, 1024), (" 8x40960 ", 8, 40960)])
def test_simulated_gpus_are_parsed_and_labelled(spec, count, mib):
    gpus = ResourceUtil(simulate_gpus=parse_simulated_gpus(spec)).get_gpu_info()
    assert [g.index for g in gpus] == list(range(count))
    assert all(g.simulated and g.memory_total == mib and g.memory_used == 0 and g.utilization == 0
               and g.uuid.startswith("SIM-") and "Simulated" in g.name for g in gpus)


@pytest.mark.parametrize("spec", ["", "2", "x81920", "0x1024", "2x0", "2x-1", "twoxmany", "2*1024"])
def test_bad_simulated_gpu_spec_is_refused(spec):
    with pytest.raises(ValueError):
        parse_simulated_gpus(spec)


def test_without_nvml_there_are_no_gpus(monkeypatch):
    def no_library():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    util = ResourceUtil()
    assert util.get_gpu_info() == []
    assert util.get_process_gpu_usage([1, 2], gpu_ids=[0])[0].memory_used == 0
    util.close()


def test_gpu_readings_and_process_usage_come_from_nvml(monkeypatch):
    """A fake NVML with two GPUs: our pids use 1 GiB on GPU 1; utilisation is NotSupported on GPU 0."""
    mib = 1024 * 1024
    fake = {
        "nvmlInit": lambda: None, "nvmlShutdown": lambda: None, "nvmlDeviceGetCount": lambda: 2,
        "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetName": lambda h: b"NVIDIA H100",
        "nvmlDeviceGetUUID": lambda h: f"GPU-{h}",
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(used=(h + 1) * 2048 * mib, total=81920 * mib),
        "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=40 * h),
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [SimpleNamespace(pid=111, usedGpuMemory=1024 * mib)] if h == 1 else [],
        "nvmlDeviceGetGraphicsRunningProcesses": lambda h: [SimpleNamespace(pid=999, usedGpuMemory=None)],
        "nvmlDeviceGetProcessUtilization": _process_utilization,
    }
    for name, value in fake.items():
        monkeypatch.setattr(pynvml, name, value)
    util = ResourceUtil()
    gpus = util.get_gpu_info()
    assert [(g.index, g.name, g.uuid, g.memory_used, g.memory_total, g.utilization, g.simulated) for g in gpus] == [
        (0, "NVIDIA H100", "GPU-0", 2048, 81920, 0.0, False), (1, "NVIDIA H100", "GPU-1", 4096, 81920, 40.0, False)]
    usage = util.get_process_gpu_usage([111, 112], gpu_ids=[0])
    assert [(u.index, u.memory_used, u.utilization) for u in usage] == [(0, 0, 0.0), (1, 1024, 55.0)]


def _process_utilization(handle, since):
    if handle == 0:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    return [SimpleNamespace(pid=111, smUtil=55, timeStamp=10), SimpleNamespace(pid=5, smUtil=20, timeStamp=11)]


def test_cpu_readings_taken_close_together_do_not_spike(busy_tree):
    """CPU times tick in 10 ms steps: a second reading 0.3 ms after the first once gave 2800 %.
    Readings within MIN_CPU_SAMPLE_S repeat the last one instead of measuring over a sliver."""
    from agent.resource_util import MIN_CPU_SAMPLE_S

    util = ResourceUtil(simulate_gpus=parse_simulated_gpus("1x1024"))
    wait_for(lambda: len(util.tree_processes(busy_tree.pid)) == 2, 5, message="the grandchild to start")
    util.get_cpu_usage(busy_tree.pid)  # primes the counters
    first = wait_for(lambda: (c := util.get_cpu_usage(busy_tree.pid)) > 0 and (time.monotonic(), c), 10,
                     interval_s=0.2, message="a measured CPU share")
    readings = [(time.monotonic(), util.get_cpu_usage(busy_tree.pid)) for _ in range(300)]
    limit = 100 * (psutil.cpu_count() or 1) + 20
    assert all(value < limit for _, value in readings)
    assert all(value == first[1] for taken, value in readings if taken - first[0] < MIN_CPU_SAMPLE_S)
