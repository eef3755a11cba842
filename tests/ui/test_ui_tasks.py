"""Templates and tasks pages in a real browser: add a template, start a task from it and watch its log
arrive live, the new-task form's own checks, a failed task's alert, cancelling, ANSI colours, and output
that is not UTF-8."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.ui_helpers import code_lines, confirm_message_box, fill_code, log_text, screenshot, task_row, unique

pytestmark = pytest.mark.ui


def _task_id_by_name(api, name: str) -> int:
    items = api.get("/api/tasks", params={"name": name}).json()["items"]
    assert len(items) == 1, items
    return items[0]["id"]


def test_add_template_lists_it_with_highlighted_script(page: Page, api, artifacts):
    name = unique("ui-hello")
    script = 'for i in 1 2 3; do\n  echo "hello $i"\ndone'
    page.goto("/templates")
    page.get_by_test_id("template-add-btn").click()
    dialog = page.get_by_test_id("template-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("template-form-name").fill(name)
    fill_code(dialog.get_by_test_id("template-form-script"), script)
    dialog.get_by_test_id("template-form-submit").click()
    expect(dialog).to_be_hidden()

    card = page.locator(f'[data-testid^="template-card-"][data-name="{name}"]')
    expect(card.get_by_test_id("template-name")).to_have_text(name)
    lines = code_lines(card.get_by_test_id("template-script"))
    expect(lines).to_have_text(["for i in 1 2 3; do", '  echo "hello $i"', "done"])
    # Highlighted: the bash mode splits the line into styled token spans (class names are generated).
    expect(lines.first.locator("span").first).to_be_visible()
    assert any(t["name"] == name and t["script_content"] == script for t in api.get("/api/templates").json())
    screenshot(page, artifacts / "templates.png")


def test_task_from_template_streams_its_log_live(page: Page, api, artifacts, tmp_path):
    template = unique("ui-lines")
    # Prints line i, then waits for the test's go-ahead (file gate-i), so each line is surely shown
    # while the task still runs and before the next one exists.
    script = (f'for i in 1 2 3; do\n  echo "line $i"\n  while [ ! -e "{tmp_path}/gate-$i" ]; do sleep 0.05; done\n'
              '  sleep 0.2\ndone')
    resp = api.post("/api/templates", json={"name": template, "script_content": script})
    assert resp.status_code == 201, resp.text
    name = unique("ui-live")

    page.goto("/tasks")
    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("task-form-name").fill(name)
    dialog.get_by_test_id("task-form-template").click()
    page.locator(".task-form-template-popper .el-select-dropdown__item").filter(has_text=template).click()
    expect(code_lines(dialog.get_by_test_id("task-form-script")).first).to_have_text("for i in 1 2 3; do")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog).to_be_hidden()

    task_id = _task_id_by_name(api, name)
    row = task_row(page, task_id)
    expect(row).to_contain_text(template)
    api.wait_status(task_id, "running", 30)
    page.get_by_test_id(f"task-detail-{task_id}").click()

    details = page.get_by_test_id("task-detail-dialog")
    status = details.get_by_test_id("task-detail-status")
    panel = details.get_by_test_id("log-panel")
    terminal = details.locator(".xterm-rows")
    expected = ""
    for i in (1, 2, 3):
        expected += f"line {i}\n"
        expect(log_text(page)).to_have_text(expected)  # exactly what has been printed so far
        expect(terminal).to_contain_text(f"line {i}")
        expect(panel).to_have_attribute("data-stream-state", "live")
        expect(status).to_have_attribute("data-status", "running")
        if i == 2:
            screenshot(page, artifacts / "task-details-log.png")
        (tmp_path / f"gate-{i}").touch()
    expect(status).to_have_attribute("data-status", "completed")
    expect(panel).to_have_attribute("data-stream-state", "closed")
    expect(log_text(page)).to_have_text(expected)

    details.locator(".el-dialog__headerbtn").click()
    expect(details).to_be_hidden()
    expect(row).to_have_attribute("data-status", "completed")
    screenshot(page, artifacts / "tasks.png")


def test_new_task_form_refuses_blank_name_and_unknown_dependency(page: Page, api):
    before = api.get("/api/tasks").json()["total"]
    page.goto("/tasks")
    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    dialog.get_by_test_id("task-form-template").click()
    page.keyboard.type("custom")
    page.keyboard.press("Enter")
    fill_code(dialog.get_by_test_id("task-form-script"), "echo hi")

    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog.locator(".el-form-item__error")).to_have_text(["Name is required."])

    dialog.get_by_test_id("task-form-name").fill("ui-deps")
    dialog.get_by_test_id("task-form-deps").fill("99999")
    dialog.get_by_test_id("task-create-submit").click()
    expect(dialog.locator(".el-form-item__error")).to_have_text(["No such tasks: 99999"])
    expect(dialog).to_be_visible()
    assert api.get("/api/tasks").json()["total"] == before  # nothing was sent


def test_failed_task_details_show_red_alert_with_exit_code(page: Page, api):
    task = api.create_task("echo boom; exit 3", name=unique("ui-boom"))
    api.wait_status(task["id"], "failed", 30)
    page.goto("/tasks")
    expect(task_row(page, task["id"])).to_have_attribute("data-status", "failed")
    page.get_by_test_id(f"task-detail-{task['id']}").click()

    alert = page.get_by_test_id("task-failed-alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_class(re.compile(r"\bel-alert--error\b"))
    expect(alert.locator(".el-alert__title")).to_have_text("Task failed")  # the reason names the code
    expect(alert.locator(".el-alert__description")).to_have_text("Exit code 3")  # the status_reason, translated
    expect(log_text(page)).to_have_text("boom\n")


def test_cancel_running_task_from_the_table(page: Page, api):
    task = api.create_task("sleep 60", name=unique("ui-sleep"))
    api.wait_status(task["id"], "running", 30)
    page.goto("/tasks")
    row = task_row(page, task["id"])
    expect(row).to_have_attribute("data-status", "running")
    page.get_by_test_id(f"task-cancel-{task['id']}").click()
    confirm_message_box(page)

    expect(row).to_have_attribute("data-status", "canceled")
    expect(page.get_by_test_id(f"task-status-{task['id']}")).to_have_attribute("data-status", "canceled")
    expect(page.get_by_test_id(f"task-cancel-{task['id']}")).to_have_count(0)  # finished: no Cancel
    assert api.task(task["id"])["status"] == "canceled"


def test_ansi_coloured_line_renders_as_text_in_the_terminal(page: Page, api):
    script = r"printf '\033[31mRED-WORD\033[0m plain-word\n'"
    task = api.create_task(script, name=unique("ui-ansi"))
    api.wait_status(task["id"], "completed", 30)
    page.goto("/tasks")
    page.get_by_test_id(f"task-detail-{task['id']}").click()

    expect(log_text(page)).to_have_text("\x1b[31mRED-WORD\x1b[0m plain-word\n")  # the raw bytes
    rows = page.get_by_test_id("task-detail-dialog").locator(".xterm-rows")
    expect(rows).to_contain_text("RED-WORD plain-word")  # escapes interpreted, not printed
    expect(rows).not_to_contain_text("[31m")
    red = rows.locator("span", has_text="RED-WORD").last
    plain = rows.locator("span", has_text="plain-word").last
    assert red.evaluate("e => getComputedStyle(e).color") != plain.evaluate("e => getComputedStyle(e).color")


def test_live_log_shows_output_that_is_not_utf8_intact(page: Page, api, tmp_path):
    """Each line has an invalid byte (0xff), which the log shows as U+FFFD; the stream resumes from the
    byte offsets the server gives, so no line is cut, garbled or shown twice."""
    lines = 200
    gate = tmp_path / "gate"
    script = (f"while [ ! -e '{gate}' ]; do sleep 0.05; done\n"
              f"for i in $(seq 1 {lines}); do printf 'line %d \\xff 中 ok\\n' \"$i\"; "
              "[ $((i % 20)) -eq 0 ] && sleep 0.2; done; true")
    task = api.create_task(script, name=unique("ui-bytes"))
    api.wait_status(task["id"], "running", 30)
    page.goto("/tasks")
    page.get_by_test_id(f"task-detail-{task['id']}").click()
    panel = page.get_by_test_id("task-detail-dialog").get_by_test_id("log-panel")
    expect(panel).to_have_attribute("data-stream-state", "live")
    gate.touch()  # the output arrives while the log is open, in many frames

    api.wait_status(task["id"], "completed", 30)
    size = api.task(task["id"])["log_size"]
    expected = "".join(f"line {i} \ufffd 中 ok\n" for i in range(1, lines + 1))
    assert size == len(expected.encode()) - 2 * lines  # U+FFFD is 3 bytes, the 0xff it stands for 1
    expect(panel).to_have_attribute("data-next-offset", str(size))
    assert log_text(page).text_content() == expected
    expect(page.get_by_test_id("task-detail-dialog").locator(".xterm-rows")).to_contain_text(f"line {lines} \ufffd 中 ok")
    # the download link gives the stored bytes themselves, the 0xff included
    href = panel.get_by_test_id("log-download").get_attribute("href")
    assert api.get(href).content == b"".join(b"line %d \xff \xe4\xb8\xad ok\n" % i for i in range(1, lines + 1))
