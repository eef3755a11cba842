"""`tq submit`: a script from a file or stdin, options from its `#TQ` lines and the command line."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click
from click.core import ParameterSource

from task_client.cli_common import Duration, client_of, print_json
from task_client.header import header_lines

# option -> the task field it sets
FIELDS = {"name": "name", "template": "template_type", "priority": "priority", "cpus": "cpu_cores",
          "gpus": "gpu_count", "gpu_mem": "gpu_memory", "after": "depends_on", "env": "env",
          "workdir": "work_dir", "time_limit": "time_limit_s", "notify": "notify"}


def _task_ids(_ctx, param, values: tuple[str, ...]) -> list[int]:
    if not values:
        return []
    ids = []
    for part in ",".join(values).split(","):
        if not part.strip().isdigit() or int(part) < 1:
            raise click.BadParameter(f"{part.strip()!r} is not a task id (use ID,ID)", param=param)
        ids.append(int(part))
    return ids


def _env_pairs(_ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not K=V", param=param)
        env[key] = value
    return env


@click.command()
@click.argument("script", metavar="[FILE | -]", required=False, type=click.File("rb", lazy=False))
@click.option("--name", "-n", metavar="NAME", help="The task's name  [default: the file's name]")
@click.option("--template", metavar="T", help="A template's name, or any label  [default: custom]")
@click.option("--priority", "-p", type=click.IntRange(1, 5), metavar="P", help="1 (most urgent) to 5  [default: 3]")
@click.option("--cpus", type=click.IntRange(min=0), metavar="N", help="CPU cores it needs  [default: 1]")
@click.option("--gpus", type=click.IntRange(min=0), metavar="N", help="GPUs it needs  [default: 0]")
@click.option("--gpu-mem", type=click.IntRange(min=0), metavar="MIB",
              help="MiB it needs on each GPU, sharing it with other tasks; 0: whole GPUs  [default: 0]")
@click.option("--after", metavar="ID,ID", multiple=True, callback=_task_ids,
              help="Start only once these tasks have completed (repeatable).")
@click.option("--env", "-e", metavar="K=V", multiple=True, callback=_env_pairs,
              help="An environment variable for the script (repeatable).")
@click.option("--workdir", metavar="DIR", help="Where it runs: absolute, or relative to the agent's --work-dir.")
@click.option("--time-limit", type=Duration(), metavar="DURATION",
              help="Stop it (and fail it) after this long: seconds, or 90s, 45m, 2h30m, 1d.")
@click.option("--notify", metavar="URL", multiple=True, help="Tell this URL when it finishes (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the new task as JSON instead of its id.")
@click.pass_context
def submit(ctx: click.Context, script, as_json: bool, **_options: Any) -> None:
    """Queue a bash script; print the new task's id.

    The script is FILE, or stdin for - (or for nothing, when stdin is not a terminal).

    Options may also be written in the script's leading comments, one or more per line, the way #SBATCH
    lines work; options given here win:

    \b
        #!/bin/bash
        #TQ --name train --gpus 1 --time-limit 12h
        #TQ --env LR=3e-4
        python train.py
    """
    source, text = _read_script(script)
    fields = _header_fields(ctx, text, source)
    given = _given_fields(ctx)
    fields["env"] = {**fields.get("env", {}), **given.pop("env", {})}
    fields.update(given)
    fields.setdefault("name", "stdin" if source == "stdin" else os.path.basename(source))
    task = client_of(ctx).submit(text, **{k: v for k, v in fields.items() if v not in ({}, None)})
    if as_json:
        print_json(task)
    else:
        click.echo(task["id"])


def _read_script(script) -> tuple[str, str]:
    """(where it came from, its text)."""
    if script is None:
        if sys.stdin.isatty():
            raise click.UsageError("give a script FILE, or - to read it from stdin")
        script = click.get_binary_stream("stdin")
    source = "stdin" if script.name in ("-", "<stdin>") else script.name
    try:
        return source, script.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _given_fields(ctx: click.Context) -> dict[str, Any]:
    """The task fields set by options given in `ctx` (not left at their defaults)."""
    return {FIELDS[name]: ctx.params[name] for name in FIELDS
            if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}


def _header_fields(ctx: click.Context, text: str, source: str) -> dict[str, Any]:
    """The task fields the script's #TQ lines set, later lines over earlier ones (env: merged)."""
    fields: dict[str, Any] = {}
    try:
        lines = header_lines(text)
    except ValueError as exc:
        raise click.UsageError(f"{source}: {exc}") from None
    for number, args in lines:
        line_fields = _parse_header_line(ctx, args, f"{source}: line {number}: #TQ {' '.join(args)}")
        env = {**fields.get("env", {}), **line_fields.pop("env", {})}
        fields.update(line_fields, env=env)
    return fields


def _parse_header_line(ctx: click.Context, args: list[str], where: str) -> dict[str, Any]:
    try:
        line_ctx = submit.make_context("#TQ", list(args), parent=ctx.parent)
    except click.UsageError as exc:
        raise click.UsageError(f"{where}: {exc.format_message()}") from None
    extra = [p.name for p in submit.params if p.name not in FIELDS and
             line_ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]
    if extra or line_ctx.params["script"] is not None:
        raise click.UsageError(f"{where}: a #TQ line takes task options only")
    return _given_fields(line_ctx)
