"""Tell whoever asked that a task finished: the server's NOTIFY_URLS and the task's own `notify` URLs.

transition() calls task_finished() once, when a task becomes completed, failed or canceled (a running
task that is canceled: at the cancel). The sends are queued after the commit, so a rolled-back end
tells nothing, and run on a worker pool (services/notification_worker.py), never in the request or
heartbeat that ended the task. Each (task, URL) is one call: read the task (the session closed before
any network), then up to NOTIFY_ATTEMPTS sends of NOTIFY_TIMEOUT_S each, NOTIFY_BACKOFF_S apart and
doubling. http(s) URLs get a POST of {"event": "task_finished", "task": <task JSON>}; any other scheme
goes through Apprise with a message for a person. A failure is logged (the URL without its secrets),
never fatal, and never changes the task. Pending sends live in memory: a server restart drops them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import requests
import structlog
from flask import Flask, current_app

from backend.extensions import db
from backend.models import Task
from backend.services import logs, task_views
from backend.services.notification_worker import WorkerPool
from backend.services.unit_of_work import after_commit
from backend.utils.notify_urls import is_webhook, shown_url

log = structlog.get_logger()

POOL_KEY = "task_system.notifications"
WORKERS = 8  # sends at once: each waits at most NOTIFY_TIMEOUT_S on a hung endpoint
MAX_PENDING = 10_000  # queued sends past this are dropped (logged), not kept without bound
TAIL_LINES = 10
TAIL_BYTES = 16 * 1024
MAX_LINE_CHARS = 500
EVENT = "task_finished"


class DeliveryFailed(Exception):
    """One send did not get through; the message says why, without the URL."""


@dataclass(frozen=True)
class Message:
    payload: dict  # the webhook's JSON
    title: str  # for Apprise: what a person reads
    body: str
    notify_type: str  # Apprise's: success, failure or warning


def start(app: Flask) -> None:
    """The senders, for the life of the process (create_app, with the other background jobs)."""
    app.extensions[POOL_KEY] = WorkerPool("notify", workers=WORKERS, max_pending=MAX_PENDING).start()


def task_finished(task: Task) -> None:
    """Queue the task's notifications for when this unit of work commits; nothing when none is wanted."""
    urls = list(dict.fromkeys([*current_app.config["NOTIFY_URLS"], *(task.notify or [])]))
    pool = current_app.extensions.get(POOL_KEY)
    if not urls or pool is None:  # no pool: an in-process test app without background jobs
        return
    app, task_id = current_app._get_current_object(), task.id
    after_commit(lambda: _submit(pool, app, task_id, urls))


def _submit(pool: WorkerPool, app: Flask, task_id: int, urls: list[str]) -> None:
    for url in urls:
        if not pool.submit(_deliver, pool, app, task_id, url):
            log.error("notification_dropped", task_id=task_id, url=shown_url(url), pending=pool.pending(),
                      reason="stopping" if pool.stopping.is_set() else "queue full")


def _deliver(pool: WorkerPool, app: Flask, task_id: int, url: str) -> None:
    """Send one task's message to one URL, retrying with backoff; log each failure and the give-up."""
    with app.app_context():  # its teardown closes the session: no read stays open during a send
        message = build_message(task_id)
    shown = shown_url(url)
    attempts, timeout_s, backoff_s = (app.config[k] for k in ("NOTIFY_ATTEMPTS", "NOTIFY_TIMEOUT_S", "NOTIFY_BACKOFF_S"))
    for attempt in range(1, attempts + 1):
        try:
            send(url, message, timeout_s)
        except (DeliveryFailed, requests.RequestException, OSError) as exc:
            error = str(exc) if isinstance(exc, DeliveryFailed) else type(exc).__name__  # theirs may hold the URL
        else:
            log.info("notification_sent", task_id=task_id, url=shown, attempt=attempt)
            return
        gave_up = attempt == attempts
        (log.error if gave_up else log.warning)(
            "notification_failed", task_id=task_id, url=shown, attempt=attempt, attempts=attempts,
            error=error, gave_up=gave_up)
        if gave_up or pool.stopping.wait(backoff_s * 2 ** (attempt - 1)):
            return


def send(url: str, message: Message, timeout_s: float) -> None:
    """One attempt; DeliveryFailed (or the transport's error) when it did not get through."""
    if is_webhook(url):
        # stream: its answer's body is never read (nor waited for); no redirects: a POST is not re-sent elsewhere
        with requests.post(url, json=message.payload, timeout=timeout_s, allow_redirects=False, stream=True) as response:
            if not 200 <= response.status_code < 300:
                raise DeliveryFailed(f"HTTP {response.status_code}")
    else:
        _send_apprise(url, message, timeout_s)


def _send_apprise(url: str, message: Message, timeout_s: float) -> None:
    import apprise  # only servers that use it pay for its import

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise DeliveryFailed("Apprise cannot use this URL (see its log line)")
    plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout_s
    if not plugin.notify(title=message.title, body=message.body, notify_type=message.notify_type):
        raise DeliveryFailed(f"{plugin.service_name} did not accept it (see Apprise's log line)")


def build_message(task_id: int) -> Message:
    """The task as it is now: its JSON, and for a person a title and a body with the log's last lines."""
    task = db.session.get(Task, task_id)
    data = task_views.task_json(task)
    title = f"Task {task.id} {task.name} {task.status}"
    body = "\n".join([_outcome(task), _duration(task.execution_time()),
                      *([f"Agent: {task.agent_id}"] if task.agent_id else []), "", *_log_tail_block(task.id)])
    kinds = {"completed": "success", "failed": "failure"}
    return Message({"event": EVENT, "task": data}, title, body, kinds.get(task.status, "warning"))


def _outcome(task: Task) -> str:
    """"Status: failed (exit code -15; killed by SIGTERM)": the reason left out when it only repeats the code."""
    code = f"exit code {task.exit_code}" if task.exit_code is not None else None
    details = [d for d in (code, task.status_reason) if d]
    return f"Status: {task.status}" + (f" ({'; '.join(dict.fromkeys(details))})" if details else "")


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "Took: never started"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return "Took: " + (f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s")


def _log_tail_block(task_id: int) -> list[str]:
    """The output's last TAIL_LINES lines as a terminal showed them (a progress bar's last state)."""
    page = logs.read_task_log(task_id, tail=TAIL_BYTES)
    lines = page.data.decode("utf-8", errors="replace").split("\n")
    if page.offset > 0:
        lines = lines[1:]  # the first one is cut
    lines = [line.rstrip("\r").rpartition("\r")[2][:MAX_LINE_CHARS] for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return ["(no output)"]
    return [f"Last {min(len(lines), TAIL_LINES)} lines of output:", *lines[-TAIL_LINES:]]
