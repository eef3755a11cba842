"""Progress read from a task's own output, without any change to the user's code: tqdm's bar first
(`45%|████▌ | 450/1000 [01:23<01:40, 5.41it/s]`, redrawn after `\r`; with several bars the last one
drawn wins), a line ending in a bare `NN%` as a fallback. Only the end of each stored piece is read
(TAIL_BYTES), so the cost per beat stays flat however much a task prints (bench: log_volume).
"""
from __future__ import annotations

import re
from typing import Optional, TypedDict

TAIL_BYTES = 4096
MAX_SEGMENTS = 64  # lines / `\r` redraws looked at, newest first

_NUMBER = r"\d+(?:\.\d+)?[kMGTPEZY]?"
_TQDM = re.compile(
    r"(?:(?P<percent>\d{1,3})%\|[^|]*\|\s*)?"  # " 45%|####5     | " (absent when the total is unknown)
    rf"(?P<current>{_NUMBER})(?:/(?P<total>{_NUMBER}))?[^\s\[/]*\s*"  # "450/1000" or "1.50G/5.00G" or "450it"
    r"\[(?P<elapsed>[\d:]+)(?:<(?P<remaining>[\d:]+|\?))?"  # "[01:23<01:40"
    rf",\s*(?:(?P<rate>{_NUMBER})(?P<rate_unit>[^\s,\]]*)|\?[^\s,\]]*)")  # ", 5.41it/s" or "1.30s/it" or "?it/s"
_BARE_PERCENT = re.compile(r"(?P<percent>\d{1,3}(?:\.\d+)?)\s?%\s*$")
_SCALE = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}


class Progress(TypedDict):
    percent: Optional[float]
    current: Optional[float]
    total: Optional[float]
    eta_s: Optional[float]
    rate: Optional[float]  # units per second


def parse(raw: bytes) -> Optional[Progress]:
    """The newest progress in `raw` (the end of a piece of output), or None when it shows none."""
    text = raw[-TAIL_BYTES:].decode("utf-8", errors="replace")
    segments = [s for s in re.split(r"[\r\n]", text) if s.strip()][-MAX_SEGMENTS:]
    fallback = None
    for segment in reversed(segments):
        match = _TQDM.search(segment)
        if match:
            return _from_tqdm(match)
        if fallback is None and (bare := _BARE_PERCENT.search(segment)) and float(bare["percent"]) <= 100:
            fallback = Progress(percent=float(bare["percent"]), current=None, total=None, eta_s=None, rate=None)
    return fallback


def newer(old: Optional[dict], new: Optional[Progress]) -> Optional[Progress]:
    """What the task shows after `new` was read: a bar (tqdm) is never replaced by a bare percent."""
    if new is None or (new["current"] is None and old is not None and old.get("current") is not None):
        return None
    return new


def _from_tqdm(match: re.Match) -> Progress:
    current, total = _number(match["current"]), _number(match["total"])
    percent = float(match["percent"]) if match["percent"] else (
        round(100 * current / total, 1) if current is not None and total else None)
    return Progress(percent=percent, current=current, total=total, eta_s=_seconds(match["remaining"]),
                    rate=_rate(match["rate"], match["rate_unit"] or ""))


def _number(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    scale = _SCALE.get(text[-1], 1) if text[-1].isalpha() else 1
    return float(text.rstrip("kMGTPEZY")) * scale


def _seconds(clock: Optional[str]) -> Optional[float]:
    """tqdm's interval: [H:]MM:SS (hours may pass 24); "?" or nothing: unknown."""
    if not clock or clock == "?":
        return None
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return float(seconds)


def _rate(number: Optional[str], unit: str) -> Optional[float]:
    """Units per second: "5.41it/s" -> 5.41; "1.30s/it" (tqdm inverts slow rates) -> 1/1.30."""
    value = _number(number)
    if value is None:
        return None
    if unit.startswith("s/"):
        return round(1 / value, 6) if value else None
    return value
