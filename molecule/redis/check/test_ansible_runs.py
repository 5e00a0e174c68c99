"""The role run again on the converged host: check mode, rotated secrets, missing secrets."""

from __future__ import annotations

import hashlib
import secrets

import growbin_testinfra as gt

SECRET_NAMES = ("redis_app_password", "redis_exporter_password")


def test_check_mode_on_the_converged_host_changes_nothing():
    gt.assert_unchanged(gt.check_converge())


def test_rotated_secrets_never_appear_in_the_output():
    rotated = {name: f"rotated-{secrets.token_hex(12)}" for name in SECRET_NAMES}
    run = gt.check_converge(extra_vars=rotated)
    assert run.returncode == 0, run.report
    # The rotation reached the tasks that write the secrets (ACL file, exporter password file).
    assert run.recap and all(c["changed"] >= 2 for c in run.recap.values()), run.report
    hashes = [hashlib.sha256(value.encode()).hexdigest() for value in rotated.values()]
    gt.assert_hidden(run, [*rotated.values(), *hashes])


def test_missing_secrets_fail_before_any_change_naming_the_variables():
    run = gt.run_playbook("without_secrets.yml")
    gt.assert_refused(run, "missing required arguments", *SECRET_NAMES)


def test_a_short_password_is_refused_without_echoing_it():
    short = "short-" + secrets.token_hex(3)
    gt.assert_refused(
        gt.check_converge(extra_vars={SECRET_NAMES[0]: short}),
        "redis_app_password must be at least 16 characters long",
        hidden=[short],
    )
