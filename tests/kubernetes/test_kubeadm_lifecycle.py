"""kubeadm_control_plane on a running cluster (defect 10 of issue 15): a changed configuration is
applied or stops the run, a half-initialised control plane is reported, init output is hidden."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kubernetes.conftest import PRODUCTION_INVENTORY, RENDER_TIMEOUT_S, ansible_bin
from tests.kubernetes.tasks import index_of, module_of, role_file, role_tasks

HERE = Path(__file__).parent


def compare(tmp_path: Path, live: dict | None, *extra: str) -> dict:
    """Run the role's drift comparison against `live` (None: an empty document)."""
    live_file, out = tmp_path / "live.yaml", tmp_path / "drift.json"
    live_file.write_text(
        yaml.safe_dump(live or {"apiVersion": "x", "kind": "ClusterConfiguration"})
    )
    command = [ansible_bin("ansible-playbook"), "-i", str(PRODUCTION_INVENTORY)]
    command += [str(HERE / "kubeadm_drift.yml"), "-e", f"live_config={live_file}"]
    command += ["-e", f"drift_out={out}", "-e", "ansible_connection=local"]
    for value in extra:
        command += ["-e", value]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def wanted(tmp_path_factory) -> dict:
    return compare(tmp_path_factory.mktemp("wanted"), None)["wanted"]


def extra_args(section: dict) -> dict:
    raw = section.get("extraArgs") or {}
    return raw if isinstance(raw, dict) else {a["name"]: a["value"] for a in raw}


def test_the_cluster_as_rendered_has_no_drift(tmp_path, wanted):
    assert compare(tmp_path, wanted)["drift"] == {
        "cert_sans": False,
        "components": [],
        "immutable": [],
    }


def test_a_new_san_is_drift(tmp_path, wanted):
    live = copy.deepcopy(wanted)
    live["apiServer"]["certSANs"] = live["apiServer"]["certSANs"][:-1]
    drift = compare(tmp_path, live)["drift"]
    assert drift["cert_sans"] is True and drift["components"] == []


def test_changed_extra_args_are_drift_per_component(tmp_path, wanted):
    live = copy.deepcopy(wanted)
    live["scheduler"]["extraArgs"] = []
    live["etcd"]["local"].pop("extraArgs")
    assert compare(tmp_path, live)["drift"]["components"] == ["scheduler", "etcd"]


def test_extra_args_compare_across_api_versions(tmp_path, wanted):
    # A cluster initialised with v1beta3 (maps) keeps its ConfigMap in maps; the same flags
    # rendered as v1beta4 lists are not drift.
    live = copy.deepcopy(wanted)
    for name in ("apiServer", "controllerManager", "scheduler"):
        live[name]["extraArgs"] = extra_args(live[name])
    live["etcd"]["local"]["extraArgs"] = extra_args(live["etcd"]["local"])
    assert isinstance(wanted["apiServer"]["extraArgs"], list)
    assert compare(tmp_path, live)["drift"]["components"] == []


def test_fields_kubeadm_cannot_change_stop_the_run(tmp_path, wanted):
    live = copy.deepcopy(wanted)
    live["networking"]["podSubnet"] = "10.244.0.0/16"
    drift = compare(tmp_path, live)["drift"]
    assert drift["immutable"] == [
        f"networking.podSubnet: 10.244.0.0/16 -> {wanted['networking']['podSubnet']}"
    ]
    tasks = role_tasks("kubeadm_control_plane")
    stop = index_of(tasks, lambda t: "cannot apply to a running cluster" in t.get("name", ""))
    assert tasks[stop]["ansible.builtin.assert"]["that"] == (
        "__kubeadm_control_plane_drift.immutable | length == 0"
    )


def commands(tasks: list[dict]) -> list[tuple[int, str]]:
    return [
        (i, t["ansible.builtin.command"]["cmd"])
        for i, t in enumerate(tasks)
        if module_of(t) == "ansible.builtin.command"
    ]


def test_drift_is_applied_with_kubeadm_phases_then_recorded():
    tasks = role_tasks("kubeadm_control_plane")
    phase = "{{ __kubeadm_control_plane_phase }} "
    cmds = {
        cmd[len(phase) :].split(" {{")[0]: i for i, cmd in commands(tasks) if cmd.startswith(phase)
    }
    compare_at = index_of(tasks, lambda t: t.get("ansible.builtin.include_tasks") == "drift.yml")
    # SANs: the old certificate moved away first (kubeadm keeps a valid one), then reissued.
    remove = index_of(tasks, lambda t: "Remove the old API server certificate" in t.get("name", ""))
    assert compare_at < remove < cmds["certs apiserver"]
    assert compare_at < cmds["control-plane all"] < cmds["upload-config kubeadm"]
    assert cmds["etcd local"] < cmds["upload-config kubeadm"]
    for phase in ("certs apiserver", "control-plane all", "etcd local", "upload-config kubeadm"):
        assert (
            "__kubeadm_control_plane_config_arg"
            in tasks[cmds[phase]]["ansible.builtin.command"]["cmd"]
        )
    reconcile = role_file("kubeadm_control_plane", "tasks/reconcile.yml")[0]
    assert reconcile["when"] == "__kubeadm_control_plane_state == 'initialised'"
    # Compared with the cluster's kubeadm-config, not with the file's "changed".
    assert (
        "resources[0].data.ClusterConfiguration"
        in reconcile["vars"]["__kubeadm_control_plane_live"]
    )


def test_half_initialised_control_plane_is_reported_not_skipped():
    tasks = role_tasks("kubeadm_control_plane")
    read = tasks[index_of(tasks, lambda t: "kubeadm configuration (retried" in t.get("name", ""))]
    assert read["kubernetes.core.k8s_info"]["name"] == "kubeadm-config"
    classify = tasks[index_of(tasks, lambda t: t.get("name") == "Classify the control plane")]
    rule = classify["ansible.builtin.set_fact"]["__kubeadm_control_plane_state"]
    assert "half-initialised" in rule and "resources" in rule
    stop = tasks[index_of(tasks, lambda t: "half-initialised control plane" in t.get("name", ""))]
    assert (
        stop["ansible.builtin.assert"]["that"]
        == "__kubeadm_control_plane_state != 'half-initialised'"
    )
    assert "playbooks/reset.yml" in stop["ansible.builtin.assert"]["fail_msg"]
    # init runs only on a fresh node: admin.conf alone no longer means "done".
    [init_block] = role_file("kubeadm_control_plane", "tasks/init.yml")
    assert init_block["when"] == "__kubeadm_control_plane_state == 'fresh'"
    assert index_of(tasks, lambda t: t is stop) < index_of(
        tasks, lambda t: t.get("name") == "Run kubeadm init"
    )


def test_secrets_in_kubeadm_output_are_hidden():
    tasks = role_tasks("kubeadm_control_plane")
    init = tasks[index_of(tasks, lambda t: t.get("name") == "Run kubeadm init")]
    assert init["no_log"] is True
    # The failure report masks bootstrap tokens and certificate keys.
    rescue = role_file("kubeadm_control_plane", "tasks/init.yml")[0]["rescue"][0]
    assert "<token>" in rescue["ansible.builtin.fail"]["msg"]
    assert "<key>" in rescue["ansible.builtin.fail"]["msg"]
    join = role_tasks("kubeadm_node")
    for i, cmd in commands(join):
        if "token create" in cmd or " join " in cmd:
            assert join[i].get("no_log") is True, cmd


def test_etcd_metrics_listen_where_prometheus_scrapes(wanted):
    urls = extra_args(wanted["etcd"]["local"])["listen-metrics-urls"].split(",")
    # kubeadm points etcd's probes at the first URL: it stays on loopback.
    assert urls[0] == "http://127.0.0.1:2381"
    master = yaml.safe_load((PRODUCTION_INVENTORY / "hosts.yml").read_text())["all"]["hosts"][
        "k8s-master"
    ]
    assert f"http://{master['growbin_private_address']}:2381" in urls
    [etcd_job] = [
        job
        for job in role_file("prometheus", "defaults/main.yml")["prometheus_inventory_jobs"]
        if job["name"] == "etcd"
    ]
    assert etcd_job == {
        "name": "etcd",
        "group": "masters",
        "port": 2381,
        "runtimes": ["kubernetes"],
    }
