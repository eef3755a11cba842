"""`tq show` and `tq agents` for people: one task as aligned fields and its script, the agent tree."""
from __future__ import annotations

import click

from task_client.results import Agent, Task
from task_client.table import STATUS_COLOURS, duration_text

FIELD_ORDER = ["id", "name", "status", "status_reason", "exit_code", "progress", "priority", "template_type",
               "depends_on", "dependents", "retry_of", "retried_as", "cpu_cores", "gpu_count", "gpu_memory",
               "gpu_ids", "env", "work_dir", "time_limit_s", "notify", "agent_id", "created_time", "start_time",
               "end_time", "execution_time", "log_size", "log_file"]


def _value(key: str, value) -> str:
    if key == "progress":
        return f"{value.get('percent') or 0:.0f}%" + (f" ({value['current']:g}/{value['total']:g})"
                                                        if value.get("total") else "")
    if key == "execution_time":
        return f"{value:.1f} s ({duration_text(value)})"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def task_lines(task: Task) -> list[str]:
    """Every field that has a value, then the script, indented."""
    keys = FIELD_ORDER + sorted(k for k in task if k not in FIELD_ORDER and k != "script_content")
    shown = [k for k in keys if task.get(k) not in (None, "", [], {})]
    width = max(len(k) for k in shown)
    lines = []
    for key in shown:
        text = _value(key, task[key])
        if key == "status":
            text = click.style(text, fg=STATUS_COLOURS.get(text))
        lines.append(f"{key.ljust(width)}  {text}")
    lines.append("script:")
    lines += ["  " + line for line in task.get("script_content", "").splitlines()]
    return lines


def _agent_line(agent: Agent) -> str:
    state = agent["status"] + (", draining" if agent.get("draining") else "")
    state = click.style(state, fg="green" if agent["status"] == "online" else "bright_black")
    parts = [f"{agent['name']} ({agent['id']})", state,
             f"cores {agent['available_cpu_cores']}/{agent['cpu_cores']} free",
             f"cpu {agent['cpu_usage']:.0f}%", f"mem {agent['memory_usage']:.0f}%"]
    for gpu in agent.get("gpu_info") or []:
        parts.append(f"gpu{gpu.get('index')} {gpu.get('utilization') or 0:.0f}% "
                     f"{gpu.get('memory_used') or 0:.0f}/{gpu.get('memory_total') or 0:.0f} MiB")
    if agent.get("disk_problem"):
        parts.append(click.style(agent["disk_problem"], fg="red"))
    return "  ".join(parts)


def agent_lines(agents: list[Agent]) -> list[str]:
    """Each main agent on a line, its sub-agents (one per running task) below it."""
    lines = []
    for agent in agents:
        lines.append(_agent_line(agent))
        subs = agent.get("sub_agents") or []
        for i, sub in enumerate(subs):
            branch = "└─" if i == len(subs) - 1 else "├─"
            lines.append(f"  {branch} task {sub.get('task_id')}  sub-agent {sub['id']}  {sub['status']}  "
                         f"cpu {sub['cpu_usage']:.0f}%  mem {sub['memory_usage']:.0f}%")
    return lines or ["no agents"]
