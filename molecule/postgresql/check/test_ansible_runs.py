"""The role run again on the converged host: check mode, rotated secrets, missing or bad input."""

from __future__ import annotations

import json
import secrets

import growbin_testinfra as gt
import pytest

PASSWORDS: dict[str, str] = gt.scenario_vars("secrets")["postgresql_domain_passwords"]


def check_run(*args: str, **extra_vars) -> tuple[str, dict[str, dict[str, int]], int]:
    args = ("--check", "--diff", "-v", *args)
    if extra_vars:
        args += ("-e", json.dumps(extra_vars))
    run = gt.run_playbook("converge.yml", *args)
    return flat(run.stdout + run.stderr), gt.play_recap(run.stdout), run.returncode


def flat(output: str) -> str:
    """Output with every run of whitespace made one space (result formatters wrap long lines)."""
    return " ".join(output.split())


def test_check_mode_on_the_converged_host_changes_nothing():
    output, recap, returncode = check_run()
    assert returncode == 0, output[-3000:]
    assert recap, output[-3000:]
    for counters in recap.values():
        assert counters["changed"] == 0 and counters["failed"] == 0, output[-3000:]
    for password in PASSWORDS.values():
        assert password not in output


def test_rotated_passwords_are_detected_and_never_appear_in_the_output():
    rotated = {domain: f"rotated-{secrets.token_hex(12)}" for domain in PASSWORDS}
    # The phases the passwords pass through (the full run is the test above).
    phases = "--tags=postgresql_preflight,postgresql_install,postgresql_databases"
    output, recap, returncode = check_run(phases, postgresql_domain_passwords=rotated)
    assert returncode == 0, output[-3000:]
    # The owner-role task compares each password with the stored SCRAM verifier: all six differ.
    assert recap and all(counters["changed"] == 1 for counters in recap.values()), output[-3000:]
    assert output.count("changed: [postgresql-node] => (item=(censored due to no_log))") == 6
    for value in list(rotated.values()) + list(PASSWORDS.values()):
        assert value not in output


def test_missing_secrets_fail_before_any_change_naming_the_variable():
    run = gt.run_playbook("without_secrets.yml")
    assert run.returncode != 0
    assert "missing required arguments: postgresql_domain_passwords" in flat(
        run.stdout + run.stderr
    )
    assert all(counters["changed"] == 0 for counters in gt.play_recap(run.stdout).values())


def refused(**extra_vars) -> str:
    """Output of a run that the role must refuse in its preflight, before any change."""
    output, recap, returncode = check_run(**extra_vars)
    assert returncode != 0, output[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 1 for c in recap.values()), output[-3000:]
    return output


def test_a_domain_without_a_password_is_named():
    incomplete = {domain: password for domain, password in PASSWORDS.items() if domain != "chat"}
    output = refused(postgresql_domain_passwords=incomplete)
    assert "postgresql_domain_passwords has no password for domain(s) chat" in output
    for password in incomplete.values():
        assert password not in output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"scans": "short-" + secrets.token_hex(3)},
            "the password(s) of scans must be strings of at least 16 characters",
        ),
        (
            {"location": "a-long-enough-password-" + secrets.token_hex(6)},
            "unknown domain(s) location",
        ),
    ],
    ids=["short", "unknown-domain"],
)
def test_bad_passwords_are_refused_without_echoing_them(change, message):
    output = refused(postgresql_domain_passwords={**PASSWORDS, **change})
    assert message in output
    for password in list(PASSWORDS.values()) + list(change.values()):
        assert password not in output


def test_an_open_network_is_refused():
    output = refused(postgresql_client_networks=["10.0.0.0/16", "0.0.0.0/0"])
    assert "postgresql_client_networks entry '0.0.0.0/0' must be an IPv4 network" in output
