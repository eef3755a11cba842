"""Seeing what runs, in a real browser: a tqdm-like bar's percent and ETA in the list and the details, the
resource charts of a running task, why a task waits (the list, the details, its log panel) and the form's
warning before submitting a task no agent could run, the GPU reservations on the agent card for a shared and
a whole-GPU task, and the dependency graph of a 3-task chain with clickable nodes; and the same labels in
Chinese."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.helpers import wait_for
from tests.ui.ui_helpers import screenshot, task_row, unique

pytestmark = pytest.mark.ui

# A tqdm-like bar redrawn after \r every 0.1 s for about 60 s (tqdm itself may not be in the task's env).
TQDM_LIKE = r"""for i in $(seq 1 600); do
  n=$(( i * 1000 / 600 )); printf '\r %d%%|####5     | %d/1000 [00:05<00:06, 80.0it/s]' $(( n / 10 )) $n
  sleep 0.1
done
echo"""
BIG = 64  # cores: more than the UI tests' agent (4 cores) has


def _details(page: Page) -> Locator:
    dialog = page.get_by_test_id("task-detail-dialog")
    expect(dialog).to_be_visible()
    return dialog


def _main_agent(api) -> dict:
    return next(a for a in api.get("/api/agents").json() if a["name"] == "ui-agent")


def _wait_reason(api, task_id: int, prefix: str) -> dict:
    return wait_for(lambda: (t := api.task(task_id))["status_reason"] and t["status_reason"].startswith(prefix) and t,
                    30, message=f"task {task_id}'s reason to start with {prefix!r}")


def test_progress_bar_eta_and_resource_charts_of_a_running_task(page: Page, api, artifacts):
    task = api.create_task(TQDM_LIKE, name=unique("ui-progress"))
    api.wait_status(task["id"], "running", 30)
    page.goto("/tasks")

    progress = page.get_by_test_id(f"task-progress-{task['id']}")
    expect(progress.locator(".el-progress")).to_be_visible()
    pattern = re.compile(r"^\d{1,3}% · \d+/1000 · ETA 6s · 80\.0 it/s$")
    expect(progress.get_by_test_id("task-progress-text")).to_have_text(pattern)
    first = float(progress.get_attribute("data-percent"))
    expect(progress).not_to_have_attribute("data-percent", str(progress.get_attribute("data-percent")))  # live
    assert float(progress.get_attribute("data-percent")) > first

    page.get_by_test_id(f"task-detail-{task['id']}").click()
    details = _details(page)
    expect(details.get_by_test_id("task-detail-progress").get_by_test_id("task-progress-text")).to_have_text(pattern)
    expect(details.get_by_test_id("log-state")).to_have_text("Live")

    charts = details.get_by_test_id("usage-charts")
    for chart in ("usage-chart-cpu", "usage-chart-memory"):
        expect(charts.get_by_test_id(chart).locator("canvas")).to_have_count(1)
    expect(details.get_by_test_id("usage-chart-memory").get_by_text("Memory (MiB)")).to_be_visible()
    # the charts reload while it runs: more samples arrive
    seen = int(charts.get_attribute("data-samples"))
    wait_for(lambda: int(charts.get_attribute("data-samples")) > max(seen, 1), 30,
             message="more usage samples in the open details")
    assert int(charts.get_by_test_id("usage-chart-cpu").get_attribute("data-points")) >= 2
    screenshot(page, artifacts / "task-progress-usage.png")


def test_form_warns_before_submitting_a_task_no_agent_can_run_and_the_list_says_why_it_waits(page: Page, api, artifacts):
    page.goto("/tasks")
    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("task-capacity-warning")).to_have_count(0)
    cpu = dialog.get_by_test_id("task-form-cpu").locator("input")
    cpu.fill(str(BIG))
    cpu.blur()
    warning = dialog.get_by_test_id("task-capacity-warning")
    expect(warning).to_contain_text(re.compile(
        r"No online agent can run this task: the largest has \d+ cores, \d+ GPUs, \d+ GiB per GPU\."))
    cpu.fill("1")
    cpu.blur()
    expect(warning).to_have_count(0)
    cpu.fill(str(BIG))
    cpu.blur()
    expect(warning).to_be_visible()
    dialog.get_by_test_id("task-form-name").fill(name := unique("ui-too-big"))
    dialog.get_by_test_id("task-form-template").click()
    page.keyboard.type("custom")
    page.keyboard.press("Enter")
    dialog.locator(".cm-content").fill("echo never")
    screenshot(page, artifacts / "task-form-capacity-warning.png")
    dialog.get_by_test_id("task-create-submit").click()  # a warning, not a refusal
    expect(dialog).to_be_hidden()

    task = api.get("/api/tasks", params={"name": name}).json()["items"][0]
    assert task["cpu_cores"] == BIG and task["status"] == "waiting"
    _wait_reason(api, task["id"], "no online agent can run it (largest:")
    reason = page.get_by_test_id(f"task-reason-{task['id']}")
    expect(reason).to_have_text("No agent can run it")
    expect(reason).to_have_attribute("data-full", re.compile(r"^No online agent can run it \(largest: \d+ cores"))
    reason.locator(".reason").hover()
    expect(page.locator(".el-popper", has_text="No online agent can run it (largest:")).to_be_visible()

    page.get_by_test_id(f"task-detail-{task['id']}").click()
    details = _details(page)
    expect(details.get_by_test_id("task-status-reason")).to_contain_text("No online agent can run it (largest:")
    state = details.get_by_test_id("log-state")
    expect(state).to_have_text(re.compile(r"^Not started yet: No online agent can run it \(largest: "))
    expect(state).not_to_have_text(re.compile("Live"))
    expect(details.get_by_test_id("task-detail-usage")).to_have_count(0)  # nothing ran yet
    screenshot(page, artifacts / "task-waiting-reason.png")


def test_agent_card_shows_gpu_reservations_of_a_shared_and_a_whole_gpu_task(page: Page, api, artifacts):
    shared = api.create_task("sleep 120", name=unique("ui-shared-gpu"), gpu_count=1, gpu_memory=20480)
    whole = api.create_task("sleep 120", name=unique("ui-whole-gpu"), gpu_count=1, gpu_memory=0)
    shared, whole = (api.wait_status(t["id"], "running", 30) for t in (shared, whole))
    (shared_gpu,), (whole_gpu,) = shared["gpu_ids"], whole["gpu_ids"]
    assert shared_gpu != whole_gpu
    main = _main_agent(api)
    page.goto("/agents")

    card = page.get_by_test_id(f"agent-card-{main['id']}")
    shared_bar = card.locator(f'[data-testid="gpu-bar"][data-gpu-index="{shared_gpu}"]')
    whole_bar = card.locator(f'[data-testid="gpu-bar"][data-gpu-index="{whole_gpu}"]')
    expect(shared_bar.get_by_test_id("gpu-reserved")).to_have_text("reserved 20.0 GiB")
    expect(shared_bar.get_by_test_id("gpu-holders")).to_have_text(f"#{shared['id']}")
    expect(shared_bar.get_by_test_id("gpu-memory")).to_be_visible()  # measured use, beside the reservation
    expect(whole_bar).to_have_attribute("data-whole", "true")
    expect(whole_bar.get_by_test_id("gpu-reserved")).to_have_text("whole GPU")
    expect(whole_bar.get_by_test_id("gpu-holders")).to_have_text(f"#{whole['id']}")
    # the simulated GPUs read 0 % each heartbeat: a flat line, but readings, so a sparkline is drawn
    wait_for(lambda: any(v is not None for h in _main_agent(api)["gpu_history"] for v in h["utilization"]), 10)
    expect(card.get_by_test_id("gpu-sparkline").first).to_be_visible()
    screenshot(page, artifacts / "agents-gpu-reservations.png")

    whole_bar.get_by_test_id(f"task-link-{whole['id']}").click()
    details = _details(page)
    expect(details.locator(".el-dialog__title")).to_contain_text(f"#{whole['id']}")
    expect(details.get_by_test_id("task-detail-status")).to_have_attribute("data-status", "running")


def _chain(api, gate) -> tuple[dict, dict, dict]:
    prefix = unique("ui-graph")
    a = api.create_task(f"while [ ! -e '{gate}' ]; do sleep 0.1; done", name=f"{prefix}-a")
    b = api.create_task("echo b", name=f"{prefix}-b", depends_on=[a["id"]])
    c = api.create_task("echo c", name=f"{prefix}-c", depends_on=[b["id"]])
    return a, b, c


def _node(graph: Locator, task_id: int) -> Locator:
    return graph.locator(f'.vue-flow__node[data-id="{task_id}"]')


def test_dependency_graph_of_a_chain_with_clickable_nodes(page: Page, api, tmp_path, artifacts):
    a, b, c = _chain(api, tmp_path / "gate")
    api.wait_status(a["id"], "running", 30)
    page.goto("/tasks")
    page.get_by_test_id(f"task-detail-{b['id']}").click()
    details = _details(page)
    expect(details.get_by_test_id("task-status-reason")).to_have_text(f"Waiting for dependencies {a['id']}")
    expect(details.get_by_test_id("log-state")).to_have_text(f"Not started yet: Waiting for dependencies {a['id']}")

    graph = details.get_by_test_id("task-graph")
    expect(graph).to_have_attribute("data-nodes", "3")
    for task in (a, b, c):
        expect(_node(graph, task["id"])).to_contain_text(f"#{task['id']} {task['name']}")
    expect(_node(graph, b["id"])).to_have_class(re.compile(r"\bcurrent\b"))
    expect(_node(graph, a["id"])).to_have_class(re.compile(r"\bstatus-running\b"))
    expect(_node(graph, c["id"])).to_have_class(re.compile(r"\bstatus-blocked\b"))
    expect(graph.locator(".vue-flow__edge")).to_have_count(2)
    expect(graph.get_by_test_id("graph-truncated")).to_have_count(0)
    screenshot(page, artifacts / "task-graph.png")

    _node(graph, a["id"]).click()  # opens that task
    expect(details.locator(".el-dialog__title")).to_contain_text(f"#{a['id']}")
    graph = details.get_by_test_id("task-graph")
    expect(_node(graph, a["id"])).to_have_class(re.compile(r"\bcurrent\b"))
    (tmp_path / "gate").touch()
    api.wait_status(c["id"], "completed", 30)
    expect(_node(graph, c["id"])).to_have_class(re.compile(r"\bstatus-completed\b"), timeout=30_000)


@pytest.mark.browser_context_args(locale="zh-CN")
def test_chinese_reasons_warning_and_sections(page: Page, api, tmp_path):
    big = api.create_task("echo never", name=unique("ui-zh-big"), cpu_cores=BIG)
    a, b, _ = _chain(api, tmp_path / "gate")
    _wait_reason(api, big["id"], "no online agent can run it (largest:")
    api.wait_status(a["id"], "running", 30)
    page.goto("/tasks")

    expect(page.get_by_test_id(f"task-reason-{big['id']}")).to_have_text("没有 Agent 能运行")
    expect(page.get_by_test_id(f"task-reason-{b['id']}")).to_have_text(f"等待任务 {a['id']}")
    expect(page.get_by_test_id(f"task-reason-{b['id']}")).to_have_attribute("data-full", f"等待依赖任务 {a['id']} 完成")
    expect(task_row(page, b["id"])).to_have_attribute("data-status", "blocked")

    page.get_by_test_id(f"task-detail-{big['id']}").click()
    details = _details(page)
    expect(details.get_by_test_id("task-status-reason")).to_contain_text(
        re.compile(r"没有在线 Agent 能运行它（最大：\d+ 核，\d+ 块 GPU，每块 \d+ GiB）"))
    expect(details.get_by_test_id("log-state")).to_have_text(re.compile(r"^尚未开始：没有在线 Agent 能运行它"))
    details.locator(".el-dialog__headerbtn").click()

    page.get_by_test_id(f"task-detail-{a['id']}").click()
    details = _details(page)
    expect(details.get_by_test_id("task-detail-usage")).to_contain_text("资源使用")
    expect(details.get_by_test_id("task-detail-graph")).to_contain_text("依赖关系图")
    expect(details.get_by_test_id("task-graph")).to_contain_text("点击任务可打开")
    details.locator(".el-dialog__headerbtn").click()

    page.get_by_test_id("new-task-btn").click()
    dialog = page.get_by_test_id("task-create-dialog")
    gpus = dialog.get_by_test_id("task-form-gpu-count").locator("input")
    gpus.fill("8")
    gpus.blur()
    expect(dialog.get_by_test_id("task-capacity-warning")).to_contain_text(
        re.compile(r"没有在线 Agent 能运行此任务：最大的有 \d+ 核、\d+ 块 GPU，每块 \d+ GiB"))
