"""`tq` (also `python -m task_client`): task_system from the terminal. The commands and exit codes are the
contract's: 0 done, 1 a refused request or an unreachable server (one line on stderr), 2 bad usage."""
from __future__ import annotations

import os
import sys
import time

import click

from task_client import __version__
from task_client.cli_common import (TASK_ID, Duration, check_server_url, client_of, complete_task_ids,
                                    print_json, terminal_width)
from task_client.cli_submit import submit
from task_client.errors import ServerUnreachable, TaskSystemError
from task_client.formatting import agent_lines, task_lines
from task_client.results import FINISHED, Task
from task_client.table import task_table

STATUSES = ("blocked", "waiting", "running", "completed", "failed", "canceled")
WAIT_POLL_S = 1.0
WAIT_TIMEOUT_EXIT = 124  # as timeout(1)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
task_id_argument = click.argument("task_id", metavar="ID", type=TASK_ID, shell_complete=complete_task_ids)
task_ids_argument = click.argument("task_ids", metavar="ID...", nargs=-1, required=True, type=TASK_ID,
                                   shell_complete=complete_task_ids)


class TqGroup(click.Group):
    """A refused request or an unreachable server: its one line on stderr, exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TaskSystemError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=TqGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--server", metavar="URL", callback=check_server_url, help="The task server  [default: "
              "$TASK_SYSTEM_URL, else $TASK_SERVER_URL, else http://127.0.0.1:5000; token: $TASK_SYSTEM_TOKEN]")
@click.version_option(__version__, "--version", prog_name="tq")
def cli(server) -> None:
    """Queue bash scripts on task_system, follow them, wait for them.

    \b
      A=$(tq submit prepare.sh)
      B=$(tq submit train.sh --after $A --gpus 1 --env LR=3e-4)
      tq logs -f $B; tq wait $A $B

    Shell completion: eval "$(_TQ_COMPLETE=bash_source tq)" in ~/.bashrc (zsh: zsh_source, ~/.zshrc).
    """


cli.add_command(submit)


def _statuses(_ctx, param, value):
    unknown = [s for s in (value or "").split(",") if value and s not in STATUSES]
    if unknown:
        raise click.BadParameter(f"unknown status {unknown[0]!r}; use {', '.join(STATUSES)}", param=param)
    return value


@cli.command("ls")
@click.option("--status", "-s", metavar="S[,S]", callback=_statuses, help="Only these: " + ", ".join(STATUSES))
@click.option("--name", "-n", metavar="TEXT", help="Only names containing TEXT (any case).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0), help="At most this many (0: all).")
@json_option
@click.pass_context
def ls(ctx: click.Context, status, name, limit: int, as_json: bool) -> None:
    """List tasks, newest first."""
    tasks = client_of(ctx).list(status=status, name=name, limit=limit or None)
    if as_json:
        print_json(tasks)
        return
    for line in task_table(tasks, terminal_width()):
        click.echo(line)


@cli.command()
@task_id_argument
@json_option
@click.pass_context
def show(ctx: click.Context, task_id: int, as_json: bool) -> None:
    """Show one task: every field, then its script."""
    task = client_of(ctx).get(task_id)
    if as_json:
        print_json(task)
        return
    for line in task_lines(task):
        click.echo(line)


@cli.command()
@task_id_argument
@click.option("--follow", "-f", is_flag=True, help="Keep printing as the task writes, until it has finished.")
@click.option("--tail", type=click.IntRange(min=0), metavar="BYTES", help="Start this many bytes before the end.")
@click.pass_context
def logs(ctx: click.Context, task_id: int, follow: bool, tail) -> None:
    """Print a task's output, byte for byte.

    The output is printed exactly as it was written: colours, \\r and invalid UTF-8 included. With -f
    a lost connection or a restarted server is waited out and the output resumes where it stopped."""
    client = client_of(ctx)
    offset = 0 if tail is None else max(0, client.get(task_id)["log_size"] - tail)
    out = click.get_binary_stream("stdout")
    for chunk in client.log_bytes(task_id, follow=follow, offset=offset):
        out.write(chunk)
        out.flush()


@cli.command()
@task_ids_argument
@click.option("--timeout", type=Duration(), metavar="DURATION",
              help=f"Give up after this long (exit code {WAIT_TIMEOUT_EXIT}): seconds, or 90s, 45m, 2h30m.")
@click.pass_context
def wait(ctx: click.Context, task_ids: tuple[int, ...], timeout) -> None:
    """Wait for tasks to finish; print how each ended.

    Exit code 0 when all completed, 1 when any failed or was canceled."""
    tasks = _wait_all(ctx, task_ids, timeout)
    for task in tasks:
        reason = f": {task['status_reason']}" if task.get("status_reason") else ""
        click.echo(f"{task['id']} {task['status']}{reason}")
    ctx.exit(0 if all(t["status"] == "completed" for t in tasks) else 1)


def _wait_all(ctx: click.Context, task_ids: tuple[int, ...], timeout) -> list[Task]:
    client, deadline = client_of(ctx), None if timeout is None else time.monotonic() + timeout
    latest: dict[int, Task] = {}
    while True:
        for task_id in dict.fromkeys(task_ids):
            if latest.get(task_id, {}).get("status") not in FINISHED:
                latest[task_id] = client.get(task_id)
        tasks = [latest[i] for i in dict.fromkeys(task_ids)]
        done = all(t["status"] in FINISHED for t in tasks)
        _show_progress(tasks, done)
        if done:
            return tasks
        if deadline is not None and time.monotonic() >= deadline:
            _show_progress(tasks, True)
            timed_out = click.ClickException("timed out; still unfinished: " + ", ".join(
                f"{t['id']} ({t['status']})" for t in tasks if t["status"] not in FINISHED))
            timed_out.exit_code = WAIT_TIMEOUT_EXIT
            raise timed_out
        time.sleep(WAIT_POLL_S)


def _show_progress(tasks: list[Task], done: bool) -> None:
    """On a terminal: one line on stderr, redrawn in place (never in a pipe or a log file)."""
    if not sys.stderr.isatty():
        return
    if done:
        click.echo("\r\033[K", nl=False, err=True)
        return
    counts = {s: sum(t["status"] == s for t in tasks) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    click.echo(f"\r\033[Kwaiting for {len(tasks)} task(s): {summary}", nl=False, err=True)


@cli.command()
@task_ids_argument
@click.pass_context
def cancel(ctx: click.Context, task_ids: tuple[int, ...]) -> None:
    """Cancel tasks.

    A running one is stopped on its agent, with every process it started."""
    refused = False
    for task_id in task_ids:
        try:
            task = client_of(ctx).cancel(task_id)
        except ServerUnreachable:
            raise
        except TaskSystemError as exc:
            click.echo(f"Error: {exc}", err=True)
            refused = True
            continue
        click.echo(f"{task['id']} {task['status']}")
    ctx.exit(1 if refused else 0)


@cli.command()
@task_id_argument
@json_option
@click.pass_context
def retry(ctx: click.Context, task_id: int, as_json: bool) -> None:
    """Run a failed or canceled task again.

    Every task that failed because of it is re-created too, waiting for the new one. Prints the new id."""
    result = client_of(ctx).retry(task_id)
    if as_json:
        print_json(result)
        return
    click.echo(result["task"]["id"])
    for copy in result["dependents"]:
        click.echo(f"also re-created {copy['retry_of']} as {copy['id']}", err=True)


@cli.command()
@json_option
@click.pass_context
def agents(ctx: click.Context, as_json: bool) -> None:
    """Show the agent tree.

    Each main agent (one per box), and below it one sub-agent per running task."""
    found = client_of(ctx).agents()
    if as_json:
        print_json(found)
        return
    for line in agent_lines(found):
        click.echo(line)


def main() -> None:
    """The console script `tq`: never a traceback (TQ_DEBUG=1 shows one for an unexpected error)."""
    try:
        cli.main(complete_var="_TQ_COMPLETE")
    except Exception as exc:
        if os.environ.get("TQ_DEBUG"):
            raise
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (TQ_DEBUG=1 shows where)", err=True)
        sys.exit(1)
