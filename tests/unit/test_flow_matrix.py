"""inventories/flow_matrix.yml: well formed, tied to the node map and the services, and the
nftables rules playbooks/baseline.yml derives from it are exactly the matrix.

The derivation is not re-described here: the test takes baseline.yml's own task and runs it
in a controller-only play (set_fact and debug only, connection local, no node is contacted)
against the real local inventory, then compares the rules with the matrix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MATRIX_FILE = ROOT / "inventories" / "flow_matrix.yml"
BASELINE = ROOT / "playbooks" / "baseline.yml"
BIN = Path(sys.executable).parent
RUNTIMES = {"systemd", "kubernetes"}
# `edge` is the TLS edge (a host locally, the ALB on AWS), `all` every node.
SPECIAL_NAMES = {"edge", "all"}
# The firewall role's rule-name rule (roles/firewall/meta/argument_specs.yml).
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.,:/()+-]{0,63}$")

MATRIX = yaml.safe_load(MATRIX_FILE.read_text())["growbin_flow_matrix"]


def sources(flow: dict) -> list[str]:
    return [] if flow["from"] == "any" else flow["from"]


def defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


def inventory(name: str, *extra: str) -> dict:
    result = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(ROOT / "inventories" / name), "--list", *extra],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    return json.loads(result.stdout)


def groups_of(listed: dict) -> dict[str, set[str]]:
    def hosts(group: str) -> set[str]:
        body = listed.get(group, {})
        members = set(body.get("hosts", []))
        for child in body.get("children", []):
            members |= hosts(child)
        return members

    return {group: hosts(group) for group in listed if group != "_meta"}


@pytest.fixture(scope="module")
def local_inventory() -> dict:
    return inventory("local")


# --- shape ----------------------------------------------------------------------------


def test_every_entry_is_well_formed():
    names = [flow["name"] for flow in MATRIX]
    assert len(names) == len(set(names)), "flow names are unique (they key the rules)"
    for flow in MATRIX:
        assert set(flow) <= {"name", "to", "port", "protocol", "from", "runtimes"}, flow
        assert RULE_NAME.match(flow["name"]), flow
        assert isinstance(flow["port"], int) and 1 <= flow["port"] <= 65535, flow
        assert flow.get("protocol", "tcp") in ("tcp", "udp"), flow
        assert flow["from"] == "any" or (
            isinstance(flow["from"], list) and flow["from"] and all(flow["from"])
        ), flow
        assert flow["runtimes"] and set(flow["runtimes"]) <= RUNTIMES, flow


def test_both_inventories_load_the_one_matrix():
    for name in ("local", "production"):
        link = ROOT / "inventories" / name / "group_vars" / "all" / "flow_matrix.yml"
        assert link.is_symlink() and link.resolve() == MATRIX_FILE.resolve(), name


def test_matrix_names_are_node_map_groups_or_hosts():
    listed = inventory("production")
    groups = groups_of(listed)
    hosts = groups["all"]
    for flow in MATRIX:
        for name in [flow["to"], *sources(flow)]:
            assert name in SPECIAL_NAMES or name in groups or name in hosts, (flow["name"], name)
    # On AWS `all` and k8s_cluster are the same nodes (terraform/modules/flow_rules relies on it).
    assert groups["all"] == groups["k8s_cluster"]


# --- the matrix covers the services the node map runs ---------------------------------


def _has_flow(to: str, port: int, source: str | None, runtime: str, protocol: str = "tcp"):
    return any(
        flow["to"] == to
        and flow["port"] == port
        and flow.get("protocol", "tcp") == protocol
        and runtime in flow["runtimes"]
        and (source is None or source in sources(flow))
        for flow in MATRIX
    )


def _service_ports() -> list[tuple[str, int, str | None, set[str]]]:
    """(group, port, client group, runtimes) of what each group's roles serve."""
    postgresql, redis, rabbitmq = defaults("postgresql"), defaults("redis"), defaults("rabbitmq")
    both = set(RUNTIMES)
    return [
        ("postgresql", postgresql["postgresql_port"], "api", both),
        ("postgresql", postgresql["postgresql_port"], "workers", both),
        ("redis", redis["redis_port"], "api", both),
        ("redis", redis["redis_port"], "workers", both),
        ("rabbitmq", rabbitmq["rabbitmq_amqp_port"], "workers", both),
        ("rabbitmq", rabbitmq["rabbitmq_amqp_port"], "api-waste", both),  # scans publishes
        ("api", defaults("edge")["edge_api_port"], "edge", {"systemd"}),
        ("edge", defaults("edge")["edge_https_port"], None, both),
    ]


@pytest.mark.parametrize(("group", "port", "client", "runtimes"), _service_ports())
def test_every_service_has_its_flow(group, port, client, runtimes):
    for runtime in runtimes:
        assert _has_flow(group, port, client, runtime), (group, port, client, runtime)


def test_amqp_only_from_the_scan_api_and_the_workers():
    amqp = [f for f in MATRIX if f["to"] == "rabbitmq" and f["port"] == 5672]
    assert [sorted(sources(f)) for f in amqp] == [["api-waste", "workers"]]


def test_every_prometheus_scrape_job_has_its_flow():
    jobs = defaults("prometheus")["prometheus_inventory_jobs"]
    assert jobs
    for job in jobs:
        for runtime in job.get("runtimes", RUNTIMES):
            assert _has_flow(job["group"], job["port"], "monitoring", runtime), (job, runtime)


def test_every_api_node_port_is_open_from_the_edge_to_its_node_only():
    node_map = yaml.safe_load((ROOT / "inventories" / "node_map.yml").read_text())
    api_hosts = node_map["all"]["children"]["k8s_cluster"]["children"]["api"]["hosts"]
    ports = {name: host["growbin_api_node_port"] for name, host in api_hosts.items()}
    assert len(set(ports.values())) == len(ports) == 6
    assert all(30000 <= port <= 32767 for port in ports.values())
    node_port_flows = {(f["to"], f["port"]): f for f in MATRIX if 30000 <= f["port"] <= 32767}
    assert set(node_port_flows) == set(ports.items())
    for flow in node_port_flows.values():
        assert flow["from"] == ["edge"] and flow["runtimes"] == ["kubernetes"], flow


@pytest.mark.parametrize(
    ("to", "port", "protocol", "source"),
    [
        ("masters", 6443, "tcp", "k8s_cluster"),  # kube-apiserver: every node
        ("k8s_cluster", 10250, "tcp", "masters"),  # kubelet: the control plane
        ("k8s_cluster", 10250, "tcp", "monitoring"),  # kubelet metrics: Prometheus
        ("k8s_cluster", 5473, "tcp", "k8s_cluster"),  # Calico Typha
        ("k8s_cluster", 4789, "udp", "k8s_cluster"),  # Calico VXLAN
        ("masters", 2381, "tcp", "monitoring"),  # etcd metrics (listen-metrics-urls)
    ],
)
def test_kubernetes_and_calico_flows(to, port, protocol, source):
    assert _has_flow(to, port, source, "kubernetes", protocol)


def test_no_bgp_and_no_etcd_outside_the_master():
    # Calico runs VXLAN with BGP disabled (roles/calico), and there is one master.
    assert defaults("calico")["calico_encapsulation"] == "VXLAN"
    assert not [f for f in MATRIX if f["port"] in (179, 2379, 2380, 10257, 10259)]


# --- nftables rules derived by baseline.yml -------------------------------------------


def _derivation_play(hosts: str) -> list[dict]:
    """baseline.yml's firewall derivation, verbatim, in a play that never contacts a node."""
    plays = yaml.safe_load(BASELINE.read_text())
    firewall = next(p for p in plays if p["name"] == "Host firewall (systemd runtime)")
    derive = next(t for t in firewall["tasks"] if t["name"] == "Work out who may reach this node")
    return [
        {
            "name": "Render the firewall rules",
            "hosts": hosts,
            "connection": "local",
            "gather_facts": False,
            "vars": firewall.get("vars", {}),
            "tasks": [
                derive,
                {
                    "name": "Show them",
                    "ansible.builtin.debug": {"var": "__growbin_firewall_rules | default([])"},
                },
            ],
        }
    ]


def render_rules(tmp_path: Path, inventory_name: str, hosts: str, *extra: str) -> dict:
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump(_derivation_play(hosts), sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(ROOT / "inventories" / inventory_name),
            str(playbook),
            "-e",
            "ansible_connection=local",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{") :])
    shown = report["plays"][0]["tasks"][-1]["hosts"]
    return {host: value["__growbin_firewall_rules | default([])"] for host, value in shown.items()}


def expected_rules(host: str, runtime: str, groups: dict, hostvars: dict) -> set:
    def members(name: str) -> set[str]:
        return groups.get(name, {name})

    rules = set()
    for flow in MATRIX:
        if runtime not in flow["runtimes"] or host not in members(flow["to"]):
            continue
        if flow["from"] == "any":
            addresses = "any"
        else:
            nodes = set().union(*(members(name) for name in flow["from"]))
            addresses = frozenset(hostvars[n]["growbin_private_address"] for n in nodes)
        rules.add((flow["name"], flow["port"], flow.get("protocol", "tcp"), addresses))
    return rules


def as_set(rules: list[dict]) -> set:
    return {
        (
            rule["name"],
            int(rule["port"]),
            rule["proto"],
            "any" if rule["sources"] == "any" else frozenset(rule["sources"]),
        )
        for rule in rules
    }


def test_baseline_derives_exactly_the_matrix_for_every_local_node(tmp_path, local_inventory):
    rendered = render_rules(tmp_path, "local", "all:!localhost")
    groups = groups_of(local_inventory)
    hostvars = local_inventory["_meta"]["hostvars"]
    assert set(rendered) == groups["all"] - {"localhost"}
    for host, rules in rendered.items():
        assert len(rules) == len(as_set(rules)), f"{host}: a rule twice"
        assert as_set(rules) == expected_rules(host, "systemd", groups, hostvars), host
    # a few pinned facts, so the comparison above cannot pass on an empty matrix
    assert {r["name"] for r in rendered["k8s-rabbitmq"]} >= {"amqp", "rabbitmq-metrics"}
    amqp = next(r for r in rendered["k8s-rabbitmq"] if r["name"] == "amqp")
    assert sorted(amqp["sources"]) == sorted(
        hostvars[h]["growbin_private_address"] for h in ("api-waste", "worker-storage", "worker-ai")
    )
    assert {"name": "https", "port": 443, "proto": "tcp", "sources": "any"} in rendered["edge"]
    assert not any(r["name"].startswith(("calico", "kube")) for rs in rendered.values() for r in rs)


def test_no_host_rules_are_derived_in_the_kubernetes_runtime(tmp_path):
    rendered = render_rules(
        tmp_path, "local", "k8s-master,api-auth", "-e", "growbin_app_runtime=kubernetes"
    )
    assert rendered == {"k8s-master": [], "api-auth": []}
