"""Retry, clone, sweeps and the new task fields in a real browser: retry of a failed chain with its preview
and the links between old and new tasks, a clone that opens the form filled in, a 2×2 sweep's preview and
its four tasks, env / work dir / time limit / notify reaching the task, and the same form in Chinese."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.ui.ui_helpers import code_lines, exactly, fill_code, screenshot, task_row, unique

pytestmark = pytest.mark.ui


def _open_new_task_form(page: Page) -> Locator:
    page.goto("/tasks")
    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    return dialog


def _pick_custom_template(page: Page, dialog: Locator, label: str = "custom") -> None:
    dialog.get_by_test_id("task-form-template").click()
    page.keyboard.type(label)
    page.keyboard.press("Enter")


def _failed_chain(api, gate) -> list[dict]:
    """A → B → C where A fails once the chain exists, so B and C fail because of it."""
    prefix = unique("ui-chain")
    a = api.create_task(f"while [ ! -e '{gate}' ]; do sleep 0.05; done; exit 4", name=f"{prefix}-a")
    b = api.create_task("echo b", name=f"{prefix}-b", depends_on=[a["id"]])
    c = api.create_task("echo c", name=f"{prefix}-c", depends_on=[b["id"]])
    gate.touch()
    return [api.wait_status(t["id"], "failed", 30) for t in (a, b, c)]


def test_retry_failed_chain_shows_preview_and_links_old_and_new(page: Page, api, tmp_path, artifacts):
    a, b, c = _failed_chain(api, tmp_path / "gate")
    page.goto("/tasks")
    expect(task_row(page, c["id"])).to_have_attribute("data-status", "failed")
    page.get_by_test_id(f"task-retry-{a['id']}").click()

    dialog = page.get_by_test_id("task-retry-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("retry-preview").locator("tbody tr")).to_have_count(3)
    for task in (a, b, c):
        expect(dialog.get_by_test_id(f"retry-preview-{task['id']}")).to_be_visible()
    expect(dialog.get_by_test_id("task-form-name")).to_have_value(a["name"])
    expect(dialog.get_by_test_id("task-form-deps")).to_have_count(0)  # the server rewires dependencies
    fill_code(dialog.get_by_test_id("task-form-script"), "echo fixed")
    screenshot(page, artifacts / "task-retry.png")
    dialog.get_by_test_id("task-retry-submit").click()
    expect(dialog).to_be_hidden()

    old = {t["id"]: api.task(t["id"]) for t in (a, b, c)}
    a2, b2, c2 = (old[t["id"]]["retried_as"] for t in (a, b, c))
    assert None not in (a2, b2, c2), old
    assert api.task(a2)["retry_of"] == a["id"] and api.task(a2)["script_content"] == "echo fixed"
    assert api.task(b2)["depends_on"] == [a2] and api.task(b2)["retry_of"] == b["id"]
    assert api.task(c2)["depends_on"] == [b2] and api.task(c2)["script_content"] == "echo c"
    assert old[a["id"]]["status"] == "failed" and old[a["id"]]["script_content"] == a["script_content"]
    api.wait_status(c2, "completed", 30)

    # the dialog shows the new task; its links walk to the old one and along the new chain
    details = page.get_by_test_id("task-detail-dialog")
    expect(details.locator(".el-dialog__title")).to_contain_text(f"#{a2}")
    expect(details.get_by_test_id("task-detail-retry-of")).to_have_text(exactly(f"#{a['id']}"))
    expect(details.get_by_test_id("task-detail-dependents")).to_have_text(exactly(f"#{b2}"))
    screenshot(page, artifacts / "task-details-retry-links.png")
    details.get_by_test_id("task-detail-retry-of").get_by_test_id(f"task-link-{a['id']}").click()
    expect(details.locator(".el-dialog__title")).to_contain_text(f"#{a['id']}")
    expect(details.get_by_test_id("task-detail-retried-as")).to_have_text(exactly(f"#{a2}"))
    expect(details.get_by_test_id("task-detail-retry")).to_have_count(0)  # already retried
    details.get_by_test_id("task-detail-retried-as").get_by_test_id(f"task-link-{a2}").click()
    expect(details.locator(".el-dialog__title")).to_contain_text(f"#{a2}")
    details.locator(".el-dialog__headerbtn").click()
    expect(page.get_by_test_id(f"task-retry-{a['id']}")).to_have_count(0)


def test_clone_opens_the_new_task_form_filled_in(page: Page, api, tmp_path):
    name = unique("ui-clone")
    task = api.create_task("echo cloned", name=name, priority=2, cpu_cores=2, env={"LR": "3e-4"},
                           work_dir=str(tmp_path), time_limit_s=5400)
    api.wait_status(task["id"], "completed", 30)
    page.goto("/tasks")
    page.get_by_test_id(f"task-detail-{task['id']}").click()
    details = page.get_by_test_id("task-detail-dialog")
    expect(details.get_by_test_id("task-detail-time-limit")).to_have_text("1h30m")
    expect(details.get_by_test_id("task-detail-env")).to_have_text("LR=3e-4")
    details.get_by_test_id("task-detail-clone").click()

    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".el-dialog__title")).to_have_text(f"New task (copy of #{task['id']})")
    expect(dialog.get_by_test_id("task-form-name")).to_have_value(name)
    expect(code_lines(dialog.get_by_test_id("task-form-script"))).to_have_text(["echo cloned"])
    expect(dialog.get_by_test_id("task-form-cpu").locator("input")).to_have_value("2")
    expect(dialog.get_by_test_id("env-key")).to_have_value("LR")
    expect(dialog.get_by_test_id("env-value")).to_have_value("3e-4")
    expect(dialog.get_by_test_id("task-form-workdir")).to_have_value(str(tmp_path))
    expect(dialog.get_by_test_id("task-form-time-limit")).to_have_value("1h30m")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()

    items = api.get("/api/tasks", params={"name": name}).json()["items"]
    assert len(items) == 2, items
    clone = next(t for t in items if t["id"] != task["id"])
    fields = ("script_content", "priority", "cpu_cores", "env", "work_dir", "time_limit_s", "template_type")
    assert {f: clone[f] for f in fields} == {f: task[f] for f in fields}


def test_sweep_shows_its_size_and_names_then_makes_one_task_each(page: Page, api, artifacts):
    name = unique("ui-sweep")
    dialog = _open_new_task_form(page)
    dialog.get_by_test_id("task-form-name").fill(name)
    _pick_custom_template(page, dialog)
    fill_code(dialog.get_by_test_id("task-form-script"), "echo lr={{lr}} bs={{bs}}")
    expect(dialog.get_by_test_id("sweep-params")).to_be_visible()

    lr, bs = dialog.get_by_test_id("sweep-param-lr"), dialog.get_by_test_id("sweep-param-bs")
    lr.fill(",".join(str(i) for i in range(101)))
    bs.fill(",".join(str(i) for i in range(10)))
    expect(dialog.get_by_test_id("sweep-too-many")).to_contain_text("This makes 1010 tasks; a sweep makes at most 1000.")
    expect(dialog.get_by_test_id("task-create-submit")).to_be_disabled()

    lr.fill("1e-3, 1e-4")
    bs.fill("32,64")
    expect(dialog.get_by_test_id("sweep-count")).to_have_text("This will create 4 tasks")
    names = [f"{name} [lr={a}, bs={b}]" for a in ("1e-3", "1e-4") for b in ("32", "64")]
    expect(dialog.get_by_test_id("sweep-preview-name")).to_have_text(names)
    submit = dialog.get_by_test_id("task-create-submit")
    expect(submit).to_have_text(exactly("Create 4 tasks"))
    screenshot(page, artifacts / "task-sweep.png")
    submit.click()
    expect(dialog).to_be_hidden()

    items = api.get("/api/tasks", params={"name": name}).json()["items"]
    assert sorted(t["name"] for t in items) == sorted(names)
    by_name = {t["name"]: t for t in items}
    assert by_name[names[1]]["script_content"] == "echo lr=1e-3 bs=64"
    assert by_name[names[1]]["env"] == {"lr": "1e-3", "bs": "64"}
    for task in items:
        expect(task_row(page, task["id"])).to_be_visible()


def test_new_form_fields_reach_the_task(page: Page, api, tmp_path):
    name = unique("ui-fields")
    dialog = _open_new_task_form(page)
    dialog.get_by_test_id("task-form-name").fill(name)
    _pick_custom_template(page, dialog)
    fill_code(dialog.get_by_test_id("task-form-script"), 'echo "lr=$LR"')
    dialog.get_by_test_id("env-add").click()
    dialog.get_by_test_id("env-key").fill("TASK_LR")
    dialog.get_by_test_id("env-value").fill("3e-4")
    dialog.get_by_test_id("task-form-time-limit").fill("2 hours")
    dialog.get_by_test_id("task-create-submit").click()
    errors = dialog.locator(".el-form-item__error")
    expect(errors).to_have_text(["TASK_LR is set by the system and cannot be overridden.",
                                 "Write a duration such as 2h30m, 90m, 45s or 1d."])

    dialog.get_by_test_id("env-key").fill("LR")
    dialog.get_by_test_id("env-add").click()
    dialog.get_by_test_id("env-key").nth(1).fill("EPOCHS")
    dialog.get_by_test_id("env-value").nth(1).fill("3")
    dialog.get_by_test_id("task-form-workdir").fill(str(tmp_path))
    dialog.get_by_test_id("task-form-time-limit").fill("2h30m")
    dialog.get_by_test_id("task-form-notify").fill("http://127.0.0.1:9/hook")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()

    items = api.get("/api/tasks", params={"name": name}).json()["items"]
    assert len(items) == 1, items
    task = items[0]
    assert task["env"] == {"LR": "3e-4", "EPOCHS": "3"}
    assert task["work_dir"] == str(tmp_path)
    assert task["time_limit_s"] == 9000
    assert task["notify"] == ["http://127.0.0.1:9/hook"]

    page.get_by_test_id(f"task-detail-{task['id']}").click()
    details = page.get_by_test_id("task-detail-dialog")
    expect(details.get_by_test_id("task-detail-time-limit")).to_have_text("2h30m")
    expect(details.get_by_test_id("task-detail-workdir")).to_have_text(str(tmp_path))
    expect(details.get_by_test_id("task-detail-env")).to_contain_text("LR=3e-4")
    expect(details.get_by_test_id("task-detail-notify")).to_have_text("http://127.0.0.1:9/hook")


@pytest.mark.browser_context_args(locale="zh-CN")
def test_chinese_form_sweep_and_retry_are_translated(page: Page, api, tmp_path):
    a, _, _ = _failed_chain(api, tmp_path / "gate")
    dialog = _open_new_task_form(page)
    for label in ("环境变量", "工作目录", "时间限制", "通知地址"):
        expect(dialog.locator(".el-form-item__label", has_text=label)).to_be_visible()
    expect(dialog.get_by_test_id("env-add")).to_have_text(exactly("添加变量"))
    fill_code(dialog.get_by_test_id("task-form-script"), "echo {{seed}}")
    dialog.get_by_test_id("sweep-param-seed").fill("1, 2, 3")
    expect(dialog.get_by_test_id("sweep-count")).to_have_text("将创建 3 个任务")
    expect(dialog.get_by_test_id("task-create-submit")).to_have_text(exactly("创建 3 个任务"))
    dialog.get_by_test_id("task-create-cancel").click()

    retry = page.get_by_test_id(f"task-retry-{a['id']}")
    expect(retry).to_have_text(exactly("重试"))
    retry.click()
    retry_dialog = page.get_by_test_id("task-retry-dialog")
    expect(retry_dialog).to_contain_text("将重新创建以下 3 个任务：")
    expect(retry_dialog.get_by_test_id("task-retry-submit")).to_have_text(exactly("重试 3 个任务"))
    expect(retry_dialog.get_by_test_id(f"retry-preview-{a['id']}")).to_have_text("重试的任务（字段见下方）")


# The browser's Notification, recorded instead of shown (headless chromium has no notification centre);
# the permission, once given, is kept across reloads as a browser keeps it.
RECORD_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = class {
  static get permission() { return sessionStorage.getItem('test.permission') || 'default'; }
  static async requestPermission() { sessionStorage.setItem('test.permission', 'granted'); return 'granted'; }
  constructor(title, options) { window.__notifications.push({ title, body: options && options.body }); }
};
"""


def test_desktop_notification_when_a_task_submitted_here_finishes(page: Page, api):
    page.add_init_script(RECORD_NOTIFICATIONS)
    name = unique("ui-notify")
    page.goto("/tasks")
    page.get_by_test_id("notify-toggle").click()
    expect(page.get_by_test_id("notify-toggle")).to_have_class(re.compile(r"\bis-checked\b"))
    page.reload()  # the choice is kept
    expect(page.get_by_test_id("notify-toggle")).to_have_class(re.compile(r"\bis-checked\b"))
    dialog = _open_new_task_form(page)
    dialog.get_by_test_id("task-form-name").fill(name)
    _pick_custom_template(page, dialog)
    fill_code(dialog.get_by_test_id("task-form-script"), "exit 2")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()

    task_id = api.get("/api/tasks", params={"name": name}).json()["items"][0]["id"]
    api.wait_status(task_id, "failed", 30)
    page.wait_for_function("() => window.__notifications.length > 0", timeout=15_000)
    notes = page.evaluate("() => window.__notifications")
    assert notes == [{"title": f"Task #{task_id} Failed", "body": f"{name}\nexit code 2"}]
