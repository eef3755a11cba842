"""Process CPU and memory sampling for the scenarios (psutil and /proc)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import psutil

MIB = 1024 * 1024


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    """User + system CPU of these processes (children already reaped are counted by the kernel
    in children_* of their parent, which we add too)."""
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def peak_rss_bytes(proc: psutil.Process) -> int:
    """The kernel's high-water mark of resident memory (VmHWM), so short peaks are not missed."""
    try:
        with open(f"/proc/{proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Sampler:
    """Samples a set of processes (chosen anew each time by `select`) every interval_s in a thread:
    summed RSS and PSS now, peak summed RSS, peak single-process high-water mark."""

    select: Callable[[], list[psutil.Process]]
    interval_s: float = 0.1
    peak_rss: int = 0
    peak_single_hwm: int = 0
    rss_samples: list[int] = field(default_factory=list)
    pss_samples: list[int] = field(default_factory=list)
    with_pss: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def __enter__(self) -> "Sampler":
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        rss = pss = 0
        for proc in self.select():
            try:
                rss += proc.memory_info().rss
                if self.with_pss:
                    pss += proc.memory_full_info().pss
                self.peak_single_hwm = max(self.peak_single_hwm, peak_rss_bytes(proc))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        self.peak_rss = max(self.peak_rss, rss)
        self.rss_samples.append(rss)
        if self.with_pss:
            self.pss_samples.append(pss)
