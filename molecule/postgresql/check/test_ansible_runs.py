"""The role run again on the converged host: check mode, rotated secrets, missing or bad input."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import growbin_testinfra as gt
import pytest

PASSWORDS: dict[str, str] = gt.scenario_vars("secrets")["postgresql_domain_passwords"]


def test_check_mode_on_the_converged_host_changes_nothing():
    run = gt.check_converge()
    gt.assert_unchanged(run)
    gt.assert_hidden(run, PASSWORDS.values())


def test_rotated_passwords_are_detected_and_never_appear_in_the_output():
    rotated = {domain: f"rotated-{secrets.token_hex(12)}" for domain in PASSWORDS}
    # The phases the passwords pass through (the full run is the test above).
    phases = "--tags=postgresql_preflight,postgresql_install,postgresql_databases"
    run = gt.check_converge(phases, extra_vars={"postgresql_domain_passwords": rotated})
    assert run.returncode == 0, run.report
    # The owner-role task compares each password with the stored SCRAM verifier: all six differ.
    assert run.recap and all(c["changed"] == 1 for c in run.recap.values()), run.report
    assert run.output.count("changed: [postgresql-node] => (item=(censored due to no_log))") == 6
    gt.assert_hidden(run, [*rotated.values(), *PASSWORDS.values()])


def test_missing_secrets_fail_before_any_change_naming_the_variable():
    run = gt.run_playbook("without_secrets.yml")
    gt.assert_refused(run, "missing required arguments: postgresql_domain_passwords")


def refused(message: str, hidden: Iterable[str] = (), **extra_vars) -> None:
    """The role refuses the input in its preflight, before any change, saying the message."""
    run = gt.check_converge(extra_vars=extra_vars)
    gt.assert_refused(run, message, hidden=hidden)
    assert all(counters["failed"] == 1 for counters in run.recap.values()), run.report


def test_a_domain_without_a_password_is_named():
    incomplete = {domain: password for domain, password in PASSWORDS.items() if domain != "chat"}
    refused(
        "postgresql_domain_passwords has no password for domain(s) chat",
        hidden=incomplete.values(),
        postgresql_domain_passwords=incomplete,
    )


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
    refused(
        message,
        hidden=[*PASSWORDS.values(), *change.values()],
        postgresql_domain_passwords={**PASSWORDS, **change},
    )


def test_an_open_network_is_refused():
    refused(
        "postgresql_client_networks entry '0.0.0.0/0' must be an IPv4 network",
        postgresql_client_networks=["10.0.0.0/16", "0.0.0.0/0"],
    )
