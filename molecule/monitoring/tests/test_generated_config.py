"""The scrape jobs the role generates for the real 13-node inventory (inventories/local),
under both application runtimes: rendered on the controller with render_prometheus_config.yml,
validated by the monitoring node's promtool."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

testinfra_hosts = ["monitoring-node"]

PROJECT = Path(__file__).resolve().parents[3]
NODE_MAP = yaml.safe_load((PROJECT / "inventories/local/10-local_nodes.yml").read_text())


def _hosts(group: str) -> set[str]:
    def walk(tree: dict) -> dict:
        for name, sub in (tree.get("children") or {}).items():
            if name == group:
                return sub
            found = walk(sub)
            if found:
                return found
        return {}

    found = walk(NODE_MAP["all"])
    return set(found.get("hosts") or {}) | {
        h for c in (found.get("children") or {}) for h in _hosts(c)
    }


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    def run(runtime: str) -> dict:
        dest = tmp_path_factory.mktemp(runtime) / "prometheus.yml"
        result = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(PROJECT / "inventories/local"),
                str(PROJECT / "molecule/monitoring/render_prometheus_config.yml"),
                "-e",
                f"rendered_config_path={dest}",
                "-e",
                f"prometheus_app_runtime={runtime}",
                "-e",
                "ansible_connection=local",
            ],
            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / "collections")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return {"text": dest.read_text(), "config": yaml.safe_load(dest.read_text())}

    return run


def _jobs(config: dict) -> dict[str, set[str]]:
    """Instances of each static job."""
    return {
        job["job_name"]: {static["labels"]["instance"] for static in job.get("static_configs", [])}
        for job in config["scrape_configs"]
        if all("labels" in static for static in job.get("static_configs", []))
    }


def test_systemd_runtime_scrapes_every_node_and_service(render, host):
    rendered = render("systemd")
    jobs = _jobs(rendered["config"])
    every_node = _hosts("k8s_cluster") | _hosts("edge")
    assert jobs["node"] == every_node
    assert jobs["api"] == _hosts("api") and len(jobs["api"]) == 6
    assert jobs["workers"] == {"worker-storage", "worker-ai"}
    assert jobs["postgresql"] == {"k8s-postgresql"}
    assert jobs["redis"] == {"k8s-redis"}
    assert jobs["rabbitmq"] == jobs["rabbitmq_queues"] == {"k8s-rabbitmq"}
    assert "kubernetes_pods" not in jobs
    ports = {
        job["job_name"]: {t.rsplit(":", 1)[1] for s in job["static_configs"] for t in s["targets"]}
        for job in rendered["config"]["scrape_configs"]
    }
    assert ports["workers"] == {"9808"} and ports["api"] == {"8000"}
    # The monitoring node's promtool accepts it.
    host.run_expect([0], f"cat > /tmp/rendered.yml <<'EOF'\n{rendered['text']}\nEOF")
    check = host.run("promtool check config /tmp/rendered.yml")
    assert check.rc == 0, check.stdout + check.stderr


def test_kubernetes_runtime_discovers_pods_instead_of_app_nodes(render):
    jobs = {job["job_name"]: job for job in render("kubernetes")["config"]["scrape_configs"]}
    assert "api" not in jobs and "workers" not in jobs
    assert {"node", "postgresql", "redis", "rabbitmq", "rabbitmq_queues"} <= set(jobs)
    discovery = jobs["kubernetes_pods"]["kubernetes_sd_configs"][0]
    assert discovery["role"] == "pod"
    assert discovery["api_server"] == "https://172.29.77.10:6443"
    assert discovery["namespaces"]["names"] == ["growbin"]
    kept = jobs["kubernetes_pods"]["relabel_configs"][0]
    assert kept["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert kept["action"] == "keep"


def test_kubernetes_runtime_on_debians_prometheus_stops_with_an_explanation(host):
    # Debian builds Prometheus without kubernetes_sd_configs: the role must say so rather
    # than write a configuration Prometheus rejects. Nothing on the node changes.
    before = host.file("/etc/prometheus/prometheus.yml").md5sum
    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    result = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            host.backend.ansible_inventory,
            str(PROJECT / "molecule/monitoring/apply_role.yml"),
            "-e",
            "scenario_role=growbin.platform.prometheus",
            "-e",
            '{"prometheus_app_runtime": "kubernetes", "prometheus_kubernetes_bearer_token": "t0ken",'
            f' "prometheus_kubernetes_ca_cert": "{certificate}",'
            ' "prometheus_kubernetes_api_server": "https://10.0.0.10:6443"}',
        ],
        env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / "collections")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "was built without kubernetes_sd_configs" in output
    assert host.file("/etc/prometheus/prometheus.yml").md5sum == before
    assert not host.file("/etc/prometheus/kubernetes").exists
