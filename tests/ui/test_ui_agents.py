"""The agents page in a real browser: the main agent's card with its simulated GPUs as bars, the
sub-agent card that appears under it while a task runs, and its Drain / Resume buttons."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import wait_for
from tests.ui.ui_helpers import screenshot, unique

pytestmark = pytest.mark.ui


def test_agents_page_shows_main_agent_gpu_bars_and_a_running_sub_agent(page: Page, api, artifacts):
    main = next(a for a in api.get("/api/agents").json() if a["name"] == "ui-agent")
    task = api.create_task("sleep 60", name=unique("ui-agents"), gpu_count=1)
    api.wait_status(task["id"], "running", 30)
    page.goto("/agents")

    group = page.get_by_test_id(f"agent-group-{main['id']}")
    card = group.get_by_test_id(f"agent-card-{main['id']}")
    expect(card).to_have_attribute("data-agent-type", "main")
    expect(card).to_have_attribute("data-status", "online")
    expect(card.get_by_test_id("agent-simulated")).to_have_text("Simulated GPUs")
    bars = card.get_by_test_id("gpu-bar")
    expect(bars).to_have_count(2)
    for index in (0, 1):
        bar = card.locator(f'[data-testid="gpu-bar"][data-gpu-index="{index}"]')
        expect(bar.locator(".el-progress")).to_be_visible()
        expect(bar).to_contain_text("simulated")
        expect(bar.get_by_test_id("gpu-memory")).to_contain_text("80")  # 81920 MiB total
    expect(card.get_by_test_id("agent-cores")).to_have_text("1 / 4")

    # The sub-agent running the task (recently finished ones of earlier tests may be listed too).
    sub_id = wait_for(lambda: next((s["id"] for m in api.get("/api/agents").json() for s in m.get("sub_agents") or []
                                    if s.get("task_id") == task["id"] and s["status"] == "online"), None),
                      20, message=f"an online sub-agent for task {task['id']}")
    sub = group.get_by_test_id(f"agent-card-{sub_id}")
    expect(sub).to_have_attribute("data-agent-type", "sub")
    expect(sub).to_have_attribute("data-status", "online")
    link = sub.get_by_test_id(f"agent-task-link-{sub_id}")
    expect(link).to_have_text(f"#{task['id']}")
    expect(sub.get_by_test_id("gpu-bar")).to_have_count(1)  # the one GPU given to the task
    screenshot(page, artifacts / "agents.png")

    link.click()  # opens the task's details
    expect(page.get_by_test_id("task-detail-dialog").get_by_test_id("task-detail-status")).to_have_attribute(
        "data-status", "running")


def test_drain_button_marks_the_agent_draining_and_resume_undoes_it(page: Page, api):
    main = next(a for a in api.get("/api/agents").json() if a["name"] == "ui-agent")

    def draining() -> bool:
        return api.get(f"/api/agents/{main['id']}").json()["draining"]

    assert draining() is False
    page.goto("/agents")
    card = page.get_by_test_id(f"agent-card-{main['id']}")
    try:
        card.get_by_test_id("agent-drain").click()
        expect(card.get_by_test_id("agent-draining")).to_have_text("Draining")
        expect(card).to_have_attribute("data-draining", "true")
        expect(card.get_by_test_id("agent-forget")).to_have_count(0)  # online: nothing to forget
        wait_for(draining, 10, message="the API to show the agent draining")

        card.get_by_test_id("agent-resume").click()
        expect(card.get_by_test_id("agent-draining")).to_have_count(0)
        expect(card.get_by_test_id("agent-drain")).to_be_visible()
        wait_for(lambda: draining() is False, 10, message="the API to show the agent resumed")
    finally:
        api.post(f"/api/agents/{main['id']}/resume")  # the session's agent takes tasks for the next tests
