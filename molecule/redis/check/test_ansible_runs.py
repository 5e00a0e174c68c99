"""The role run again on the converged host: check mode, rotated secrets, missing secrets."""

from __future__ import annotations

import hashlib
import json
import secrets

import growbin_testinfra as gt

SECRET_NAMES = ("redis_app_password", "redis_exporter_password")


def test_check_mode_on_the_converged_host_changes_nothing():
    run = gt.run_playbook("converge.yml", "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:]
    recap = gt.play_recap(run.stdout)
    assert recap, run.stdout[-3000:]
    for counters in recap.values():
        assert counters["changed"] == 0 and counters["failed"] == 0, run.stdout[-3000:]


def test_rotated_secrets_never_appear_in_the_output():
    rotated = {name: f"rotated-{secrets.token_hex(12)}" for name in SECRET_NAMES}
    run = gt.run_playbook("converge.yml", "--check", "--diff", "-v", "-e", json.dumps(rotated))
    assert run.returncode == 0, run.stdout[-3000:]
    # The rotation reached the tasks that write the secrets (ACL file, exporter password file).
    assert all(counters["changed"] >= 2 for counters in gt.play_recap(run.stdout).values())
    output = run.stdout + run.stderr
    for value in rotated.values():
        assert value not in output
        assert hashlib.sha256(value.encode()).hexdigest() not in output


def test_missing_secrets_fail_before_any_change_naming_the_variables():
    run = gt.run_playbook("without_secrets.yml")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "missing required arguments" in output
    for name in SECRET_NAMES:
        assert name in output
    assert all(counters["changed"] == 0 for counters in gt.play_recap(run.stdout).values())


def test_a_short_password_is_refused_without_echoing_it():
    short = "short-" + secrets.token_hex(3)
    run = gt.run_playbook("converge.yml", "--check", "-e", json.dumps({SECRET_NAMES[0]: short}))
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "redis_app_password must be at least 16 characters long" in output
    assert short not in output
