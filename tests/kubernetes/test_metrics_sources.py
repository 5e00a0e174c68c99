"""Where Prometheus scrapes the application pods from: the monitoring nodes' own addresses and
their Calico tunnel addresses (growbin_app, the chart's networkPolicy.metricsSourceCIDRs).

Prometheus runs in the monitoring node's host network; its scrapes of pods on other nodes go
through Calico's VXLAN tunnel and carry the node's tunnel address, which Calico records on the
Node object. The role's own expressions are evaluated by Ansible on Node objects shaped like a
cluster's; the chart is rendered by the real helm from the role's values.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kubernetes.conftest import RENDER_TIMEOUT_S, REPO_ROOT, ansible_bin, run_playbook
from tests.kubernetes.tasks import index_of, module_of, role_tasks
from tests.kubernetes.test_growbin_app_values import helm_template

VXLAN = "projectcalico.org/IPv4VXLANTunnelAddr"
IPIP = "projectcalico.org/IPv4IPIPTunnelAddr"
PORTS = {"api": 8000, "worker": 9808}
PRODUCTION_HOSTS = yaml.safe_load((REPO_ROOT / "inventories/production/hosts.yml").read_text())
MONITORING_ADDRESS = PRODUCTION_HOSTS["all"]["hosts"]["k8s-monitoring"]["growbin_private_address"]


def node(name: str, address: str, **tunnels: str) -> dict:
    """A Node object as `k8s_info` returns it for a kubeadm node running calico-node."""
    annotations = {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "projectcalico.org/IPv4Address": f"{address}/20",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        **{{"vxlan": VXLAN, "ipip": IPIP}[kind]: value for kind, value in tunnels.items()},
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": {"kubernetes.io/hostname": name, "growbin.app/role": "infra-monitoring"},
        },
        "spec": {"podCIDR": "192.168.3.0/24"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ]
        },
    }


MONITORING = {"k8s-monitoring": "10.0.16.68", "k8s-monitoring-b": "10.0.48.9"}


def run_role_expression(
    tmp_path: Path, variables: dict, tasks: list[dict]
) -> subprocess.CompletedProcess:
    """Run `tasks` on localhost with the role's defaults and vars loaded, over an inventory
    whose monitoring group is MONITORING."""
    inventory = {
        "all": {
            "children": {
                "monitoring": {
                    "hosts": {h: {"growbin_private_address": a} for h, a in MONITORING.items()}
                }
            }
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "given.json").write_text(json.dumps(variables))
    roles = REPO_ROOT / "roles"
    playbook = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "role_path": str(roles / "growbin_app"),
            },
            "tasks": [
                {"ansible.builtin.include_vars": {"file": str(roles / "growbin_app" / f)}}
                for f in ("defaults/main.yml", "vars/main.yml")
            ]
            + [{"ansible.builtin.include_vars": {"file": str(tmp_path / "given.json")}}]
            + tasks
            + [
                {
                    "ansible.builtin.copy": {
                        "content": "{{ growbin_app_metrics_source_cidrs | to_json }}",
                        "dest": str(tmp_path / "out.json"),
                        "mode": "0600",
                    }
                }
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    command = [ansible_bin("ansible-playbook"), "-i", str(tmp_path / "hosts.yml")]
    return subprocess.run(
        command + [str(tmp_path / "play.yml")],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )


def test_each_monitoring_node_adds_its_tunnel_address_next_to_its_own(tmp_path):
    nodes = [
        # Another node of the cluster: not a metrics source.
        node("api-waste", "10.0.32.10", vxlan="192.168.9.64"),
        node("k8s-monitoring", "10.0.16.68", vxlan="192.168.77.0", ipip="192.168.77.1"),
        # No encapsulation: the node's own address only.
        node("k8s-monitoring-b", "10.0.48.9"),
    ]
    result = run_role_expression(tmp_path, {"__growbin_app_monitoring_nodes": nodes}, [])
    assert result.returncode == 0, result.stdout[-3000:]
    assert json.loads((tmp_path / "out.json").read_text()) == [
        "10.0.16.68/32",
        "192.168.77.0/32",
        "192.168.77.1/32",
        "10.0.48.9/32",
    ]


def test_a_monitoring_host_without_a_node_fails_naming_it(tmp_path):
    nodes = [node("k8s-monitoring", "10.0.16.68", vxlan="192.168.77.0")]
    result = run_role_expression(tmp_path, {"__growbin_app_monitoring_nodes": nodes}, [])
    assert result.returncode != 0
    assert "no Kubernetes Node named k8s-monitoring-b" in result.stdout
    assert not (tmp_path / "out.json").exists()


def deploy_path_tasks() -> list[dict]:
    """configure.yml's tasks between reading the Node objects and the values."""
    tasks = role_tasks("growbin_app", "configure.yml")
    read = index_of(tasks, lambda t: module_of(t) == "kubernetes.core.k8s_info")
    keep = index_of(
        tasks, lambda t: "__growbin_app_monitoring_nodes" in t.get("ansible.builtin.set_fact", {})
    )
    return tasks[read + 1 : keep + 1]


def k8s_info_results(answers: dict[str, list[dict]]) -> dict:
    """What the looped k8s_info registers: one result per host, `resources` [] if no Node."""
    return {
        "changed": False,
        "results": [
            {"item": host, "resources": resources, "api_found": True, "changed": False}
            for host, resources in answers.items()
        ],
    }


def test_the_deploy_path_reads_each_monitoring_node_before_the_values():
    tasks = role_tasks("growbin_app")
    read = index_of(tasks, lambda t: module_of(t) == "kubernetes.core.k8s_info")
    values = index_of(
        tasks, lambda t: t.get("ansible.builtin.template", {}).get("src") == "values.yaml.j2"
    )
    helm = index_of(tasks, lambda t: module_of(t) == "kubernetes.core.helm")
    assert read < values < helm
    # Before anything is created in the cluster, so a missing Node changes nothing.
    assert all(module_of(t) != "kubernetes.core.k8s" for t in tasks[:read])
    info = tasks[read]
    args = info["kubernetes.core.k8s_info"]
    assert (args["api_version"], args["kind"], args["name"]) == ("v1", "Node", "{{ item }}")
    assert args["kubeconfig"] == "{{ growbin_app_kubeconfig }}"
    assert info["loop"] == "{{ __growbin_app_monitoring_hosts }}"
    assert info["register"] == "__growbin_app_monitoring_node_info"
    assert info["vars"]["ansible_python_interpreter"] == "{{ growbin_app_python_interpreter }}"
    # A read: it runs in check mode too, so a --check run renders the same values.
    assert "check_mode" not in info and "when" not in info
    # kubeadm registers each host under its inventory name, the name read here.
    for role, template in (
        ("kubeadm_control_plane", "etc/kubernetes/kubeadm-config.yaml.j2"),
        ("kubeadm_node", "etc/kubernetes/kubeadm-join.yaml.j2"),
    ):
        text = REPO_ROOT / "roles" / role / "templates" / template
        assert re.search(
            r"^nodeRegistration:\n  name: \{\{ inventory_hostname \}\}$", text.read_text(), re.M
        )


def test_the_deploy_path_turns_the_nodes_read_into_the_metrics_sources(tmp_path):
    answers = {
        "k8s-monitoring": [node("k8s-monitoring", "10.0.16.68", vxlan="192.168.77.0")],
        "k8s-monitoring-b": [node("k8s-monitoring-b", "10.0.48.9")],
    }
    result = run_role_expression(
        tmp_path,
        {"__growbin_app_monitoring_node_info": k8s_info_results(answers)},
        deploy_path_tasks(),
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert json.loads((tmp_path / "out.json").read_text()) == [
        "10.0.16.68/32",
        "192.168.77.0/32",
        "10.0.48.9/32",
    ]


def test_the_deploy_path_stops_naming_a_monitoring_host_without_a_node(tmp_path):
    answers = {
        "k8s-monitoring": [node("k8s-monitoring", "10.0.16.68", vxlan="192.168.77.0")],
        "k8s-monitoring-b": [],
    }
    result = run_role_expression(
        tmp_path,
        {"__growbin_app_monitoring_node_info": k8s_info_results(answers)},
        deploy_path_tasks(),
    )
    assert result.returncode != 0
    assert "No Kubernetes Node named k8s-monitoring-b:" in " ".join(result.stdout.split())
    assert not (tmp_path / "out.json").exists()


@pytest.fixture(scope="module")
def tunnel_values_file(tmp_path_factory) -> Path:
    """The production inventory's values, with the monitoring Node as a VXLAN cluster has it."""
    out_dir = tmp_path_factory.mktemp("growbin-app-tunnel")
    nodes = [node("k8s-monitoring", MONITORING_ADDRESS, vxlan="192.168.77.0")]
    nodes = {"__growbin_app_monitoring_nodes": nodes}
    (out_dir / "nodes.json").write_text(json.dumps(nodes))
    run_playbook(Path(__file__).parent / "render.yml", out_dir, f"@{out_dir / 'nodes.json'}")
    return out_dir / "growbin-values.yaml"


def test_every_api_and_worker_policy_admits_scrapes_from_the_tunnel_address(tunnel_values_file):
    values = yaml.safe_load(tunnel_values_file.read_text())
    expected = [f"{MONITORING_ADDRESS}/32", "192.168.77.0/32"]
    assert values["networkPolicy"]["metricsSourceCIDRs"] == expected

    manifests = helm_template(tunnel_values_file, "1.28.15")
    # The policies of the components' pods (not the namespace-wide default-deny and DNS ones).
    policies = {
        m["metadata"]["labels"]["app.kubernetes.io/component"]: m["spec"]
        for m in manifests
        if m["kind"] == "NetworkPolicy" and "app.kubernetes.io/component" in m["metadata"]["labels"]
    }
    kinds = {c: c.split("-", 1)[0] for c in policies if c.startswith(("api-", "worker-"))}
    assert set(kinds.values()) == {"api", "worker"}
    assert len([c for c in kinds if c.startswith("api-")]) == len(values["api"])
    assert len([c for c in kinds if c.startswith("worker-")]) == len(values["workers"])
    for component, kind in kinds.items():
        metrics_rules = [
            rule
            for rule in policies[component]["ingress"]
            if rule["ports"] == [{"protocol": "TCP", "port": PORTS[kind]}]
            and [p["ipBlock"]["cidr"] for p in rule["from"]] == expected
        ]
        assert len(metrics_rules) == 1, (component, policies[component]["ingress"])
