"""The addresses Prometheus scrapes the application pods from (roles/growbin_app).

Prometheus runs in the monitoring node's host network. A scrape of a pod on the same node
leaves from the node's own address; a scrape of a pod on another node goes through Calico's
overlay, and the host's packets into the tunnel are sourced from the node's tunnel address
(assigned by Calico IPAM from the pod network and recorded as an annotation on the Kubernetes
Node object). The chart's NetworkPolicies must admit both.

``metrics_source_cidrs(addresses, nodes)`` takes the monitoring hosts' private addresses
(``{host: address}``, in inventory order) and their Node objects (as ``k8s_info`` returns
them; the Node name is the inventory hostname kubeadm registers) and returns, per host, its
address and then each tunnel address as a /32. A Node without tunnel annotations (no
encapsulation) contributes its address only; a host without a Node is an error naming it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError

TUNNEL_ANNOTATIONS = (
    "projectcalico.org/IPv4VXLANTunnelAddr",
    "projectcalico.org/IPv4IPIPTunnelAddr",
)


def _host_cidr(value: Any, what: str) -> str:
    try:
        address = ipaddress.IPv4Address(str(value).split("/", 1)[0].strip())
    except ValueError as exc:
        raise AnsibleFilterError(
            f"metrics_source_cidrs: {what} is not an IPv4 address: {value!r}"
        ) from exc
    return f"{address}/32"


def metrics_source_cidrs(addresses: dict[str, str], nodes: list[dict[str, Any]]) -> list[str]:
    by_name = {(node.get("metadata") or {}).get("name"): node for node in nodes or []}
    missing = [host for host in addresses if host not in by_name]
    if missing:
        raise AnsibleFilterError(
            f"metrics_source_cidrs: no Kubernetes Node named {', '.join(missing)} (the monitoring "
            "host's inventory name, which kubeadm registers as the Node name): the host has not "
            "joined the cluster, so its Calico tunnel address, the source of its scrapes of pods "
            "on other nodes, is unknown."
        )
    cidrs: list[str] = []
    for host, address in addresses.items():
        annotations = by_name[host].get("metadata", {}).get("annotations") or {}
        candidates = [_host_cidr(address, f"growbin_private_address of {host}")] + [
            _host_cidr(annotations[key], f"{key} of Node {host}")
            for key in TUNNEL_ANNOTATIONS
            if annotations.get(key)
        ]
        cidrs += [cidr for cidr in candidates if cidr not in cidrs]
    return cidrs


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"metrics_source_cidrs": metrics_source_cidrs}
