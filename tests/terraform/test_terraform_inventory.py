"""scripts/terraform_inventory.py: a recorded `terraform output -json` becomes the
production hosts.yml, which Ansible merges with the node map into the 13-node inventory.

fixtures/terraform-output.json was written by `terraform output -json` (Terraform 1.11)
for a stand-in configuration whose outputs have the names and shapes of terraform/outputs.tf
and sample addresses (app_image_repository_url and alb_subnet_cidrs added in the same
format when outputs.tf gained them); it is not from a real AWS account.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "terraform-output.json"
NODE_MAP = ROOT / "inventories" / "node_map.yml"
PRODUCTION = ROOT / "inventories" / "production"

sys.path.insert(0, str(ROOT / "scripts"))
import terraform_inventory  # noqa: E402

ANSIBLE_INVENTORY = shutil.which("ansible-inventory") or str(
    Path(sys.executable).parent / "ansible-inventory"
)


def generate(*args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = terraform_inventory.main(list(args), stdin=io.StringIO(stdin))
    finally:
        sys.stdout, sys.stderr = old_out, old_err
    return code, out.getvalue(), err.getvalue()


def fixture_nodes() -> dict:
    return json.loads(FIXTURE.read_text())["nodes"]["value"]


def node_map_groups() -> dict[str, set[str]]:
    """Group => hosts of the node map, with children's hosts included, as Ansible does."""
    groups: dict[str, set[str]] = {}

    def visit(name: str, group: dict) -> set[str]:
        members = set((group or {}).get("hosts") or {})
        for child, body in ((group or {}).get("children") or {}).items():
            members |= visit(child, body)
        groups[name] = members
        return members

    visit("all", yaml.safe_load(NODE_MAP.read_text())["all"])
    return groups


@pytest.fixture(scope="module")
def production_inventory(tmp_path_factory) -> Path:
    """inventories/production as an operator has it after the hand-off."""
    directory = tmp_path_factory.mktemp("production")
    (directory / "00-node_map.yml").symlink_to(NODE_MAP)
    (directory / "group_vars").symlink_to(PRODUCTION / "group_vars")
    code, text, err = generate(str(FIXTURE))
    assert code == 0, err
    (directory / "hosts.yml").write_text(text)
    return directory


def ansible_inventory(directory: Path, *args: str) -> str:
    env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(directory), *args],
        capture_output=True,
        text=True,
        cwd=directory,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def inventory_list(production_inventory) -> dict:
    return json.loads(ansible_inventory(production_inventory, "--list"))


def test_generated_file_only_adds_connection_and_addresses():
    code, text, _ = generate(str(FIXTURE))
    assert code == 0
    inventory = yaml.safe_load(text)
    assert set(inventory) == {"all"}
    assert set(inventory["all"]) == {"hosts", "vars"}
    nodes = fixture_nodes()
    assert set(inventory["all"]["hosts"]) == set(nodes)
    for name, host in inventory["all"]["hosts"].items():
        assert all(not key.startswith("growbin_node_") for key in host)
        assert "growbin_instance_type" not in host
        assert host["ansible_host"] == nodes[name]["instance_id"]
        assert host["growbin_private_address"] == nodes[name]["private_ip"]
        assert host["growbin_availability_zone"] == nodes[name]["availability_zone"]
        assert "growbin_public_address" not in host  # nodes live in private subnets
    proxy = inventory["all"]["vars"]["ansible_ssh_common_args"]
    assert "aws ssm start-session --target %h" in proxy
    assert "--region ap-northeast-2" in proxy


def test_image_repository_and_trusted_proxies_come_from_the_outputs():
    """Defect 7 and the trusted proxies: the ECR URL and the ALB subnets reach the inventory."""
    outputs = json.loads(FIXTURE.read_text())
    for connect_via in ("ssm", "private"):
        code, text, _ = generate("--connect-via", connect_via, str(FIXTURE))
        assert code == 0
        variables = yaml.safe_load(text)["all"]["vars"]
        assert (
            variables["growbin_app_image_repository"]
            == (outputs["app_image_repository_url"]["value"])
        )
        assert variables["growbin_trusted_proxy_cidrs"] == outputs["alb_subnet_cidrs"]["value"]
    repository = outputs["app_image_repository_url"]["value"]
    assert ".dkr.ecr." in repository and ":" not in repository  # a repository, no tag
    for cidr in outputs["alb_subnet_cidrs"]["value"]:
        ipaddress.ip_network(cidr)


def test_every_host_sees_the_image_repository_and_trusted_proxies(inventory_list):
    outputs = json.loads(FIXTURE.read_text())
    for name, vars_ in inventory_list["_meta"]["hostvars"].items():
        assert (
            vars_["growbin_app_image_repository"] == (outputs["app_image_repository_url"]["value"])
        ), name
        assert vars_["growbin_trusted_proxy_cidrs"] == outputs["alb_subnet_cidrs"]["value"], name


@pytest.mark.parametrize("output", ["app_image_repository_url", "alb_subnet_cidrs"])
def test_output_without_the_image_repository_or_alb_subnets_is_refused(output):
    outputs = json.loads(FIXTURE.read_text())
    del outputs[output]
    code, text, err = generate(stdin=json.dumps(outputs))
    assert code == 2
    assert text == ""
    assert f"no `{output}` output" in err


def test_ansible_inventory_graph_shows_the_node_map_groups(production_inventory):
    graph = ansible_inventory(production_inventory, "--graph")
    parsed: dict[str, set[str]] = {}
    stack: list[str] = []
    for line in graph.splitlines():
        prefix = len(line) - len(line.lstrip(" |-"))  # "  |  |--" per level
        depth = 0 if prefix == 0 else (prefix - 2) // 3
        name = line.strip(" |-")
        del stack[depth:]
        if name.startswith("@"):
            group = name[1:].rstrip(":")
            parsed.setdefault(group, set())
            stack.append(group)
        else:
            for group in stack:
                parsed[group].add(name)
    expected = node_map_groups()
    for group, members in expected.items():
        assert parsed[group] == members, group
    assert len(parsed["k8s_cluster"]) == 13
    assert parsed["ungrouped"] == set()


def test_node_map_checks_accept_the_merged_inventory(inventory_list):
    hostvars = inventory_list["_meta"]["hostvars"]
    node_map = terraform_inventory.node_map_hosts(yaml.safe_load(NODE_MAP.read_text()))
    assert set(hostvars) == set(node_map)
    addresses = [vars_["growbin_private_address"] for vars_ in hostvars.values()]
    assert len(set(addresses)) == 13
    vpc = ipaddress.ip_network("10.0.0.0/16")
    private_range = [ipaddress.ip_network(f"10.0.{third}.0/20") for third in (16, 32, 48)]
    for name, vars_ in hostvars.items():
        # node-map facts and Terraform addresses, merged on one host
        assert vars_["growbin_node_role"] == node_map[name]["growbin_node_role"]
        assert vars_["growbin_instance_type"] == node_map[name]["growbin_instance_type"]
        assert vars_["growbin_node_taints"] == node_map[name]["growbin_node_taints"]
        address = ipaddress.ip_address(vars_["growbin_private_address"])
        assert address in vpc and any(address in subnet for subnet in private_range), name
        assert vars_["ansible_host"].startswith("i-")
        # production group_vars still apply
        assert vars_["growbin_environment"] == "production"


def test_private_connection_uses_the_private_address():
    code, text, _ = generate("--connect-via", "private", stdin=FIXTURE.read_text())
    assert code == 0
    inventory = yaml.safe_load(text)
    assert "ansible_ssh_common_args" not in inventory["all"]["vars"]
    for name, host in inventory["all"]["hosts"].items():
        assert host["ansible_host"] == fixture_nodes()[name]["private_ip"]


def _outputs_with(change) -> str:
    outputs = json.loads(FIXTURE.read_text())
    change(outputs["nodes"]["value"])
    return json.dumps(outputs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda nodes: nodes.pop("k8s-redis"),
            "k8s-redis: in the node map but not in the Terraform",
        ),
        (
            lambda nodes: nodes.update({"k8s-extra": dict(nodes["k8s-redis"])}),
            "k8s-extra: in the Terraform output but not in the node map",
        ),
        (
            lambda nodes: nodes["api-auth"].update(instance_type="t3.large"),
            "api-auth: Terraform built instance_type t3.large, node map says t3.micro",
        ),
        (
            lambda nodes: nodes["worker-ai"].update(role="worker-storage"),
            "worker-ai: Terraform built role worker-storage, node map says worker-ai",
        ),
        (
            lambda nodes: nodes["k8s-master"].update(private_ip=""),
            "node k8s-master: missing private_ip",
        ),
        (
            lambda nodes: nodes["k8s-redis"].update(private_ip=nodes["k8s-master"]["private_ip"]),
            "k8s-master, k8s-redis share the private address",
        ),
    ],
)
def test_output_that_disagrees_with_the_node_map_is_refused(change, message):
    code, text, err = generate(stdin=_outputs_with(change))
    assert code == 2
    assert text == ""
    assert message in err


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "input is not JSON"),
        ("{}", "no `nodes` output"),
        ('{"nodes": {"sensitive": false, "value": {}}}', "the `nodes` output has no value"),
    ],
)
def test_input_that_is_not_an_applied_output_is_refused(stdin, message):
    code, _, err = generate(stdin=stdin)
    assert code == 2
    assert message in err


def test_ssm_mode_needs_the_region_output():
    outputs = json.loads(FIXTURE.read_text())
    del outputs["region"]
    code, _, err = generate(stdin=json.dumps(outputs))
    assert code == 2
    assert "needs the `region` output" in err


def test_committed_production_hosts_is_the_fixture_rendering():
    committed = PRODUCTION / "hosts.yml"
    if not committed.exists():
        pytest.skip("no committed example inventories/production/hosts.yml")
    code, text, _ = generate(str(FIXTURE.relative_to(ROOT)))
    assert code == 0
    assert committed.read_text() == text
