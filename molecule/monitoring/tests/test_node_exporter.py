"""node_exporter on every node: private address only, hardened, answering."""

import pytest
from conftest import http_get


def test_listens_only_on_the_private_address(host):
    address = host.interface.default().addresses[0]
    listeners = [
        line.split()[3]
        for line in host.check_output("ss -Htln").splitlines()
        if line.split()[3].endswith(":9100")
    ]
    assert listeners == [f"{address}:9100"]


def test_refuses_loopback(host):
    assert host.run("curl -sS -o /dev/null http://127.0.0.1:9100/metrics").rc != 0


def test_metrics_reach_the_controller_over_the_private_network(host):
    address = host.interface.default().addresses[0]
    body = http_get(f"http://{address}:9100/metrics").decode()
    assert "\nnode_memory_MemAvailable_bytes " in body
    assert "\nnode_filesystem_avail_bytes{" in body


@pytest.mark.parametrize(
    "setting",
    ["NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "User=prometheus"],
)
def test_unit_is_sandboxed(host, setting):
    shown = host.check_output(
        "systemctl show prometheus-node-exporter "
        "-p NoNewPrivileges -p ProtectSystem -p CapabilityBoundingSet -p User"
    ).splitlines()
    assert setting in shown


def test_process_has_no_capabilities(host):
    pid = host.check_output("systemctl show -p MainPID --value prometheus-node-exporter")
    status = host.file(f"/proc/{pid}/status").content_string
    effective = next(line for line in status.splitlines() if line.startswith("CapEff:"))
    assert int(effective.split()[1], 16) == 0
