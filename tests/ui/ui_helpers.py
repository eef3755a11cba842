"""Page helpers shared by the UI tests (selectors follow frontend/README.md's data-testids)."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Locator, Page, expect


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def screenshot(page: Page, path: Path, max_height: int = 4000) -> None:
    """A full-page screenshot with animations stopped. The app scrolls inside its main pane (the sidebar
    stays put), which `full_page` alone does not unroll, so the viewport grows to the content first."""
    size = page.viewport_size
    content = page.evaluate("() => Math.max(...['html', '.app-main'].map(s => document.querySelector(s)?.scrollHeight ?? 0))")
    taller = min(max_height, content) > size["height"]
    if taller:
        page.set_viewport_size({"width": size["width"], "height": min(max_height, content)})
    try:
        page.screenshot(path=str(path), full_page=True, animations="disabled")
    finally:
        if taller:
            page.set_viewport_size(size)


def fill_code(editor: Locator, text: str) -> None:
    """Replace a CodeMirror editor's text (the test id sits on the wrapper; typing goes to .cm-content)."""
    content = editor.locator(".cm-content")
    expect(content).to_be_visible()
    content.fill(text)


def code_lines(editor: Locator) -> Locator:
    return editor.locator(".cm-line")


def task_row(page: Page, task_id: int) -> Locator:
    return page.locator(f'tr[data-testid="task-row"][data-task-id="{task_id}"]')


def confirm_message_box(page: Page) -> None:
    box = page.locator(".el-message-box")
    expect(box).to_be_visible()
    box.locator(".el-button--primary").click()
    expect(box).to_be_hidden()


def log_text(page: Page) -> Locator:
    return page.get_by_test_id("log-text")


def exactly(text: str) -> re.Pattern:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")
