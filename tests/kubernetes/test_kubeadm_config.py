"""The kubeadm configurations the roles render, checked against the kubeadm config types."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from tests.kubernetes.conftest import (
    load_documents,
    node_map_hosts,
    role_default_kubernetes_version,
)
from tests.kubernetes.kubeadm_types import KUBEADM_SCHEMAS, kubeadm_api_version_for, schema_for

KUBERNETES_ROLES = ("kubernetes_packages", "kubeadm_control_plane", "kubeadm_node")


def validate(document: dict) -> None:
    jsonschema.validate(document, schema_for(document))


def documents_by_kind(path) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in load_documents(path)}


def test_roles_agree_on_the_default_release():
    versions = {role: role_default_kubernetes_version(role) for role in KUBERNETES_ROLES}
    assert len(set(versions.values())) == 1, versions
    # The default must be read natively by kubeadm as v1beta4 (1.31 and later).
    assert kubeadm_api_version_for(versions["kubeadm_control_plane"]) == "kubeadm.k8s.io/v1beta4"


def test_every_rendered_document_matches_its_type(rendered_kubeadm):
    version, out_dir = rendered_kubeadm
    files = sorted(out_dir.glob("*-init.yaml")) + sorted(out_dir.glob("*-join.yaml"))
    assert {f.name for f in files} == {
        "k8s-master-init.yaml",
        "k8s-redis-join.yaml",
        "api-waste-join.yaml",
    }
    for path in files:
        for document in load_documents(path):
            if document["apiVersion"].startswith("kubeadm.k8s.io/"):
                assert document["apiVersion"] == kubeadm_api_version_for(version), path.name
            validate(document)


def test_init_configuration_carries_the_inventory(rendered_kubeadm):
    version, out_dir = rendered_kubeadm
    docs = documents_by_kind(out_dir / "k8s-master-init.yaml")
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    cluster = docs["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == f"v{version}"
    assert cluster["networking"]["podSubnet"] == "192.168.0.0/16"
    master_address = docs["InitConfiguration"]["localAPIEndpoint"]["advertiseAddress"]
    assert cluster["controlPlaneEndpoint"] == f"{master_address}:6443"
    assert master_address in cluster["apiServer"]["certSANs"]
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    # No taints key: kubeadm then applies its control-plane taint (the node map's "kubeadm default").
    assert "taints" not in docs["InitConfiguration"]["nodeRegistration"]


def kubelet_args(node_registration: dict) -> dict[str, str]:
    args = node_registration["kubeletExtraArgs"]
    return {a["name"]: a["value"] for a in args} if isinstance(args, list) else args


@pytest.mark.parametrize("host", ["k8s-redis", "api-waste"])
def test_join_configuration_registers_label_and_taints(rendered_kubeadm, host):
    _, out_dir = rendered_kubeadm
    join = documents_by_kind(out_dir / f"{host}-join.yaml")["JoinConfiguration"]
    node = node_map_hosts()[host]
    registration = join["nodeRegistration"]
    assert registration["name"] == host
    assert registration["taints"] == node["growbin_node_taints"]
    assert (
        kubelet_args(registration)["node-labels"] == f"growbin.app/role={node['growbin_node_role']}"
    )


# Negative tests: the schemas are strict enough to catch the mistakes that matter.


def test_a_misspelt_field_fails(rendered_kubeadm):
    _, out_dir = rendered_kubeadm
    cluster = copy.deepcopy(
        documents_by_kind(out_dir / "k8s-master-init.yaml")["ClusterConfiguration"]
    )
    cluster["networking"]["podSubnets"] = cluster["networking"].pop("podSubnet")
    with pytest.raises(jsonschema.ValidationError, match="podSubnets"):
        validate(cluster)


def test_a_misspelt_kubelet_field_fails(rendered_kubeadm):
    _, out_dir = rendered_kubeadm
    kubelet = copy.deepcopy(
        documents_by_kind(out_dir / "k8s-master-init.yaml")["KubeletConfiguration"]
    )
    kubelet["cgroupsDriver"] = kubelet.pop("cgroupDriver")
    with pytest.raises(jsonschema.ValidationError, match="cgroupsDriver"):
        validate(kubelet)


def test_join_without_discovery_fails(rendered_kubeadm):
    _, out_dir = rendered_kubeadm
    join = copy.deepcopy(documents_by_kind(out_dir / "api-waste-join.yaml")["JoinConfiguration"])
    del join["discovery"]
    with pytest.raises(jsonschema.ValidationError, match="discovery"):
        validate(join)


def test_extra_args_shape_is_tied_to_the_api_version(rendered_kubeadm):
    """A v1beta3 map under v1beta4 (or the reverse) is the classic upgrade mistake."""
    version, out_dir = rendered_kubeadm
    cluster = documents_by_kind(out_dir / "k8s-master-init.yaml")["ClusterConfiguration"]
    other = (
        "kubeadm.k8s.io/v1beta3"
        if kubeadm_api_version_for(version).endswith("v1beta4")
        else "kubeadm.k8s.io/v1beta4"
    )
    relabelled = {**cluster, "apiVersion": other}
    with pytest.raises(jsonschema.ValidationError, match="extraArgs|is not of type"):
        jsonschema.validate(relabelled, KUBEADM_SCHEMAS[other]["ClusterConfiguration"])


def test_v1beta4_refuses_fields_it_moved():
    cluster = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {"timeoutForControlPlane": "4m0s"},
    }
    with pytest.raises(jsonschema.ValidationError, match="timeoutForControlPlane"):
        validate(cluster)
    cluster["apiVersion"] = "kubeadm.k8s.io/v1beta3"
    validate(cluster)


def test_calico_pool_is_the_kubeadm_pod_network_over_vxlan(rendered_kubeadm):
    _, out_dir = rendered_kubeadm
    cluster = documents_by_kind(out_dir / "k8s-master-init.yaml")["ClusterConfiguration"]
    installation = documents_by_kind(out_dir / "calico-installation.yaml")["Installation"]
    network = installation["spec"]["calicoNetwork"]
    [pool] = network["ipPools"]
    assert pool["cidr"] == cluster["networking"]["podSubnet"]
    assert pool["encapsulation"] == "VXLAN" and network["bgp"] == "Disabled"
    # Autodetection pinned to the private node subnet of the production inventory.
    assert network["nodeAddressAutodetectionV4"] == {"cidrs": ["10.0.0.0/16"]}
