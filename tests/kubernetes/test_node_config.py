"""node_config's host directories (interface 4; defects 5/6 of issue 15): the storage worker's
journal exists on its node, owned by the image's user, before the chart mounts it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.kubernetes.conftest import (
    PRODUCTION_INVENTORY,
    RENDER_TIMEOUT_S,
    REPO_ROOT,
    ansible_bin,
    node_map_hosts,
)
from tests.kubernetes.tasks import role_file

WAL = {"path": "/var/lib/growbin/wal", "owner": 10001, "group": 10001, "mode": "0750"}


def nodes_of_processes_with(directory: str) -> set[str]:
    """Node roles (node map) of the workers whose contract process keeps `directory`."""
    from growbin.core import processes

    return {
        host["growbin_node_role"]
        for host in node_map_hosts().values()
        if "growbin_worker_queue" in host
        and any(
            d.path == directory
            for d in processes.worker_process(host["growbin_worker_queue"]).directories
        )
    }


def test_defaults_are_the_workers_journal_on_the_nodes_that_keep_one():
    [journal] = role_file("node_config", "defaults/main.yml")["node_config_host_directories"]
    assert {key: journal[key] for key in WAL} == WAL
    assert "worker-storage" in journal["node_roles"]
    assert set(journal["node_roles"]) == nodes_of_processes_with(WAL["path"])


def test_defaults_match_the_deploy_contract_and_the_image():
    from growbin.core import processes

    assert WAL["path"] == processes.WAL_DIRECTORY
    assert processes.IMAGE_UID == WAL["owner"] == WAL["group"]
    dockerfile = (REPO_ROOT / "app" / "Dockerfile").read_text()
    assert re.search(r"--uid 10001\b", dockerfile) and re.search(r"--gid 10001\b", dockerfile)
    chart = yaml.safe_load((REPO_ROOT / "charts" / "growbin" / "values.yaml").read_text())
    assert chart["runAsUser"] == WAL["owner"]
    # The systemd runtime's service user owns the same directories (the shared image store).
    assert role_file("app_systemd", "defaults/main.yml")["app_systemd_user_id"] == WAL["owner"]
    # The storage worker runs where the directory is created.
    assert "worker-storage" in {host["growbin_node_role"] for host in node_map_hosts().values()}


def test_directories_are_created_on_the_nodes_of_their_role(tmp_path):
    """The role's task file, run for real on this machine for the production node map."""
    root = tmp_path / "nodes"
    command = [ansible_bin("ansible-playbook"), "-i", str(PRODUCTION_INVENTORY)]
    command += [str(Path(__file__).parent / "node_directories.yml"), "-e", f"root_dir={root}"]
    command += ["-e", "ansible_connection=local"]
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, env=env, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    [create] = [
        task
        for task in json.loads(result.stdout)["plays"][0]["tasks"]
        if task["task"]["name"] == "Create the host directories the pods mount"
    ]
    [(_, outcome)] = create["hosts"].items()
    delegated = {(item["item"][0], item["path"]) for item in outcome["results"]}
    assert delegated == {
        (host, f"{root}{WAL['path']}")
        for host, node in node_map_hosts().items()
        if node["growbin_node_role"] in nodes_of_processes_with(WAL["path"])
    }
    made = (root / WAL["path"].lstrip("/")).stat()
    if os.geteuid() == 0:
        assert (made.st_uid, made.st_gid) == (WAL["owner"], WAL["group"])
    assert oct(made.st_mode & 0o7777) == "0o750"
    # Delegated to the node itself; the play runs on the first master.
    [task] = [t for t in role_file("node_config", "tasks/directories.yml") if "delegate_to" in t]
    assert task["delegate_to"] == "{{ item.0 }}"
