"""Unit tests of the alert rules the role installs, run with Prometheus' own `promtool`.

Run: `python -m pytest roles/prometheus/tests` (needs `promtool`: `apt-get install prometheus`
on Debian/Ubuntu, or PROMTOOL=/path/to/promtool).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROLE / "files/etc/prometheus/rules").glob("*.rules.yml"))
TEST_FILES = sorted((ROLE / "tests/rules").glob("*.test.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.fail(
            "promtool not found: install it (`apt-get install prometheus` on Debian) "
            "or point PROMTOOL at the binary"
        )
    return path


def _alert_names(rule_file: Path) -> list[str]:
    groups = yaml.safe_load(rule_file.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_rule_files_are_valid(promtool):
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda path: path.name)
def test_promtool_rule_tests_pass(promtool, test_file):
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [promtool, "test", "rules", test_file.name],
        cwd=test_file.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_a_test_file():
    tested = {
        (TEST_FILES[0].parent / rule).resolve()
        for test_file in TEST_FILES
        for rule in yaml.safe_load(test_file.read_text())["rule_files"]
    }
    assert set(RULE_FILES) <= tested


@pytest.mark.parametrize(
    "alert",
    [name for rule_file in RULE_FILES for name in _alert_names(rule_file)],
)
def test_every_alert_is_seen_firing_and_then_resolved(alert):
    # promtool only checks what a test asks for; this makes sure each alert is asked
    # to fire and, later in the same test, to have resolved.
    for test_file in TEST_FILES:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            checks = sorted(
                (_minutes(check["eval_time"]), bool(check.get("exp_alerts")))
                for check in case.get("alert_rule_test", [])
                if check["alertname"] == alert
            )
            fired = [time for time, firing in checks if firing]
            if fired and any(not firing and time > fired[0] for time, firing in checks):
                return
    pytest.fail(f"no promtool test shows {alert} firing and then resolving")


def _minutes(duration: str) -> int:
    units = {"m": 1, "h": 60}
    return int(duration[:-1]) * units[duration[-1]]


def test_series_values_are_strings():
    # YAML 1.1 readers (PyYAML, and so Ansible) turn an unquoted `0x25` into 37.
    for test_file in TEST_FILES:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for series in case["input_series"]:
                assert isinstance(series["values"], str), (test_file.name, series)
