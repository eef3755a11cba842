"""Language in a real browser: English for an en-US browser, Chinese for zh-CN, and the sidebar switch."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.ui_helpers import exactly, screenshot

pytestmark = pytest.mark.ui


def test_language_switch_changes_menu_and_page_text(page: Page, api):
    page.goto("/tasks")
    nav = page.get_by_test_id("nav-tasks")
    expect(nav).to_have_text(exactly("Tasks"))
    expect(page.get_by_test_id("new-task-btn")).to_have_text(exactly("New task"))

    page.get_by_test_id("lang-zh").click()
    expect(nav).to_have_text(exactly("任务管理"))
    expect(page.get_by_test_id("nav-agents")).to_have_text(exactly("Agent 管理"))
    expect(page.get_by_test_id("nav-templates")).to_have_text(exactly("脚本模板"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    page.reload()  # the choice is kept
    expect(nav).to_have_text(exactly("任务管理"))

    page.get_by_test_id("lang-en").click()
    expect(nav).to_have_text(exactly("Tasks"))
    expect(page.get_by_test_id("nav-templates")).to_have_text(exactly("Script templates"))


@pytest.mark.browser_context_args(locale="zh-CN")
def test_chinese_browser_gets_chinese_pages(page: Page, api, artifacts):
    page.goto("/agents")
    expect(page.get_by_test_id("nav-tasks")).to_have_text(exactly("任务管理"))
    expect(page.locator(".page-header h2")).to_have_text("Agent 管理")
    card = page.locator('[data-agent-type="main"]').first
    expect(card.get_by_test_id("agent-simulated")).to_have_text("模拟 GPU")
    expect(card.get_by_test_id("gpu-bar")).to_have_count(2)
    screenshot(page, artifacts / "agents-zh.png")
