"""The Helm values growbin_app renders from the production inventory, through the real chart."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.kubernetes.conftest import (
    REPO_ROOT,
    node_map_hosts,
    role_default_kubernetes_version,
    run_playbook,
)

CHART_DIR = REPO_ROOT / "charts" / "growbin"
HELM_TIMEOUT_S = 60


@functools.cache
def helm_bin() -> str:
    if os.environ.get("HELM_BIN"):
        return os.environ["HELM_BIN"]
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "install-helm.sh")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return str(REPO_ROOT / ".cache" / "bin" / "helm")


@pytest.fixture(scope="module")
def values_file(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("growbin-app")
    run_playbook(Path(__file__).parent / "render.yml", out_dir)
    return out_dir / "growbin-values.yaml"


def helm_template(values_file: Path, kube_version: str) -> list[dict]:
    result = subprocess.run(
        [helm_bin(), "template", "growbin", str(CHART_DIR), "-n", "growbin", "-f", str(values_file)]
        + ["--kube-version", kube_version],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize(
    "kube_version", ["1.28.15", role_default_kubernetes_version("kubeadm_control_plane")]
)
def test_rendered_values_pass_helm_and_the_kubernetes_schemas(values_file, kube_version):
    manifests = helm_template(values_file, kube_version)
    assert {m["kind"] for m in manifests} >= {
        "Deployment",
        "Service",
        "Endpoints",
        "NetworkPolicy",
    }
    # Terraform owns the ALB and targets the NodePorts; no Ingress needs a controller.
    assert "Ingress" not in {m["kind"] for m in manifests}
    minor = ".".join(kube_version.split(".")[:2])
    for manifest in manifests:
        kubernetes_validate.validate(manifest, minor, strict=True)


def test_values_come_from_the_inventory(values_file):
    values = yaml.safe_load(values_file.read_text())
    hosts = node_map_hosts()
    expected_taints = {
        h["growbin_node_role"]: h["growbin_node_taints"]
        for h in hosts.values()
        if h["growbin_node_taints"]
    }
    assert values["nodeTaints"] == expected_taints
    production = yaml.safe_load(
        (REPO_ROOT / "inventories" / "production" / "hosts.yml").read_text()
    )
    addresses = {
        name: host["growbin_private_address"] for name, host in production["all"]["hosts"].items()
    }
    assert values["externalServices"]["postgresql"]["addresses"] == [addresses["k8s-postgresql"]]
    assert values["externalServices"]["redis"]["addresses"] == [addresses["k8s-redis"]]
    assert values["externalServices"]["rabbitmq"]["addresses"] == [addresses["k8s-rabbitmq"]]
    assert values["networkPolicy"]["metricsSourceCIDRs"] == [addresses["k8s-monitoring"] + "/32"]
    assert values["secrets"] == {"existingSecret": "growbin-app"}
    assert values["ingress"] == {"enabled": False}
    node_ports = {
        h["growbin_api_domain"]: h["growbin_api_node_port"]
        for h in hosts.values()
        if "growbin_api_domain" in h
    }
    assert {d: v["nodePort"] for d, v in values["api"].items()} == node_ports
    assert (
        values["networkPolicy"]["apiSourceCIDRs"]
        == production["all"]["vars"]["growbin_trusted_proxy_cidrs"]
    )


def test_api_services_are_node_ports_on_the_node_map_ports(values_file):
    manifests = helm_template(values_file, role_default_kubernetes_version("kubeadm_control_plane"))
    ports = {
        h["growbin_api_domain"]: h["growbin_api_node_port"]
        for h in node_map_hosts().values()
        if "growbin_api_domain" in h
    }
    services = {
        m["metadata"]["labels"]["app.kubernetes.io/component"]: m["spec"]
        for m in manifests
        if m["kind"] == "Service" and m["spec"].get("type") == "NodePort"
    }
    assert {c.removeprefix("api-"): s["ports"][0]["nodePort"] for c, s in services.items()} == ports
    assert all(s["externalTrafficPolicy"] == "Local" for s in services.values())


def test_pods_land_on_their_nodes_with_exactly_the_needed_tolerations(values_file):
    manifests = helm_template(values_file, role_default_kubernetes_version("kubeadm_control_plane"))
    roles = {h["growbin_node_role"]: h["growbin_node_taints"] for h in node_map_hosts().values()}
    for deployment in (m for m in manifests if m["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        role = pod["nodeSelector"]["growbin.app/role"]
        assert role in roles, deployment["metadata"]["name"]
        tolerations = [
            {k: t[k] for k in ("key", "value", "effect")} for t in pod.get("tolerations", [])
        ]
        assert tolerations == roles[role]
