"""The role run again on the converged host: check mode, rotated secrets, missing secrets."""

from __future__ import annotations

import secrets

import growbin_testinfra as gt

PASSWORD_NAMES = (
    "rabbitmq_admin_password",
    "rabbitmq_app_password",
    "rabbitmq_monitoring_password",
)
SECRET_NAMES = ("rabbitmq_erlang_cookie", *PASSWORD_NAMES)


def test_check_mode_on_the_converged_host_changes_nothing():
    gt.assert_unchanged(gt.check_converge())


def test_a_rotated_cookie_never_appears_in_the_output():
    # rabbitmq_user has no check mode, so only the cookie's rotation is reported as a change,
    # and the HTTP API modules still need the admin password the broker knows.
    rotated = {
        name: "Rotated" + secrets.token_hex(16)
        for name in SECRET_NAMES
        if name != "rabbitmq_admin_password"
    }
    # Only the phases that handle secrets: the topology phase's rabbitmqctl calls add a minute.
    run = gt.check_converge(
        "--tags", "rabbitmq_preflight,rabbitmq_configure,rabbitmq_users", extra_vars=rotated
    )
    assert run.returncode == 0, run.report
    assert run.recap and all(c["changed"] >= 1 for c in run.recap.values()), run.report
    gt.assert_hidden(run, rotated.values())


def test_missing_secrets_fail_before_any_change_naming_the_variables():
    run = gt.run_playbook("without_secrets.yml")
    gt.assert_refused(run, "missing required arguments", *SECRET_NAMES)


def test_a_weak_cookie_is_refused_without_echoing_it():
    weak = "weak" + secrets.token_hex(3)
    gt.assert_refused(
        gt.check_converge(extra_vars={"rabbitmq_erlang_cookie": weak}),
        "rabbitmq_erlang_cookie must be 20-255 letters and digits",
        hidden=[weak],
    )
