"""The agents page shows a main agent's full disk on its card (the heartbeat's disk_problem), in
English and Chinese, and the warning goes once the agent reports space again."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from task_common import protocol as p
from tests.protocol_agent import ProtocolAgent
from tests.ui.ui_helpers import unique

pytestmark = pytest.mark.ui


def beat(agent: ProtocolAgent, disk_problem) -> None:
    message = agent.heartbeat_message().model_copy(update={"disk_problem": disk_problem})
    agent.transport.call(p.MAIN_HEARTBEAT_PATH, message, p.MainHeartbeatReply)


def test_agent_card_shows_a_full_disk_until_it_clears(page: Page, api, ui_server):
    agent = ProtocolAgent(ui_server.url, name=unique("ui-disk"), cpu_cores=0).register()
    problem = f"disk full on {agent.name}: /srv/agent/state"
    beat(agent, problem)
    page.goto("/agents")
    card = page.get_by_test_id(f"agent-card-{agent.agent_id}")
    expect(card.get_by_test_id("agent-disk-full")).to_have_text("Disk full")
    expect(card.get_by_test_id("agent-disk-problem")).to_contain_text(problem)

    beat(agent, None)
    page.reload()
    expect(card.get_by_test_id("agent-status")).to_be_visible()
    expect(card.get_by_test_id("agent-disk-problem")).to_have_count(0)


@pytest.mark.browser_context_args(locale="zh-CN")
def test_agent_card_says_disk_full_in_chinese(page: Page, api, ui_server):
    agent = ProtocolAgent(ui_server.url, name=unique("ui-disk-zh"), cpu_cores=0).register()
    beat(agent, f"disk full on {agent.name}: /srv/agent/state")
    page.goto("/agents")
    expect(page.get_by_test_id(f"agent-card-{agent.agent_id}").get_by_test_id("agent-disk-full")).to_have_text("磁盘已满")
