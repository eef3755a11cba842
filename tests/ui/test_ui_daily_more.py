"""More of a UI used every day, in a real browser and in both languages: a 50 MB log paged to its first
line, downloaded byte for byte, searched, its URLs links; the GPU-memory sizes the agents report (a
141 GiB H200 among them); form errors that clear as fixed and -1 refused; a failed task's reason in the
viewer's language; finished rows without Cancel."""
from __future__ import annotations

import hashlib
import re
import signal

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import AgentProcess
from tests.helpers import wait_for
from tests.ui.ui_helpers import fill_code, log_text, task_row, unique

pytestmark = pytest.mark.ui

LANGS = ["en", "zh"]
TEXT = {
    "en": {"whole": "Whole log", "part": "Showing bytes", "failed": "Task failed", "exit3": "Exit code 3",
           "canceled": "Canceled by a user", "dep_canceled": "Dependency {id} was canceled", "cpu_machine": "CPU (machine)",
           "whole_gpu": "Whole GPU", "minus_one": "-1 is not allowed: enter a whole number of 0 or more.",
           "two_and_half": "2.5 is not allowed: enter a whole number of 0 or more."},
    "zh": {"whole": "完整日志", "part": "显示第", "failed": "任务失败", "exit3": "退出码 3",
           "canceled": "已被用户取消", "dep_canceled": "依赖任务 {id} 已取消", "cpu_machine": "CPU（整机）",
           "whole_gpu": "整卡", "minus_one": "不允许 -1：请输入不小于 0 的整数。",
           "two_and_half": "不允许 2.5：请输入不小于 0 的整数。"},
}
BIG_LOG_BYTES = 50 * 1024 * 1024


def _in(page: Page, lang: str) -> Page:
    page.add_init_script(f"localStorage.setItem('task_system.locale', '{lang}')")
    return page


def _open_task(page: Page, task_id: int):
    page.goto(f"/tasks/{task_id}")
    dialog = page.get_by_test_id("task-detail-dialog")
    expect(dialog).to_be_visible()
    return dialog


@pytest.fixture(scope="module")
def big_log_task(ui_api, ui_agent):
    """A finished task whose log is 50 MB: a distinct first line, then `yes` lines, then a URL and a last line."""
    script = ("echo 'FIRST-LINE-OF-THE-BIG-LOG'; yes 'filler line of the big log' | head -c 52428800; "
              "echo; echo 'see http://127.0.0.1:9/report for the report'; echo 'LAST-LINE zebra-word'")
    task = ui_api.create_task(script, name=unique("ui-big-log"))
    ui_api.wait_status(task["id"], "completed", 240)
    return ui_api.task(task["id"])


@pytest.mark.parametrize("lang", LANGS)
def test_a_50_mb_log_pages_to_its_first_line_and_downloads_byte_for_byte(page: Page, api, big_log_task, lang, tmp_path):
    task_id = big_log_task["id"]
    size = big_log_task["log_size"]
    assert size > BIG_LOG_BYTES
    dialog = _open_task(_in(page, lang), task_id)
    panel = dialog.get_by_test_id("log-panel")
    expect(panel).to_have_attribute("data-next-offset", str(size), timeout=30_000)
    expect(log_text(page)).to_contain_text("LAST-LINE zebra-word")
    shown = panel.get_by_test_id("log-shown")
    expect(shown).to_have_attribute("data-partial", "true")
    expect(shown).to_contain_text(TEXT[lang]["part"])
    start = int(panel.get_attribute("data-start-offset"))
    assert 0 < size - start <= 128 * 1024
    assert log_text(page).text_content().startswith("filler line")  # the tail opens at a whole line

    # earlier moves every time, replacing the window (bounded) rather than growing it
    panel.get_by_test_id("log-earlier").click()
    expect(panel).not_to_have_attribute("data-start-offset", str(start))
    earlier = int(panel.get_attribute("data-start-offset"))
    assert earlier < start and int(panel.get_attribute("data-next-offset")) <= start
    expect(panel.get_by_test_id("log-end")).to_be_enabled()

    panel.get_by_test_id("log-start").click()
    expect(panel).to_have_attribute("data-start-offset", "0")
    expect(log_text(page)).to_contain_text("FIRST-LINE-OF-THE-BIG-LOG")
    assert len(log_text(page).text_content()) <= 128 * 1024
    expect(dialog.locator(".xterm-rows")).to_contain_text("FIRST-LINE-OF-THE-BIG-LOG")
    expect(panel.get_by_test_id("log-start")).to_be_disabled()

    panel.get_by_test_id("log-end").click()
    expect(panel).to_have_attribute("data-next-offset", str(size))
    expect(log_text(page)).to_contain_text("LAST-LINE zebra-word")

    with page.expect_download(timeout=120_000) as info:
        panel.get_by_test_id("log-download").click()
    path = tmp_path / "download.log"
    info.value.save_as(path)
    browser_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    server = api.get(f"/api/tasks/{task_id}/log/raw")
    assert len(server.content) == size
    assert browser_sha == hashlib.sha256(server.content).hexdigest()


@pytest.mark.parametrize("lang", LANGS)
def test_the_log_can_be_searched_and_its_urls_are_links(page: Page, api, lang):
    url = f"{api.base_url}/api/health"
    task = api.create_task(f"echo 'alpha'; echo 'the needle-word is here'; echo '{url} is the report'",
                           name=unique("ui-log-search"))
    api.wait_status(task["id"], "completed", 30)
    dialog = _open_task(_in(page, lang), task["id"])
    panel = dialog.get_by_test_id("log-panel")
    expect(log_text(page)).to_contain_text("needle-word")
    expect(panel.get_by_test_id("log-shown")).to_contain_text(TEXT[lang]["whole"])
    search = panel.get_by_test_id("log-search")
    search.fill("needle-word")
    search.press("Enter")
    expect(panel.get_by_test_id("log-search-state")).to_have_attribute("data-found", "true")
    search.fill("no-such-word-anywhere")
    search.press("Enter")
    expect(panel.get_by_test_id("log-search-state")).to_have_attribute("data-found", "false")
    expect(panel.get_by_test_id("log-search-none")).to_be_visible()

    row = dialog.locator(".xterm-rows > div", has_text="is the report").first
    expect(row).to_be_visible()
    box = row.bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] / 2)
    with page.expect_popup() as popup:
        page.mouse.click(box["x"] + 40, box["y"] + box["height"] / 2)
    assert popup.value.url.startswith(url)


@pytest.mark.parametrize("lang", LANGS)
def test_server_reasons_read_in_the_viewers_language_and_the_banner_says_the_code_once(page: Page, api, lang):
    failed = api.create_task("exit 3", name=unique("ui-reason-failed"))
    api.wait_status(failed["id"], "failed", 30)
    dialog = _open_task(_in(page, lang), failed["id"])
    alert = dialog.get_by_test_id("task-failed-alert")
    expect(alert.locator(".el-alert__title")).to_have_text(TEXT[lang]["failed"])  # the code is in the reason
    expect(alert.locator(".el-alert__description")).to_have_text(TEXT[lang]["exit3"])
    expect(dialog.get_by_test_id("task-detail-agent")).to_have_text("ui-agent")  # the agent by name, linked
    expect(dialog.get_by_test_id("task-detail-agent")).to_have_attribute("href", re.compile(r"/agents/"))

    first = api.create_task("sleep 60", name=unique("ui-reason-first"))
    api.wait_status(first["id"], "running", 30)
    second = api.create_task("true", name=unique("ui-reason-second"), depends_on=[first["id"]])
    api.post(f"/api/tasks/{first['id']}/cancel")
    api.wait_status(second["id"], "failed", 30)
    api.wait_status(first["id"], "canceled", 30)
    dialog = _open_task(page, first["id"])
    expect(dialog.get_by_test_id("task-status-reason")).to_have_text(TEXT[lang]["canceled"])
    dialog = _open_task(page, second["id"])
    expect(dialog.get_by_test_id("task-failed-alert").locator(".el-alert__description")).to_have_text(
        TEXT[lang]["dep_canceled"].format(id=first["id"]))


@pytest.mark.parametrize("lang", LANGS)
def test_finished_rows_offer_only_what_applies_and_the_table_fits_1024_px(page: Page, api, lang):
    done = api.create_task("true", name=unique("ui-rows-done"))
    api.wait_status(done["id"], "completed", 30)
    running = api.create_task("sleep 60", name=unique("ui-rows-running"))
    api.wait_status(running["id"], "running", 30)
    page.set_viewport_size({"width": 1024, "height": 768})
    _in(page, lang).goto("/tasks")
    expect(task_row(page, running["id"])).to_be_visible()
    expect(page.get_by_test_id(f"task-cancel-{running['id']}")).to_be_visible()
    expect(task_row(page, done["id"])).to_have_attribute("data-status", "completed")
    expect(page.get_by_test_id(f"task-cancel-{done['id']}")).to_have_count(0)
    body = page.get_by_test_id("task-table").locator(".el-table__body-wrapper .el-scrollbar__wrap").first
    assert body.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the task table scrolls sideways at 1024 px"
    status = page.get_by_test_id(f"task-status-{running['id']}")
    detail = page.get_by_test_id(f"task-detail-{running['id']}")
    assert status.bounding_box()["x"] + status.bounding_box()["width"] <= detail.bounding_box()["x"]


@pytest.mark.parametrize("lang", LANGS)
def test_the_cpu_figure_says_whose_it_is(page: Page, api, ui_agent, lang):
    _in(page, lang).goto("/agents")
    card = page.locator('[data-agent-type="main"][data-status="online"]').first
    cpu = card.get_by_test_id("agent-cpu").first
    expect(cpu).to_have_attribute("data-scope", "machine")
    expect(card.locator(".el-descriptions__label", has_text=TEXT[lang]["cpu_machine"]).first).to_be_visible()


@pytest.fixture
def h200_agent(ui_server, ui_api, tmp_path):
    """A second main agent with one simulated 143,771 MiB GPU (an H200's 140.4 GiB), draining so that it takes
    no task; stopped and forgotten afterwards."""
    (tmp_path / "work").mkdir()
    agent = AgentProcess(ui_server, unique("ui-h200"), tmp_path / "work", tmp_path / "state", cpu_cores=2,
                         simulate_gpus="1x143771").start()
    found = wait_for(lambda: next((a for a in ui_api.get("/api/agents").json()
                                   if a["name"] == agent.name and a["status"] == "online"), None),
                     60, message="the H200 agent to come online")
    ui_api.post(f"/api/agents/{found['id']}/drain")
    yield found
    agent.kill(signal.SIGTERM)
    agent.kill(signal.SIGKILL)
    try:
        wait_for(lambda: ui_api.request("DELETE", f"/api/agents/{found['id']}").status_code == 204, 90,
                 message="the H200 agent to be forgotten")
    except AssertionError:
        pass  # an offline agent left listed harms no later test (only online agents count)


def _new_task(page: Page):
    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    return dialog


def _fill_required(page: Page, dialog, name: str) -> None:
    dialog.get_by_test_id("task-form-name").fill(name)
    dialog.get_by_test_id("task-form-template").click()
    page.keyboard.type("custom")
    page.keyboard.press("Enter")
    fill_code(dialog.get_by_test_id("task-form-script"), "echo hi")


def _task_by_name(api, name: str) -> dict:
    return wait_for(lambda: next(iter(api.get("/api/tasks", params={"name": name}).json()["items"]), None),
                    30, message=f"task {name} to exist")


@pytest.mark.parametrize("lang", LANGS)
def test_gpu_memory_offers_the_agents_sizes_in_gib_and_clone_keeps_the_mib(page: Page, api, h200_agent, lang):
    _in(page, lang).goto("/tasks")
    dialog = _new_task(page)
    dialog.get_by_test_id("task-form-gpu-memory").click()
    items = page.locator(".task-form-gpu-memory-popper .el-select-dropdown__item")
    expect(items.first).to_contain_text(TEXT[lang]["whole_gpu"])
    expect(items.filter(has_text="140.4 GiB")).to_have_count(1)  # the H200: 143,771 MiB
    expect(items.filter(has_text="80.0 GiB")).to_have_count(1)  # the UI agent's 81,920 MiB
    assert "GB" not in re.sub(r"GiB", "", " ".join(items.all_text_contents()))
    items.filter(has_text="140.4 GiB").click()
    name = unique("ui-h200-task")
    _fill_required(page, dialog, name)
    dialog.get_by_test_id("task-form-gpu-count").locator("input").fill("1")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()
    task = _task_by_name(api, name)
    assert task["gpu_memory"] == 143771

    page.goto(f"/tasks/{task['id']}")
    page.get_by_test_id("task-detail-clone").click()
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog.get_by_test_id("task-form-gpu-memory")).to_contain_text("140.4 GiB")
    dialog.get_by_test_id("task-form-name").fill(name + "-clone")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()
    assert _task_by_name(api, name + "-clone")["gpu_memory"] == 143771  # exact, not rounded to GiB

    dialog = _new_task(page)
    dialog.get_by_test_id("task-form-gpu-memory").click()
    page.keyboard.type("20000 MiB")
    page.keyboard.press("Enter")
    expect(dialog.get_by_test_id("task-form-gpu-memory")).to_contain_text("19.5 GiB")
    name = unique("ui-custom-size")
    _fill_required(page, dialog, name)
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()
    assert _task_by_name(api, name)["gpu_memory"] == 20000


@pytest.mark.parametrize("lang", LANGS)
def test_form_errors_clear_as_fixed_minus_one_is_refused_and_ctrl_enter_submits(page: Page, api, lang):
    _in(page, lang).goto("/tasks")
    dialog = _new_task(page)
    expect(dialog.get_by_test_id("task-form-name")).to_be_focused()
    dialog.get_by_test_id("task-create-submit").click()
    errors = dialog.locator(".el-form-item__error")
    expect(errors).to_have_count(3)  # name, template, script
    dialog.get_by_test_id("task-form-name").fill("x")
    expect(errors).to_have_count(2)  # the name's error cleared as it was fixed

    cpu = dialog.get_by_test_id("task-form-cpu").locator("input")
    cpu.fill("-1")
    cpu.press("Tab")
    expect(cpu).to_have_value("-1")  # not silently changed
    dialog.get_by_test_id("task-create-submit").click()
    cpu_error = dialog.locator(".el-form-item", has=page.get_by_test_id("task-form-cpu")).locator(".el-form-item__error")
    expect(cpu_error).to_have_text(TEXT[lang]["minus_one"])
    below = dialog.locator(".el-form-item", has=page.get_by_test_id("task-form-gpu-memory"))
    assert cpu_error.bounding_box()["y"] + cpu_error.bounding_box()["height"] <= below.bounding_box()["y"] + 1
    cpu.fill("2.5")
    cpu.press("Tab")
    expect(cpu).to_have_value("2.5")
    expect(cpu_error).to_have_text(TEXT[lang]["two_and_half"])
    cpu.fill("2")
    cpu.press("Tab")
    expect(cpu_error).to_have_count(0)

    name = unique("ui-ctrl-enter")
    _fill_required(page, dialog, name)
    dialog.get_by_test_id("task-form-name").focus()
    page.keyboard.press("Control+Enter")
    expect(dialog).to_be_hidden()
    assert _task_by_name(api, name)["cpu_cores"] == 2
