"""Long life: nothing the server keeps per task outlives the task's activity, and logs rotate."""
from __future__ import annotations

import subprocess
import sys
import threading

from backend.services import logs, signals
from tests.conftest import ROOT


def test_task_log_locks_are_dropped_after_each_write_even_when_contended(app):
    """Eight threads resend the same chunks of three logs at once (as retries do): each log ends up
    exactly once, and no lock is left behind."""
    content = {task_id: b"".join(f"task {task_id} line {i}\n".encode() for i in range(100)) for task_id in (1, 2, 3)}
    barrier = threading.Barrier(8)

    def resend(task_id: int) -> None:
        with app.app_context():
            barrier.wait()
            for start in range(0, len(content[task_id]), 64):
                logs.append_task_log(task_id, start, content[task_id][start:start + 64])

    threads = [threading.Thread(target=resend, args=(t % 3 + 1,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        assert logs.held_log_locks() == 0
        for task_id, expected in content.items():
            assert open(logs.log_path(task_id), "rb").read() == expected


def test_signal_topics_exist_only_while_watched_and_no_wakeup_is_missed():
    topic = signals.task_topic(424242)
    signals.notify(topic)  # nobody watches: nothing is kept
    assert signals.watched_topics() == 0
    with signals.Watch(topic) as watch:
        signals.notify(topic)  # before the wait: still seen
        assert watch.wait(5.0) is True
        assert watch.wait(0.05) is False
        woke = threading.Event()

        def waiter():
            with signals.Watch(topic) as other:
                started.set()
                if other.wait(5.0):
                    woke.set()

        started = threading.Event()
        thread = threading.Thread(target=waiter)
        thread.start()
        started.wait(5.0)
        signals.notify(topic)
        thread.join(5.0)
        assert woke.is_set()
    assert signals.watched_topics() == 0
    for task_id in range(1000):  # a thousand finished tasks leave nothing behind
        with signals.Watch(signals.task_topic(task_id)):
            signals.notify(signals.task_topic(task_id))
    assert signals.watched_topics() == 0


def test_system_log_rotates_by_size_and_keeps_a_few_files(tmp_path):
    code = ("import structlog; from task_common.logging import configure_logging\n"
            f"configure_logging('server', {str(tmp_path)!r}, rotate_bytes=4000, keep_files=3)\n"
            "log = structlog.get_logger()\n"
            "for i in range(2000): log.info('task_created', task_id=i)\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60,
                   stdin=subprocess.DEVNULL, capture_output=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["server.log", "server.log.1", "server.log.2", "server.log.3"]
    assert all((tmp_path / n).stat().st_size <= 4000 + 200 for n in names)
    assert '"task_id": 1999' in (tmp_path / "server.log").read_text()
