"""Fixtures for the browser tests: Debian's chromium (headless) driven by pytest-playwright against a real
`python app.py` and a real main agent with simulated GPUs, shared by the whole UI session.

The UI is built on demand (frontend/dist), every test gets a fresh browser context in English unless it
asks otherwise (`@pytest.mark.browser_context_args(locale="zh-CN")`), and tasks a test leaves unfinished
are canceled after it so they never reach the next test's agent.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT, AgentProcess, ServerProcess, _kill_leftover_task_processes
from tests.helpers import Api, wait_for

FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")  # the first skips a noisy wrapper
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1440, "height": 900}
UNFINISHED = "blocked,waiting,running"

# Auto-waiting assertions get a generous default: the machine is small and shared with other suites.
expect.set_options(timeout=15_000)


# -- the browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)
    if executable is None:
        pytest.fail("chromium not found at /usr/bin/chromium: install it with `apt-get install -y chromium` "
                    "(or `make browser`); Playwright cannot download browsers here")
    return {**browser_type_launch_args, "executable_path": executable, "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def built_ui() -> Path:
    """frontend/dist, built with `npm run build` when missing (node_modules installed first if need be)."""
    index = FRONTEND / "dist" / "index.html"
    if not index.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("frontend/dist/index.html is missing and npm is not installed: install Node.js ≥ 20.19 "
                        "and run `make frontend` (or `cd frontend && npm ci && npm run build`)")
        if not (FRONTEND / "node_modules").exists():
            _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
        _run([npm, "run", "build"])
        assert index.exists(), "`npm run build` finished but frontend/dist/index.html is still missing"
    return index.parent


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=FRONTEND, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` in frontend/ failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-3000:]}")


# -- one server and one agent for the whole UI session ----------------------------------------------

@pytest.fixture(scope="session")
def ui_server(built_ui, tmp_path_factory) -> ServerProcess:
    proc = ServerProcess(tmp_path_factory.mktemp("ui-data")).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="session")
def ui_api(ui_server: ServerProcess) -> Api:
    return Api(ui_server.url, ui_server.token)


@pytest.fixture(scope="session")
def ui_agent(ui_server: ServerProcess, ui_api: Api, tmp_path_factory) -> AgentProcess:
    """A real main agent (`--simulate-gpus 2x81920`, 4 cores), online before the first test uses it."""
    root = tmp_path_factory.mktemp("ui-agent")
    (root / "work").mkdir()
    agent = AgentProcess(ui_server, "ui-agent", root / "work", root / "state").start()
    wait_for(lambda: any(a["status"] == "online" and a["name"] == "ui-agent" for a in ui_api.get("/api/agents").json()),
             30, message="the UI tests' main agent to come online")
    yield agent
    agent.kill(signal.SIGTERM)
    agent.kill(signal.SIGKILL)
    _kill_leftover_task_processes(root)


@pytest.fixture(scope="session")
def base_url(ui_server: ServerProcess) -> str:
    """pytest-playwright's base_url: `page.goto("/tasks")` goes to the UI session's server."""
    return ui_server.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, base_url):
    """English by default (a test that needs another language sets it with the browser_context_args marker)."""
    return {**browser_context_args, "base_url": base_url, "locale": "en-US", "viewport": VIEWPORT}


@pytest.fixture
def api(ui_api: Api, ui_agent: AgentProcess) -> Api:
    """The API client for test set-up and checks; cancels whatever the test left unfinished."""
    yield ui_api
    for _ in range(50):
        left = ui_api.get("/api/tasks", params={"status": UNFINISHED, "page_size": 200}).json()["items"]
        if not left:
            break
        for task in left:
            ui_api.post(f"/api/tasks/{task['id']}/cancel")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ui/ (git-ignored): the screenshots of each page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
