"""`tq ls`: tasks as an aligned table that fits the terminal (the name shrinks first, then the least
useful columns go), the status in colour (click drops the colour when the output is not a terminal)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Optional

import click

from task_client.results import Task

STATUS_COLOURS = {"blocked": "magenta", "waiting": "yellow", "running": "cyan", "completed": "green",
                  "failed": "red", "canceled": "bright_black"}
MIN_NAME_WIDTH = 12
GAP = "  "


def _status(task: Task) -> str:
    progress = task.get("progress") or {}
    if task["status"] == "running" and progress.get("percent") is not None:
        return f"running {progress['percent']:.0f}%"
    return task["status"]


def _gpus(task: Task) -> str:
    if not task.get("gpu_count"):
        return "-"
    memory = task.get("gpu_memory") or 0
    return f"{task['gpu_count']}x{memory}M" if memory else str(task["gpu_count"])


def _run_time(task: Task) -> str:
    if task.get("execution_time") is not None:
        return duration_text(task["execution_time"])
    if task["status"] == "running" and task.get("start_time"):
        return duration_text((datetime.now(timezone.utc) - datetime.fromisoformat(task["start_time"])).total_seconds())
    return "-"


# title, cell, right-aligned; in the order they are dropped when the terminal is too narrow (never: None)
COLUMNS: list[tuple[str, Callable[[Task], str], bool, Optional[int]]] = [
    ("ID", lambda t: str(t["id"]), True, None),
    ("STATUS", _status, False, None),
    ("NAME", lambda t: t["name"], False, None),
    ("PRI", lambda t: str(t["priority"]), True, 3),
    ("CPU", lambda t: str(t["cpu_cores"]), True, 4),
    ("GPU", _gpus, True, 5),
    ("AGENT", lambda t: (t.get("agent_id") or "-")[:12], False, 1),
    ("CREATED", lambda t: local_time(t["created_time"]), False, 2),
    ("TIME", _run_time, True, 6),
]


def duration_text(seconds: float) -> str:
    """45s, 12m03s, 3h04m, 2d03h."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def local_time(iso: Optional[str]) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%m-%d %H:%M") if iso else "-"


def task_table(tasks: list[Task], width: Optional[int] = None) -> list[str]:
    """The table's lines (a header, then one task a line), no wider than `width` when it is given."""
    columns = list(COLUMNS)
    cells = [[cell(task) for _, cell, _, _ in columns] for task in tasks]
    widths = _widths(columns, cells)
    while width and _total(widths) > width:
        if not _shrink_name(columns, widths, _total(widths) - width):
            droppable = [c for c in columns if c[3] is not None]
            if not droppable:
                break
            index = columns.index(min(droppable, key=lambda c: c[3]))
            del columns[index], widths[index]
            cells = [row[:index] + row[index + 1:] for row in cells]
    statuses = [task["status"] for task in tasks]
    return [_line(columns, widths, [c[0] for c in columns])] + [
        _line(columns, widths, row, status) for row, status in zip(cells, statuses)]


def _widths(columns, cells) -> list[int]:
    return [max([len(title)] + [len(row[i]) for row in cells]) for i, (title, *_rest) in enumerate(columns)]


def _total(widths: list[int]) -> int:
    return sum(widths) + len(GAP) * (len(widths) - 1)


def _shrink_name(columns, widths: list[int], excess: int) -> bool:
    """Narrow the NAME column by up to `excess`; False when it is already as narrow as it may get."""
    index = [c[0] for c in columns].index("NAME")
    narrower = max(MIN_NAME_WIDTH, widths[index] - excess)
    if narrower >= widths[index]:
        return False
    widths[index] = narrower
    return True


def _line(columns, widths: list[int], row: list[str], status: Optional[str] = None) -> str:
    out = []
    for (title, _cell, right, _drop), width, text in zip(columns, widths, row):
        text = text if len(text) <= width else text[:width - 1] + "…"
        padded = text.rjust(width) if right else text.ljust(width)
        if title == "STATUS" and status:
            padded = click.style(padded, fg=STATUS_COLOURS.get(status))
        out.append(padded)
    return GAP.join(out).rstrip()
