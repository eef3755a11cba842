"""A UI a person uses every day, in a real browser and in both languages: six distinct status colours and
icons, the script editor arriving after its chunk failed to load (the plain text box working meanwhile),
filters and the open task in the URL surviving a reload, the page title, a 390 px phone layout with the
new-task dialog usable, dark mode switched and kept, the `n` and `/` keys, the cancel confirmation's
[Keep running] [Cancel task], and finished sub-agents folded under "N finished"."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import wait_for
from tests.ui.ui_helpers import fill_code, screenshot, task_row, unique

pytestmark = pytest.mark.ui

LANGS = ["en", "zh"]
TEXT = {
    "en": {"keep": "Keep running", "cancel_task": "Cancel task", "failed": "Failed", "tasks": "Tasks",
           "finished": "finished", "dark": "Dark", "new_task": "New task"},
    "zh": {"keep": "保留", "cancel_task": "取消任务", "failed": "失败", "tasks": "任务管理",
           "finished": "已结束", "dark": "深色", "new_task": "新建任务"},
}
STATUSES = ["blocked", "waiting", "running", "completed", "failed", "canceled"]
CODEMIRROR_CHUNK = re.compile(r"/assets/(codemirrorSetup|vendor-codemirror)-[^/]*\.js")


def _in(page: Page, lang: str) -> Page:
    """The page in `lang` (the saved choice, as the language switch keeps it), before the first load."""
    page.add_init_script(f"localStorage.setItem('task_system.locale', '{lang}')")
    return page


def _pick_custom_template(page: Page, dialog) -> None:
    dialog.get_by_test_id("task-form-template").click()
    page.keyboard.type("custom")
    page.keyboard.press("Enter")


@pytest.mark.parametrize("lang", LANGS)
def test_every_status_has_its_own_colour_and_icon_and_the_overview_filters(page: Page, api, lang):
    failed = api.create_task("exit 3", name=unique("ui-daily-failed"))
    api.wait_status(failed["id"], "failed", 30)
    _in(page, lang).goto("/tasks")
    overview = page.get_by_test_id("task-overview")
    looks = {}
    for status in STATUSES:
        tag = overview.get_by_test_id(f"overview-{status}").get_by_test_id("status-tag")
        expect(tag).to_have_attribute("data-status", status)
        looks[status] = tag.evaluate(
            "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color, getComputedStyle(el).borderColor,"
            " el.querySelector('svg path').getAttribute('d')]")
    assert len({look[0] for look in looks.values()}) == 6, looks  # six background colours
    assert len({look[3] for look in looks.values()}) == 6, looks  # six icons

    counts = api.get("/api/tasks/stats").json()["counts"]
    expect(overview.get_by_test_id("overview-failed")).to_have_attribute("data-count", str(counts["failed"]))
    expect(overview.get_by_test_id("overview-gpus")).to_have_attribute("data-total", "2")  # the agent's 2 GPUs
    overview.get_by_test_id("overview-failed").click()
    expect(page).to_have_url(re.compile(r"/tasks\?status=failed$"))
    expect(task_row(page, failed["id"])).to_have_attribute("data-status", "failed")
    expect(page.locator('tr[data-testid="task-row"]:not([data-status="failed"])')).to_have_count(0)
    expect(page).to_have_title(re.compile(TEXT[lang]["failed"]))


@pytest.mark.parametrize("lang", LANGS)
def test_the_editor_appears_after_a_failed_first_load_and_the_text_box_works_meanwhile(page: Page, api, lang):
    page.route(CODEMIRROR_CHUNK, lambda route: route.abort())  # the server unreachable for CodeMirror
    _in(page, lang).goto("/tasks")
    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    editor = dialog.get_by_test_id("task-form-script")
    fallback = editor.get_by_test_id("code-editor-fallback")
    expect(fallback).to_be_visible()
    expect(editor).to_have_attribute("data-editor", "fallback")
    expect(editor.get_by_test_id("code-editor-failed")).to_be_visible()  # retried with backoff, still failing
    name = unique("ui-daily-fallback")
    dialog.get_by_test_id("task-form-name").fill(name)
    _pick_custom_template(page, dialog)
    fallback.fill("echo typed-in-the-fallback")
    dialog.get_by_test_id("task-create-submit").click()  # "Script is required" must not block it
    expect(dialog).to_be_hidden()
    task = wait_for(lambda: next((t for t in api.get("/api/tasks", params={"name": name}).json()["items"]), None), 10,
                    message="the task submitted from the fallback text box")
    assert task["script_content"] == "echo typed-in-the-fallback"

    page.unroute(CODEMIRROR_CHUNK)  # the server is back: reopening the dialog loads CodeMirror
    page.get_by_test_id("new-task-btn").click()
    expect(editor.locator(".cm-content")).to_be_visible()
    expect(editor).to_have_attribute("data-editor", "codemirror")
    expect(editor.get_by_test_id("code-editor-fallback")).to_have_count(0)
    fill_code(editor, "echo in-codemirror")
    expect(editor.locator(".cm-line")).to_have_text(["echo in-codemirror"])


@pytest.mark.parametrize("lang", LANGS)
def test_filters_and_the_open_task_live_in_the_url_and_survive_a_reload(page: Page, api, lang):
    failed = api.create_task("exit 2", name=unique("ui-daily-url"))
    api.wait_status(failed["id"], "failed", 30)
    _in(page, lang).goto("/tasks?status=failed")
    expect(page.get_by_test_id("filter-status")).to_contain_text(TEXT[lang]["failed"])
    expect(task_row(page, failed["id"])).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("filter-status")).to_contain_text(TEXT[lang]["failed"])
    expect(page.locator('tr[data-testid="task-row"]:not([data-status="failed"])')).to_have_count(0)

    page.get_by_test_id(f"task-detail-{failed['id']}").click()
    dialog = page.get_by_test_id("task-detail-dialog")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/tasks/{failed['id']}\?status=failed$"))
    expect(page).to_have_title(re.compile(rf"#{failed['id']} {re.escape(failed['name'])}"))
    page.reload()
    expect(dialog.locator(".el-dialog__title")).to_contain_text(f"#{failed['id']}")
    dialog.locator(".el-dialog__headerbtn").click()
    expect(page).to_have_url(re.compile(r"/tasks\?status=failed$"))

    page.goto(f"/tasks/{failed['id']}")  # a shared link
    expect(dialog.locator(".el-dialog__title")).to_contain_text(f"#{failed['id']}")
    for _ in range(max(0, 11 - api.get("/api/tasks").json()["total"])):  # a second page of 10
        api.create_task("true", name=unique("ui-daily-page"))
    page.goto("/tasks?page=2&size=10")
    pagination = page.get_by_test_id("task-pagination")
    expect(pagination.locator(".el-pager .is-active")).to_have_text("2")
    expect(pagination.locator(".el-select")).to_contain_text("10")
    page.reload()
    expect(pagination.locator(".el-pager .is-active")).to_have_text("2")
    pagination.locator(".el-pager li.number").first.click()  # page 1
    expect(page).to_have_url(re.compile(r"/tasks\?size=10$"))


@pytest.mark.parametrize("lang", LANGS)
def test_a_phone_sized_screen_gets_a_menu_cards_and_a_full_screen_new_task_dialog(page: Page, api, artifacts, lang):
    api.create_task("echo phone", name=unique("ui-daily-phone"))
    page.set_viewport_size({"width": 390, "height": 844})
    _in(page, lang).goto("/tasks")
    expect(page.get_by_test_id("menu-button")).to_be_visible()
    expect(page.locator(".app-aside")).to_have_count(0)
    expect(page.get_by_test_id("task-cards")).to_be_visible()
    expect(page.get_by_test_id("task-table")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the side
    screenshot(page, artifacts / f"daily-phone-tasks-{lang}.png")

    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box and box["x"] == 0 and box["width"] == 390, box
    name = unique("ui-daily-phone-new")
    dialog.get_by_test_id("task-form-name").fill(name)
    _pick_custom_template(page, dialog)
    fill_code(dialog.get_by_test_id("task-form-script"), "echo from-a-phone")
    page.screenshot(path=str(artifacts / f"daily-phone-new-task-{lang}.png"), animations="disabled")
    submit = dialog.get_by_test_id("task-create-submit")
    submit.scroll_into_view_if_needed()
    submit.click()
    expect(dialog).to_be_hidden()
    wait_for(lambda: api.get("/api/tasks", params={"name": name}).json()["total"] == 1, 10,
             message="the task created on the phone-sized screen")

    page.get_by_test_id("menu-button").click()
    page.get_by_test_id("menu-drawer").get_by_test_id("nav-agents").click()
    expect(page).to_have_url(re.compile(r"/agents$"))
    expect(page.get_by_test_id("menu-drawer")).to_be_hidden()


@pytest.mark.parametrize("width", [1024])
def test_at_1024_px_nothing_clips(page: Page, api, artifacts, width):
    page.set_viewport_size({"width": width, "height": 768})
    page.goto("/tasks")
    expect(page.get_by_test_id("task-table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    main = page.locator(".app-main")
    assert main.evaluate("el => el.scrollWidth <= el.clientWidth"), "the tasks page scrolls sideways at 1024 px"
    screenshot(page, artifacts / "daily-1024-tasks.png")


@pytest.mark.parametrize("lang", LANGS)
def test_dark_mode_follows_the_system_switches_and_is_kept(page: Page, api, lang):
    page.emulate_media(color_scheme="dark")
    _in(page, lang).goto("/tasks")
    html = page.locator("html")
    expect(html).to_have_class(re.compile(r"\bdark\b"))  # auto: the system says dark
    page.get_by_test_id("theme-light").click()
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))
    page.reload()
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))  # the choice is kept over the system's
    page.emulate_media(color_scheme="light")
    expect(page.get_by_test_id("theme-dark")).to_have_text(TEXT[lang]["dark"])
    page.get_by_test_id("theme-dark").click()
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.reload()
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background != "rgb(255, 255, 255)"


@pytest.mark.parametrize("lang", LANGS)
def test_keys_n_and_slash_and_esc_and_the_sidebar_by_tab(page: Page, api, lang):
    _in(page, lang).goto("/tasks")
    expect(page.get_by_test_id("task-overview")).to_be_visible()
    page.keyboard.press("/")
    name_filter = page.get_by_test_id("filter-name")
    expect(name_filter).to_be_focused()
    page.keyboard.type("n")  # typed into the filter, not a shortcut
    expect(name_filter).to_have_value("n")
    expect(page.get_by_test_id("task-create-dialog")).to_be_hidden()
    name_filter.fill("")
    page.locator("h2").click()  # out of the field
    page.keyboard.press("n")
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".el-dialog__title")).to_have_text(TEXT[lang]["new_task"])
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.locator("body").click(position={"x": 5, "y": 5})
    for _ in range(6):  # the sidebar's links come first in the tab order
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('[data-testid=nav-agents]') !== null"):
            break
    else:
        pytest.fail("Tab never reached the sidebar's Agents link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/agents$"))


@pytest.mark.parametrize("lang", LANGS)
def test_cancel_asks_keep_running_or_cancel_task(page: Page, api, lang, tmp_path):
    task = api.create_task(f"while [ ! -e '{tmp_path / 'gate'}' ]; do sleep 0.1; done", name=unique("ui-daily-cancel"))
    api.wait_status(task["id"], "running", 30)
    _in(page, lang).goto("/tasks")
    page.get_by_test_id(f"task-cancel-{task['id']}").click()
    box = page.locator(".el-message-box")
    expect(box.locator(".el-message-box__btns .el-button")).to_have_text([TEXT[lang]["keep"], TEXT[lang]["cancel_task"]])
    box.get_by_role("button", name=TEXT[lang]["keep"]).click()
    expect(box).to_be_hidden()
    assert api.task(task["id"])["status"] == "running"
    page.get_by_test_id(f"task-cancel-{task['id']}").click()
    box.get_by_role("button", name=TEXT[lang]["cancel_task"]).click()
    expect(page.get_by_test_id(f"task-status-{task['id']}")).to_have_attribute("data-status", "canceled")


@pytest.mark.parametrize("lang", LANGS)
def test_finished_sub_agents_fold_under_a_count_and_a_link_unfolds_and_outlines_one(page: Page, api, lang):
    done = [api.create_task("echo done", name=unique("ui-daily-sub")) for _ in range(2)]
    for task in done:
        api.wait_status(task["id"], "completed", 30)
    main = next(a for a in api.get("/api/agents").json() if a["name"] == "ui-agent")
    finished = wait_for(lambda: [s for s in next(a for a in api.get("/api/agents").json() if a["id"] == main["id"])
                                 .get("sub_agents") or [] if s["status"] == "offline"] or None,
                        20, message="finished sub-agents listed under the main agent")
    _in(page, lang).goto("/agents")
    group = page.get_by_test_id(f"agent-group-{main['id']}")
    toggle = group.get_by_test_id(f"finished-toggle-{main['id']}")
    expect(toggle).to_contain_text(TEXT[lang]["finished"])
    expect(toggle).to_contain_text("▸")
    sub = finished[0]
    expect(group.get_by_test_id(f"agent-card-{sub['id']}")).to_have_count(0)  # folded
    toggle.click()
    row = group.get_by_test_id(f"agent-card-{sub['id']}")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-agent-type", "sub")
    assert row.bounding_box()["height"] < 60  # a compact row, not a card
    toggle.click()
    expect(row).to_have_count(0)

    page.goto(f"/agents/{sub['id']}")  # a link to one: unfolded and outlined
    expect(page.get_by_test_id(f"agent-card-{sub['id']}")).to_have_class(re.compile(r"\bhighlighted\b"))
    page.goto(f"/agents?agent={main['id']}")
    expect(page.locator(f'[data-agent-anchor="{main["id"]}"]')).to_have_attribute("data-highlighted", "true")
