"""The scenario's two nodes, their addresses, and HTTP helpers for the controller side."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlencode

import pytest

NODES = ("monitoring-node", "data-node")


@pytest.fixture(scope="module")
def nodes(host):
    inventory = host.backend.ansible_inventory
    return {name: host.get_host(f"ansible://{name}", ansible_inventory=inventory) for name in NODES}


@pytest.fixture(scope="module")
def address(nodes) -> dict[str, str]:
    """Private address of each node (the container's address on the scenario network)."""
    return {name: node.interface.default().addresses[0] for name, node in nodes.items()}


@pytest.fixture(scope="module")
def prometheus(address):
    base = f"http://{address['monitoring-node']}:9090"
    return lambda path, **params: http_json(
        base + path + ("?" + urlencode(params) if params else "")
    )


def http_get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - test URLs only
        return response.read()


def http_json(url: str) -> dict:
    return json.loads(http_get(url))
