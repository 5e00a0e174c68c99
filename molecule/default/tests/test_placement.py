"""Across the 14 nodes: each service runs where the node map puts it and nowhere else, and the
host firewalls let through exactly the traffic the platform needs."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

# Service unit -> inventory group whose hosts (and only those) run it. `all` = every node.
PLACEMENT = {
    "prometheus-node-exporter": "all",
    "growbin-firewall": "all",
    "postgresql@15-main": "postgresql",
    "prometheus-postgres-exporter": "postgresql",
    "redis-server": "redis",
    "prometheus-redis-exporter": "redis",
    "rabbitmq-server": "rabbitmq",
    "prometheus": "monitoring",
    "prometheus-alertmanager": "monitoring",
    "growbin-api": "api",
    "growbin-worker": "workers",
    "nginx": "edge",
}
DATA_PORTS = {"postgresql": [5432], "redis": [6379], "rabbitmq": [5672, 15672, 25672]}


LOCAL_INVENTORY = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "inventories" / "local"


@cache
def node_map() -> tuple[dict[str, set[str]], dict[str, dict]]:
    """(group -> its hosts, host -> its variables) as the local inventory resolves them."""
    listed = json.loads(
        subprocess.run(
            ["ansible-inventory", "-i", str(LOCAL_INVENTORY), "--list"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )

    def members(group: str) -> set[str]:
        entry = listed.get(group, {})
        hosts = set(entry.get("hosts", []))
        for child in entry.get("children", []):
            hosts |= members(child)
        return hosts

    groups = {name: members(name) for name in listed if name != "_meta"}
    return groups, listed["_meta"]["hostvars"]


def _name(host) -> str:
    return host.ansible.get_variables()["inventory_hostname"]


def _groups(host) -> set[str]:
    groups, _ = node_map()
    return {group for group, hosts in groups.items() if _name(host) in hosts}


def _address(name: str) -> str:
    return node_map()[1][name]["growbin_private_address"]


def _reaches(host, address: str, port: int) -> bool:
    """A TCP connection from this node to address:port is accepted within 3 s."""
    return host.run(f"timeout 3 bash -c '</dev/tcp/{address}/{port}'").rc == 0


@pytest.mark.parametrize("unit", sorted(PLACEMENT))
def test_service_runs_exactly_where_the_node_map_says(host, unit: str) -> None:
    group = PLACEMENT[unit]
    expected = group == "all" or group in _groups(host)
    service = host.service(unit)
    assert service.is_running == expected, f"{unit} running={service.is_running}"
    assert service.is_enabled == expected, f"{unit} enabled={service.is_enabled}"


def test_data_ports_are_closed_to_the_edge(host) -> None:
    if "edge" not in _groups(host):
        pytest.skip("checked from the edge host")
    groups, _ = node_map()
    for group, ports in DATA_PORTS.items():
        for name in groups[group]:
            for port in ports:
                assert not _reaches(host, _address(name), port), f"edge reaches {name}:{port}"


def test_edge_reaches_every_api_node(host) -> None:
    if "edge" not in _groups(host):
        pytest.skip("checked from the edge host")
    groups, _ = node_map()
    for name in groups["api"]:
        assert _reaches(host, _address(name), 8000), f"edge cannot reach {name}:8000"


def _needs_broker(variables: dict) -> bool:
    # The scan API publishes scan tasks; the workers consume them. Nothing else talks AMQP.
    return variables.get("growbin_api_domain") == "scans" or "growbin_worker_queue" in variables


def test_app_nodes_reach_only_what_they_need(host) -> None:
    groups, hostvars = node_map()
    name = _name(host)
    if name not in groups["api"] | groups["workers"]:
        pytest.skip("checked from API and worker nodes")
    expected = {}
    for data in groups["postgresql"]:
        expected[(data, 5432)] = True
    for data in groups["redis"]:
        expected[(data, 6379)] = True
    for data in groups["rabbitmq"]:
        expected[(data, 5672)] = _needs_broker(hostvars[name])
        expected[(data, 15672)] = False
    for other in groups["api"] - {name}:
        expected[(other, 8000)] = False
    for monitoring in groups["monitoring"]:
        expected[(monitoring, 9090)] = False
    actual = {target: _reaches(host, _address(target[0]), target[1]) for target in expected}
    assert actual == expected


def test_prometheus_scrapes_every_target(host) -> None:
    """The firewalls let the monitoring node in everywhere it scrapes: every target is up."""
    if "monitoring" not in _groups(host):
        pytest.skip("asked on the monitoring node")
    address = _address(_name(host))
    answer = json.loads(
        host.check_output(f"curl -sf http://{address}:9090/api/v1/targets?state=active")
    )
    targets = answer["data"]["activeTargets"]
    assert targets
    down = [
        (t["labels"]["job"], t["labels"]["instance"], t["lastError"])
        for t in targets
        if t["health"] != "up"
    ]
    assert not down
