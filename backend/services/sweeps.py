"""Sweeps: one task per combination of parameter values (the Cartesian product), each with its values
put in for its `{{name}}` placeholders (script and name) and given as environment variables."""
from __future__ import annotations

import itertools
import math
import re

import structlog

from backend.models import Task
from backend.services.errors import InvalidInput
from backend.services.tasks import load_dependencies, new_task
from backend.services.unit_of_work import unit_of_work

log = structlog.get_logger()

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_SWEEP_TASKS = 1000
MAX_NAME = 200


def placeholders(*texts: str) -> list[str]:
    """The placeholder names in `texts`, each once, in order of appearance."""
    return list(dict.fromkeys(m.group(1) for text in texts for m in PLACEHOLDER.finditer(text)))


def fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def combinations(fields: dict, params: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of values, in order (the last parameter varies fastest); 400 for a placeholder
    without values, values for no placeholder, or more than MAX_SWEEP_TASKS combinations."""
    names = placeholders(fields["name"], fields["script_content"])
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise InvalidInput("sweep_missing_values", f"placeholder {{{{{missing[0]}}}}} has no values in params.")
    extra = [n for n in params if n not in names]
    if extra:
        raise InvalidInput("sweep_unused_params", f"params gives values for {extra[0]!r}, "
                           "which is no {{placeholder}} of script_content or name.")
    count = math.prod(len(params[n]) for n in names)
    if count > MAX_SWEEP_TASKS:
        raise InvalidInput("sweep_too_large", f"the sweep makes {count} tasks; at most {MAX_SWEEP_TASKS}.")
    return [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]


def task_fields(fields: dict, values: dict[str, str]) -> dict:
    """One combination's task: values in the script and the name (appended when the name has none), and env."""
    name = fill(fields["name"], values) if placeholders(fields["name"]) else \
        f"{fields['name']} [" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]"
    if len(name) > MAX_NAME:
        raise InvalidInput("sweep_name_too_long", f"the task name {name[:60]!r}... is over {MAX_NAME} characters.")
    return {**fields, "name": name, "script_content": fill(fields["script_content"], values),
            "env": {**fields.get("env", {}), **values}}


def create_sweep(params: dict[str, list[str]], depends_on: list[int], **fields) -> list[Task]:
    """All the sweep's tasks in one transaction: all of them, or none."""
    combos = combinations(fields, params)
    with unit_of_work(keep_loaded=True):
        deps = load_dependencies(list(depends_on))
        tasks = [new_task(task_fields(fields, values), deps) for values in combos]
    log.info("sweep_created", task_ids=[t.id for t in tasks], params=sorted(params))
    return tasks
