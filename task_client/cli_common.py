"""What every `tq` command shares: the client for --server, option types, JSON output, ID completion."""
from __future__ import annotations

import json
import re
import shutil
import sys
from typing import Any, Optional

import click
from click.shell_completion import CompletionItem

from task_client.client import Client
from task_client.header import parse_duration

COMPLETION_TIMEOUT_S = 2.0


def client_of(ctx: click.Context) -> Client:
    """One Client per command line, for the root command's --server (or the environment)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Client):
        root.obj = Client(root.params.get("server"))
    return root.obj


def check_server_url(_ctx, _param, value: Optional[str]) -> Optional[str]:
    if value is not None and not re.match(r"^https?://[^/]", value):
        raise click.BadParameter(f"{value!r} is no URL: use http://HOST:PORT")
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def terminal_width() -> Optional[int]:
    """The terminal's width, or $COLUMNS; None when piped (then nothing is cut)."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = shutil.get_terminal_size((0, 0)).columns
    return columns or None


class Duration(click.ParamType):
    """Seconds, or a duration such as 90s, 45m, 2h30m, 1d."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def complete_task_ids(ctx: click.Context, _param, incomplete: str) -> list:
    """Shell completion: the ids of the newest tasks, each with its name and status."""
    try:
        tasks = Client(ctx.find_root().params.get("server"), timeout_s=COMPLETION_TIMEOUT_S,
                       retry_delays_s=()).list(limit=50)
    except Exception:  # completion must never print an error into the shell's line
        return []
    return [CompletionItem(str(t["id"]), help=f"{t['name']} ({t['status']})")
            for t in tasks if str(t["id"]).startswith(incomplete)]


TASK_ID = click.IntRange(min=1)
