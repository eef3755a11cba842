"""How many cores this process may use: its CPU affinity and the cgroup CPU quota (v2 or v1) of its
own cgroup and every ancestor. Read once by the main agent (ResourceUtil.get_cpu_core_count)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import psutil


def read_cgroup_cpu_limit(cgroup_root: Path = Path("/sys/fs/cgroup"),
                          proc_cgroup: Path = Path("/proc/self/cgroup")) -> Optional[float]:
    """The CPU quota in cores that applies to this process (cgroup v2 or v1), or None when unlimited."""
    limits = [limit for path in _cgroup_cpu_dirs(cgroup_root, proc_cgroup)
              if (limit := _read_cpu_limit_in(path)) is not None]
    return min(limits) if limits else None


def _cgroup_cpu_dirs(cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """Directories that may hold a CPU quota for us: our own cgroup and its ancestors, v2 and v1."""
    own: dict[str, str] = {}  # controller ("" for v2) -> path inside the hierarchy
    try:
        for line in proc_cgroup.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    except (OSError, ValueError):
        pass
    candidates = [(cgroup_root, own.get("", "/"))]
    for v1_dir in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        candidates.append((cgroup_root / v1_dir, own.get("cpu", "/")))
    dirs: list[Path] = []
    for base, inner in candidates:
        path = base / inner.lstrip("/")
        while True:  # walk up to the hierarchy root: a parent's quota limits us too
            dirs.append(path)
            if path == base or base not in path.parents:
                break
            path = path.parent
    return dirs


def _read_cpu_limit_in(directory: Path) -> Optional[float]:
    try:
        if (directory / "cpu.max").is_file():  # v2: "<quota|max> <period>"
            quota, _, period = (directory / "cpu.max").read_text().strip().partition(" ")
            return None if quota == "max" else int(quota) / int(period or 100000)
        if (directory / "cpu.cfs_quota_us").is_file():  # v1: quota -1 means unlimited
            quota = int((directory / "cpu.cfs_quota_us").read_text().strip())
            period = int((directory / "cpu.cfs_period_us").read_text().strip())
            return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def usable_cpu_ids() -> list[int]:
    """The CPU ids this process may run on (its affinity mask), sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(psutil.cpu_count(logical=True) or 1))
