"""Across the 14 nodes: each service runs where the node map puts it and nowhere else, and the
host firewalls let through exactly the traffic the platform needs."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
import testinfra

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


NODES = sorted(node_map()[1])


def _node(name: str):
    """The node's container, reached the way the local inventory reaches it."""
    return testinfra.get_host(f"docker://growbin-{name}")


def _groups(name: str) -> set[str]:
    groups, _ = node_map()
    return {group for group, hosts in groups.items() if name in hosts}


def _address(name: str) -> str:
    return node_map()[1][name]["growbin_private_address"]


def _reaches(name: str, address: str, port: int) -> bool:
    """A TCP connection from node `name` to address:port is accepted within 2 s (the nodes
    share one bridge: an open port answers in milliseconds, a filtered one never)."""
    return _node(name).run(f"timeout 2 bash -c '</dev/tcp/{address}/{port}'").rc == 0


def _reach_all(name: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], bool]:
    """_reaches for each (node, port) target, probed concurrently."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(lambda target: _reaches(name, _address(target[0]), target[1]), targets)
        return dict(zip(targets, results, strict=True))


@pytest.mark.parametrize("name", NODES)
def test_services_run_exactly_where_the_node_map_says(name: str) -> None:
    node = _node(name)
    running = {unit: node.service(unit).is_running for unit in PLACEMENT}
    enabled = {unit: node.service(unit).is_enabled for unit in PLACEMENT}
    expected = {unit: group == "all" or group in _groups(name) for unit, group in PLACEMENT.items()}
    assert running == expected
    assert enabled == expected


def test_data_ports_are_closed_to_the_edge() -> None:
    groups, _ = node_map()
    targets = [
        (name, port)
        for group, ports in DATA_PORTS.items()
        for name in groups[group]
        for port in ports
    ]
    reached = [target for target, open_ in _reach_all("edge", targets).items() if open_]
    assert not reached, f"the edge reaches data ports {reached}"


def test_edge_reaches_every_api_node() -> None:
    groups, _ = node_map()
    unreachable = [
        name for name in sorted(groups["api"]) if not _reaches("edge", _address(name), 8000)
    ]
    assert not unreachable


def _needs_broker(variables: dict) -> bool:
    # The scan API publishes scan tasks; the workers consume them. Nothing else talks AMQP.
    return variables.get("growbin_api_domain") == "scans" or "growbin_worker_queue" in variables


@pytest.mark.parametrize("name", sorted(node_map()[0]["api"] | node_map()[0]["workers"]))
def test_app_nodes_reach_only_what_they_need(name: str) -> None:
    groups, hostvars = node_map()
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
    assert _reach_all(name, list(expected)) == expected


def test_prometheus_scrapes_every_target() -> None:
    """The firewalls let the monitoring node in everywhere it scrapes: every target is up."""
    (name,) = node_map()[0]["monitoring"]
    address = _address(name)
    answer = json.loads(
        _node(name).check_output(f"curl -sf http://{address}:9090/api/v1/targets?state=active")
    )
    targets = answer["data"]["activeTargets"]
    assert targets
    down = [
        (t["labels"]["job"], t["labels"]["instance"], t["lastError"])
        for t in targets
        if t["health"] != "up"
    ]
    assert not down


@pytest.mark.parametrize("name", sorted(node_map()[0]["api"] | node_map()[0]["workers"]))
def test_app_units_run_hardened_as_written(name: str) -> None:
    """systemd's view of the unit, so a line it could not parse shows up as a missing setting."""
    unit = "growbin-api" if name in node_map()[0]["api"] else "growbin-worker"
    shown = _node(name).check_output(
        f"systemctl show {unit} -p User -p ProtectSystem -p NoNewPrivileges -p UMask"
        " -p ReadWritePaths -p Restart"
    )
    properties = dict(line.split("=", 1) for line in shown.splitlines())
    assert properties == {
        "User": "growbin",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "UMask": "0027",
        "ReadWritePaths": "/var/lib/growbin",
        "Restart": "on-failure",
    }
