"""Render the Kubernetes roles' templates from the production inventory (tests/kubernetes/render.yml)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_INVENTORY = REPO_ROOT / "inventories" / "production"
NODE_MAP = yaml.safe_load((REPO_ROOT / "inventories" / "node_map.yml").read_text())
RENDER_TIMEOUT_S = 120
APP_SECRETS = REPO_ROOT / "tests" / "kubernetes" / "fixtures" / "app-secrets.yml"
# The seed's release and the roles' default (None: whatever the role defaults say).
KUBERNETES_VERSIONS = ("1.28.15", None)


def ansible_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run_playbook(
    playbook: Path, out_dir: Path, *extra_vars: str, inventory: Path = PRODUCTION_INVENTORY
) -> None:
    command = [
        ansible_bin("ansible-playbook"),
        "-i",
        str(inventory),
        str(playbook),
        "-e",
        f"render_dir={out_dir}",
        "-e",
        "ansible_connection=local",
        # The application plays need credentials; these are throwaway test values.
        "-e",
        f"@{APP_SECRETS}",
    ]
    for extra in extra_vars:
        command += ["-e", extra]
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, env=env, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def role_default_kubernetes_version(role: str) -> str:
    text = (REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text()
    match = re.search(r"growbin_kubernetes_version \| default\('([0-9.]+)'\)", text)
    assert match, f"roles/{role}/defaults/main.yml has no default Kubernetes version"
    return match.group(1)


def inventory_hosts(inventory: dict) -> dict[str, dict]:
    """Host -> its variables, from a YAML inventory's `all` tree (groups nest through children)."""
    hosts: dict[str, dict] = {}

    def walk(group: dict) -> None:
        hosts.update({host: spec or {} for host, spec in (group.get("hosts") or {}).items()})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(inventory["all"])
    return hosts


def node_map_hosts() -> dict[str, dict]:
    return inventory_hosts(NODE_MAP)


@pytest.fixture(scope="session", params=KUBERNETES_VERSIONS, ids=lambda v: v or "default")
def rendered_kubeadm(request, tmp_path_factory) -> tuple[str, Path]:
    """(Kubernetes version, directory of <host>-init.yaml / <host>-join.yaml)."""
    version = request.param or role_default_kubernetes_version("kubeadm_control_plane")
    out_dir = tmp_path_factory.mktemp(f"kubeadm-{version}")
    extra = () if request.param is None else (f"growbin_kubernetes_version={version}",)
    # render.yml, after the credential provider's flag hand-over, as in playbooks/kubernetes.yml.
    run_playbook(Path(__file__).parent / "render_kubelet.yml", out_dir, *extra)
    return version, out_dir


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
