#!/usr/bin/env python3
"""Write inventories/production/hosts.yml from `terraform output -json`.

The node map (inventories/node_map.yml, loaded as inventories/production/00-node_map.yml)
already holds groups, roles, taints and instance types. This script adds only what
Terraform knows after `apply`: how to reach each host and its addresses, and, for the whole
inventory, the ECR repository of the application image (growbin_app_image_repository) and
the ALB's subnets, the only proxies whose X-Forwarded-For the API trusts
(growbin_trusted_proxy_cidrs). It refuses an output whose nodes, instance types or roles
disagree with the node map, so the inventory can never describe machines other than the
ones Terraform built.

    terraform -chdir=terraform output -json \\
      | .venv/bin/python scripts/terraform_inventory.py > inventories/production/hosts.yml
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

NODE_MAP = Path(__file__).resolve().parent.parent / "inventories" / "node_map.yml"

# Session Manager tunnels SSH to an instance id, so nodes need no public address and no
# inbound SSH rule. Needs the AWS CLI and its session-manager-plugin on the controller.
SSM_PROXY_COMMAND = (
    "aws ssm start-session --target %h --document-name AWS-StartSSHSession "
    "--parameters portNumber=%p --region {region}"
)

NODE_FIELDS = ("instance_id", "private_ip", "availability_zone", "instance_type", "role")

# Inventory variable => Terraform output, for the variables of the whole inventory.
INVENTORY_OUTPUTS = {
    "growbin_app_image_repository": "app_image_repository_url",
    "growbin_trusted_proxy_cidrs": "alb_subnet_cidrs",
    "app_settings_storage_bucket": "images_bucket",
    "app_settings_storage_public_base_url": "images_public_base_url",
}


class InventoryError(Exception):
    """The Terraform output cannot become an inventory; the message says why."""


def node_map_hosts(node_map: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Host name => host variables, from an Ansible YAML inventory, at any group depth."""
    hosts: dict[str, dict[str, Any]] = {}

    def visit(group: dict[str, Any] | None) -> None:
        group = group or {}
        for name, variables in (group.get("hosts") or {}).items():
            hosts.setdefault(name, {}).update(variables or {})
        for child in (group.get("children") or {}).values():
            visit(child)

    if not isinstance(node_map, dict) or "all" not in node_map:
        raise InventoryError("node map: top-level `all` group missing")
    visit(node_map["all"])
    return hosts


def terraform_nodes(outputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The value of the `nodes` output, each node checked for the fields we need."""
    if not isinstance(outputs, dict) or "nodes" not in outputs:
        raise InventoryError(
            "no `nodes` output: pass the JSON of `terraform output -json` after `terraform apply`"
        )
    nodes = outputs["nodes"].get("value") if isinstance(outputs["nodes"], dict) else None
    if not isinstance(nodes, dict) or not nodes:
        raise InventoryError("the `nodes` output has no value (was the configuration applied?)")
    for name, node in nodes.items():
        missing = [f for f in NODE_FIELDS if not isinstance(node, dict) or not node.get(f)]
        if missing:
            raise InventoryError(f"node {name}: missing {', '.join(missing)} in the output")
    return nodes


def inventory_variables(outputs: dict[str, Any]) -> dict[str, Any]:
    """The INVENTORY_OUTPUTS, each required with a non-empty value."""
    variables = {}
    for variable, output in INVENTORY_OUTPUTS.items():
        value = (outputs.get(output) or {}).get("value")
        if not value:
            raise InventoryError(
                f"no `{output}` output (for {variable}): apply the current terraform/ first"
            )
        variables[variable] = value
    return variables


def compare_with_node_map(
    nodes: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]
) -> None:
    errors = []
    for name in sorted(set(expected) - set(nodes)):
        errors.append(f"{name}: in the node map but not in the Terraform output")
    for name in sorted(set(nodes) - set(expected)):
        errors.append(f"{name}: in the Terraform output but not in the node map")
    for name in sorted(set(nodes) & set(expected)):
        pairs = (
            ("instance_type", "growbin_instance_type"),
            ("role", "growbin_node_role"),
        )
        for output_key, map_key in pairs:
            built, wanted = nodes[name][output_key], expected[name].get(map_key)
            if built != wanted:
                errors.append(
                    f"{name}: Terraform built {output_key} {built}, node map says {wanted}"
                )
    by_address: dict[str, list[str]] = {}
    for name, node in nodes.items():
        by_address.setdefault(node["private_ip"], []).append(name)
    for address, names in sorted(by_address.items()):
        if len(names) > 1:
            errors.append(f"{', '.join(sorted(names))} share the private address {address}")
    if errors:
        raise InventoryError(
            "Terraform state and node map disagree (run `terraform apply` again?):\n  "
            + "\n  ".join(errors)
        )


def build_inventory(
    outputs: dict[str, Any], node_map: dict[str, Any], connect_via: str
) -> dict[str, Any]:
    nodes = terraform_nodes(outputs)
    compare_with_node_map(nodes, node_map_hosts(node_map))
    hosts = {}
    for name in sorted(nodes):
        node = nodes[name]
        host: dict[str, Any] = {
            "ansible_host": node["instance_id"] if connect_via == "ssm" else node["private_ip"],
            "growbin_private_address": node["private_ip"],
        }
        if node.get("private_dns"):
            host["growbin_private_dns"] = node["private_dns"]
        if node.get("public_ip"):
            host["growbin_public_address"] = node["public_ip"]
        host["growbin_instance_id"] = node["instance_id"]
        host["growbin_availability_zone"] = node["availability_zone"]
        hosts[name] = host
    variables = inventory_variables(outputs)
    if connect_via == "ssm":
        region = (outputs.get("region") or {}).get("value")
        if not region:
            raise InventoryError("--connect-via ssm needs the `region` output")
        proxy = SSM_PROXY_COMMAND.format(region=region)
        variables["ansible_ssh_common_args"] = f"-o ProxyCommand={shlex.quote(proxy)}"
    return {"all": {"hosts": hosts, "vars": variables}}


def render(inventory: dict[str, Any], source: str) -> str:
    header = (
        "---\n"
        f"# GENERATED by scripts/terraform_inventory.py from {source}; do not edit.\n"
        "# Groups, roles, taints and instance types come from 00-node_map.yml (the node map);\n"
        "# this file adds only how to reach each host, its addresses, the image repository\n"
        "# and the ALB subnets (trusted proxies).\n"
    )
    body = yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False, width=100)
    return header + body


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "output_json",
        nargs="?",
        type=Path,
        help="file with `terraform output -json`; standard input when omitted",
    )
    parser.add_argument(
        "--connect-via",
        choices=("ssm", "private"),
        default="ssm",
        help="ssm: ansible_host is the instance id, SSH goes through Session Manager "
        "(default); private: ansible_host is the private address (from a VPN or peered network)",
    )
    parser.add_argument(
        "--node-map", type=Path, default=NODE_MAP, help="the node map (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        text = args.output_json.read_text() if args.output_json else stdin.read()
        try:
            outputs = json.loads(text)
        except json.JSONDecodeError as error:
            raise InventoryError(
                f"input is not JSON ({error}); expected `terraform output -json`"
            ) from error
        node_map = yaml.safe_load(args.node_map.read_text())
        inventory = build_inventory(outputs, node_map, args.connect_via)
    except (InventoryError, OSError) as error:
        print(f"terraform_inventory: {error}", file=sys.stderr)
        return 2
    source = str(args.output_json) if args.output_json else "`terraform output -json`"
    sys.stdout.write(render(inventory, source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
