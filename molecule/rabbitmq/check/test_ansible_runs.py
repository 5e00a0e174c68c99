"""The role run again on the converged host: check mode, rotated secrets, missing secrets."""

from __future__ import annotations

import json
import secrets

import growbin_testinfra as gt

PASSWORD_NAMES = (
    "rabbitmq_admin_password",
    "rabbitmq_app_password",
    "rabbitmq_monitoring_password",
)
SECRET_NAMES = ("rabbitmq_erlang_cookie", *PASSWORD_NAMES)


def test_check_mode_on_the_converged_host_changes_nothing():
    run = gt.run_playbook("converge.yml", "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:]
    recap = gt.play_recap(run.stdout)
    assert recap, run.stdout[-3000:]
    for counters in recap.values():
        assert counters["changed"] == 0 and counters["failed"] == 0, run.stdout[-3000:]


def test_a_rotated_cookie_never_appears_in_the_output():
    # rabbitmq_user has no check mode, so only the cookie's rotation is reported as a change,
    # and the HTTP API modules still need the admin password the broker knows.
    rotated = {
        name: "Rotated" + secrets.token_hex(16)
        for name in SECRET_NAMES
        if name != "rabbitmq_admin_password"
    }
    # Only the phases that handle secrets: the topology phase's rabbitmqctl calls add a minute.
    run = gt.run_playbook(
        "converge.yml",
        "--check",
        "--diff",
        "-v",
        "--tags",
        "rabbitmq_preflight,rabbitmq_configure,rabbitmq_users",
        "-e",
        json.dumps(rotated),
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(counters["changed"] >= 1 for counters in gt.play_recap(run.stdout).values())
    output = run.stdout + run.stderr
    for value in rotated.values():
        assert value not in output


def test_missing_secrets_fail_before_any_change_naming_the_variables():
    run = gt.run_playbook("without_secrets.yml")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "missing required arguments" in output
    for name in SECRET_NAMES:
        assert name in output
    assert all(counters["changed"] == 0 for counters in gt.play_recap(run.stdout).values())


def test_a_weak_cookie_is_refused_without_echoing_it():
    weak = "weak" + secrets.token_hex(3)
    run = gt.run_playbook(
        "converge.yml", "--check", "-e", json.dumps({"rabbitmq_erlang_cookie": weak})
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "rabbitmq_erlang_cookie must be 20-255 letters and digits" in output
    assert weak not in output
