"""Read role task files as data: the order and arguments of the tasks a role runs."""

from __future__ import annotations

from typing import Any

import yaml

from tests.kubernetes.conftest import REPO_ROOT

ROLES = REPO_ROOT / "roles"


def role_file(role: str, relative: str) -> Any:
    return yaml.safe_load((ROLES / role / relative).read_text())


def flatten(tasks: list[dict], role: str) -> list[dict]:
    """Tasks in execution order: blocks opened, import_tasks followed (rescue/always too)."""
    out: list[dict] = []
    for task in tasks or []:
        if "block" in task:
            out += flatten(task["block"], role)
            out += flatten(task.get("rescue", []), role)
            out += flatten(task.get("always", []), role)
        elif "ansible.builtin.import_tasks" in task or "ansible.builtin.include_tasks" in task:
            name = task.get("ansible.builtin.import_tasks") or task["ansible.builtin.include_tasks"]
            out.append(task)
            out += flatten(role_file(role, f"tasks/{name}"), role)
        else:
            out.append(task)
    return out


def role_tasks(role: str, entry: str = "main.yml") -> list[dict]:
    return flatten(role_file(role, f"tasks/{entry}"), role)


def module_of(task: dict) -> str | None:
    return next(
        (key for key in task if key.startswith(("ansible.builtin.", "kubernetes.core."))), None
    )


def index_of(tasks: list[dict], predicate) -> int:
    matches = [i for i, task in enumerate(tasks) if predicate(task)]
    assert len(matches) == 1, f"expected one matching task, found {len(matches)}"
    return matches[0]
