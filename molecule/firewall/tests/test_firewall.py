"""The firewall as the clients see it: fw-allowed and fw-denied connect to fw-node."""

from __future__ import annotations

import os

import growbin_testinfra as gt
import pytest
import testinfra

testinfra_hosts = ["ansible://fw-node"]

NODE = "172.29.81.10"
ALLOWED = "172.29.81.11"
RULES = gt.scenario_vars("firewall")["firewall_rules"]


def client(name: str):
    return testinfra.get_host(
        f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


def connect(source, port: int) -> str:
    """'open', 'refused' or 'dropped' (no answer at all within 2 s)."""
    rc = source.run(f"timeout 2 bash -c '</dev/tcp/{NODE}/{port}'").rc
    return {0: "open", 124: "dropped"}.get(rc, "refused")


@pytest.mark.parametrize(
    ("source", "port", "outcome"),
    [
        ("fw-allowed", 6379, "open"),
        ("fw-denied", 6379, "dropped"),
        ("fw-allowed", 8080, "open"),
        ("fw-denied", 8080, "open"),
        ("fw-allowed", 9090, "dropped"),
        ("fw-denied", 9090, "dropped"),
    ],
)
def test_only_the_listed_sources_reach_each_port(source, port, outcome):
    assert connect(client(source), port) == outcome


def test_the_blocked_listener_answers_locally(host):
    # 9090 is dropped from outside, not missing: over loopback it answers.
    assert host.run("timeout 2 bash -c '</dev/tcp/127.0.0.1/9090'").rc == 0


# One ICMP echo request over a raw socket (the node image has no ping); exit 0 on a reply.
PING = """
import socket, struct, sys
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
header = struct.pack("!BBHHH", 8, 0, 0, 0x6762, 1) + b"growbin!"
packet = header[:2] + struct.pack("!H", checksum(header)) + header[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(2)
s.sendto(packet, (sys.argv[1], 0))
while True:
    reply = s.recv(1024)
    if reply[20] == 0 and reply[24:26] == b"\\x67\\x62":
        sys.exit(0)
"""


def test_ping_is_answered():
    result = client("fw-denied").run(f"python3 -c '{PING}' {NODE}")
    assert result.rc == 0, result.stderr


def test_dockers_dns_rules_survive_and_names_resolve(host):
    nat = host.check_output("nft list table ip nat")
    assert "127.0.0.11" in nat and "DOCKER_OUTPUT" in nat
    assert host.check_output("getent hosts fw-allowed").split()[0] == ALLOWED


def test_the_table_holds_every_rule(host):
    table = host.check_output("nft list table inet growbin")
    assert "policy drop;" in table
    for rule in RULES:
        assert f'comment "{rule["name"]}"' in table
    assert 'ip saddr 172.29.81.0/24 tcp dport 22 accept comment "ssh"' in table
    assert "udp dport 30000-32767" in table
    assert "ip6 saddr fd00:81::/64 tcp dport 6379" in table
    assert 'log prefix "growbin-firewall drop: "' in table


def test_only_the_growbin_table_is_ours(host):
    tables = set(host.check_output("nft list tables").splitlines())
    assert tables == {"table ip nat", "table inet growbin"}


def test_the_unit_is_active_and_enabled_and_debians_is_not_used(host):
    unit = host.service("growbin-firewall")
    assert unit.is_enabled
    assert host.check_output("systemctl is-active growbin-firewall") == "active"
    assert not host.service("nftables").is_enabled
    rules = host.file("/etc/growbin/firewall.nft")
    assert (rules.user, rules.group, rules.mode) == ("root", "root", 0o600)
    statements = [line for line in rules.content_string.splitlines() if not line.startswith("#")]
    assert not [line for line in statements if "flush" in line]


def test_restarting_the_unit_keeps_the_rules(host):
    before = host.check_output("nft list table inet growbin")
    host.check_output("systemctl restart growbin-firewall")
    assert host.check_output("nft list table inet growbin") == before
    assert connect(client("fw-denied"), 6379) == "dropped"
    assert connect(client("fw-allowed"), 6379) == "open"
    assert "127.0.0.11" in host.check_output("nft list table ip nat")


def test_reloading_replaces_the_table_in_place(host):
    host.check_output("systemctl reload growbin-firewall")
    assert host.check_output("nft list tables | grep -c 'table inet growbin'") == "1"
    assert host.check_output("systemctl is-active growbin-firewall") == "active"
