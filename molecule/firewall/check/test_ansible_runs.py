"""The role run again on the converged node: check mode, bad input, a rule change, removal."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import growbin_testinfra as gt
import pytest
import testinfra

NODE = "172.29.81.10"
SCENARIO = gt.scenario_vars("firewall")
DISABLED = {"firewall_enabled": False}


def machine(name: str):
    return testinfra.get_host(
        f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


def reachable_from_denied(port: int) -> bool:
    return machine("fw-denied").run(f"timeout 2 bash -c '</dev/tcp/{NODE}/{port}'").rc == 0


def converge(extra_vars: dict | None = None) -> dict[str, int]:
    run = gt.run_playbook("converge.yml", extra_vars=extra_vars)
    assert run.returncode == 0, run.report
    # converge.yml runs on fw-node only.
    (counters,) = run.recap.values()
    return counters


def test_check_mode_on_the_converged_host_changes_nothing():
    run = gt.check_converge()
    gt.assert_unchanged(run)
    assert list(run.recap) == ["fw-node"]


def rule(**overrides) -> dict:
    return {"name": "bad", "port": 6379, "sources": "any", **overrides}


# Each rule check runs on every entry, so one run reports all the bad rules, each by index.
BAD_RULES = [
    (
        rule(sources=["172.29.81.11", "not-an-ip"]),
        "firewall_rules[0] (bad): sources[1] 'not-an-ip' is not an IPv4/IPv6 address or CIDR",
    ),
    (rule(sources=["10.0.0.0/33"]), "firewall_rules[1] (bad): sources[0] '10.0.0.0/33'"),
    (rule(sources=["fd00::1::2"]), "firewall_rules[2] (bad): sources[0] 'fd00::1::2'"),
    (rule(sources=[]), "firewall_rules[3] (bad): sources must be a non-empty list"),
    (rule(port=70000), "firewall_rules[4] (bad): port 70000 is outside 1-65535"),
    (rule(port="200-100"), "firewall_rules[5] (bad): port range 200-100 must run from a lower"),
    (rule(port="http"), "firewall_rules[6] (bad): port must be a number 1-65535"),
    # (A quote would end the nft comment; how the output quotes it back is Ansible's business.)
    (rule(name='x" accept'), "name must be 1-64 letters"),
    (rule(sources="10.0.0.1"), "firewall_rules[8] (bad): sources must be a list"),
]

BAD_INPUT = {
    "bad-rules": (
        {"firewall_rules": [bad for bad, _ in BAD_RULES]},
        [message for _, message in BAD_RULES],
    ),
    "icmp": ({"firewall_rules": [rule(proto="icmp")]}, ["proto", "firewall_rules"]),
    "empty-ssh-sources": (
        {"firewall_ssh_sources": []},
        ["firewall_ssh_sources is empty"],
    ),
    "ssh-any": (
        {"firewall_ssh_sources": ["0.0.0.0/0", "any"]},
        ["firewall_ssh_sources[1] 'any' is not an IPv4/IPv6 address or CIDR"],
    ),
    "bad-interface": (
        {"firewall_trusted_interfaces": ["cali*", "eth0; accept"]},
        ["firewall_trusted_interfaces[1] 'eth0; accept' is not an interface name"],
    ),
}


@pytest.fixture(scope="module")
def bad_input_runs() -> dict[str, gt.PlaybookRun]:
    """Every bad input at once (they fail in preflight, before the role changes anything)."""
    with ThreadPoolExecutor(max_workers=len(BAD_INPUT) + 1) as pool:
        futures = {
            case: pool.submit(gt.run_playbook, "converge.yml", extra_vars=extra_vars)
            for case, (extra_vars, _) in BAD_INPUT.items()
        }
        futures["no-ssh-sources"] = pool.submit(gt.run_playbook, "without_ssh_sources.yml")
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_fails_before_any_change_naming_the_variable(bad_input_runs, case):
    gt.assert_refused(bad_input_runs[case], *BAD_INPUT[case][1])


def test_missing_ssh_sources_fail_naming_the_variable(bad_input_runs):
    gt.assert_refused(
        bad_input_runs["no-ssh-sources"], "missing required arguments: firewall_ssh_sources"
    )


def test_a_new_rule_is_loaded_and_removing_it_closes_the_port_again():
    opened = [*SCENARIO["firewall_rules"], {"name": "metrics", "port": 9090, "sources": "any"}]
    try:
        assert converge({"firewall_rules": opened})["changed"] == 2  # the rules file and the reload
        assert reachable_from_denied(9090)
    finally:
        assert converge()["changed"] == 2
    assert not reachable_from_denied(9090)


def test_disabling_removes_only_our_table_and_unit_then_enabling_restores_them():
    node = machine("fw-node")
    try:
        assert converge(DISABLED)["changed"] > 0
        assert converge(DISABLED)["changed"] == 0
        assert node.check_output("nft list tables") == "table ip nat"
        assert not node.file("/etc/systemd/system/growbin-firewall.service").exists
        assert not node.file("/etc/growbin/firewall.nft").exists
        assert reachable_from_denied(9090)
    finally:
        converge()
    assert node.check_output("systemctl is-active growbin-firewall") == "active"
    assert not reachable_from_denied(9090)
    assert node.check_output("getent hosts fw-allowed").startswith("172.29.81.11")
