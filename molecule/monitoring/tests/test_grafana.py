"""The Grafana role where Grafana's repository is unreachable (as on the test machines):
it stops before changing anything and says what to do; it also refuses to run without a
strong admin password. Each case runs the role with ansible-playbook."""

import os
import subprocess
from pathlib import Path

import pytest

testinfra_hosts = ["monitoring-node"]

PROJECT = Path(__file__).resolve().parents[3]
PLAYBOOK = PROJECT / "molecule/monitoring/apply_role.yml"


@pytest.fixture(scope="module")
def run_role(host):
    def run(*extra_vars: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / "collections"),
            "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
        }
        argv = ["ansible-playbook", "-i", host.backend.ansible_inventory, str(PLAYBOOK)]
        argv += ["-e", "scenario_role=growbin.platform.grafana"]
        for extra in extra_vars:
            argv += ["-e", extra]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)

    return run


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_unreachable_repository_stops_with_what_to_do(host, run_role):
    result = run_role("grafana_admin_password=correct-horse-battery-staple")
    output = _flat(result.stdout + result.stderr)
    assert result.returncode != 0
    assert "Grafana's apt repository is unreachable from monitoring-node" in output
    assert "set grafana_deb_path to its path on the controller" in output
    # Nothing was half-installed.
    assert not host.package("grafana").is_installed
    assert not host.file("/etc/apt/sources.list.d/grafana.sources").exists


def test_admin_password_is_required(run_role):
    result = run_role()
    output = _flat(result.stdout + result.stderr)
    assert result.returncode != 0
    assert "missing required arguments: grafana_admin_password" in output


def test_weak_admin_password_is_refused(run_role):
    result = run_role("grafana_admin_password=admin")
    output = _flat(result.stdout + result.stderr)
    assert result.returncode != 0
    assert "grafana_admin_password must have at least 12 characters" in output
    assert "Grafana's apt repository" not in output


def test_missing_local_package_is_reported(run_role, tmp_path):
    missing = tmp_path / "grafana_11.0.0_amd64.deb"
    result = run_role(
        "grafana_admin_password=correct-horse-battery-staple", f"grafana_deb_path={missing}"
    )
    output = _flat(result.stdout + result.stderr)
    assert result.returncode != 0
    assert f"grafana_deb_path '{missing}' does not exist on the controller" in output
