"""The node map (inventories/node_map.yml) and the inventories built on it."""

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# DESIGN.md's node table: host -> (group, instance type, growbin.app/role, taint value).
EXPECTED = {
    "k8s-master": ("masters", "t3.large", "control-plane", None),
    "api-waste": ("api", "t3.small", "api-waste", None),
    "api-auth": ("api", "t3.micro", "api-auth", None),
    "api-userinfo": ("api", "t3.micro", "api-userinfo", None),
    "api-location": ("api", "t3.micro", "api-location", None),
    "api-recycle-info": ("api", "t3.micro", "api-recycle-info", None),
    "api-chat-llm": ("api", "t3.small", "api-chat-llm", None),
    "worker-storage": ("workers", "t3.medium", "worker-storage", None),
    "worker-ai": ("workers", "t3.medium", "worker-ai", None),
    "k8s-rabbitmq": ("rabbitmq", "t3.small", "infra-rabbitmq", "rabbitmq"),
    "k8s-postgresql": ("postgresql", "t3.medium", "infra-postgresql", "postgresql"),
    "k8s-redis": ("redis", "t3.small", "infra-redis", "redis"),
    "k8s-monitoring": ("monitoring", "t3.large", "infra-monitoring", "monitoring"),
}


def inventory(name: str) -> dict:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-inventory"),
            "-i",
            str(ROOT / "inventories" / name),
            "--list",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module", params=["production", "local"])
def inv(request):
    return request.param, inventory(request.param)


def test_both_inventories_load_the_one_node_map(inv):
    name, _ = inv
    link = ROOT / "inventories" / name / "00-node_map.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "inventories" / "node_map.yml")


def test_thirteen_nodes_with_labels_taints_and_types(inv):
    _, data = inv
    hostvars = data["_meta"]["hostvars"]
    cluster = set(data["k8s_cluster"]["children"])
    members = {h for g in cluster for h in _hosts(data, g)}
    assert members == set(EXPECTED)
    for host, (group, itype, label, taint) in EXPECTED.items():
        assert host in _hosts(data, group)
        hv = hostvars[host]
        assert hv["growbin_instance_type"] == itype
        assert hv["growbin_node_role"] == label
        taints = hv["growbin_node_taints"]
        if taint is None:
            assert taints == []
        else:
            assert taints == [{"key": "dedicated", "value": taint, "effect": "NoSchedule"}]


def test_local_inventory_adds_addresses_and_edge():
    data = inventory("local")
    hostvars = data["_meta"]["hostvars"]
    subnet = ipaddress.ip_network(hostvars["edge"]["growbin_local_subnet"])
    addresses = {h: hostvars[h]["growbin_private_address"] for h in [*EXPECTED, "edge"]}
    assert len(set(addresses.values())) == len(addresses)
    assert all(ipaddress.ip_address(a) in subnet for a in addresses.values())
    assert _hosts(data, "edge") == {"edge"}


def _hosts(data: dict, group: str) -> set[str]:
    entry = data.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= _hosts(data, child)
    return hosts
