"""Prometheus on the monitoring node: every generated target is up, the rules load and their
unit tests pass against the installed files, retention comes from the variables."""

import json
import time
from pathlib import Path

import pytest
import yaml

testinfra_hosts = ["monitoring-node"]

ROLE = Path(__file__).resolve().parents[3] / "roles" / "prometheus"
EXPECTED_TARGETS = {
    ("prometheus", "monitoring-node"),
    ("alertmanager", None),
    ("node", "monitoring-node"),
    ("node", "data-node"),
    ("postgresql", "data-node"),
    ("redis", "data-node"),
    ("rabbitmq", "data-node"),
    ("rabbitmq_queues", "data-node"),
}


def _targets(prometheus):
    return prometheus("/api/v1/targets", state="active")["data"]["activeTargets"]


def test_every_generated_target_is_scraped(prometheus):
    found = {
        (
            t["labels"]["job"],
            t["labels"]["instance"] if t["labels"]["job"] != "alertmanager" else None,
        )
        for t in _targets(prometheus)
    }
    assert found == EXPECTED_TARGETS


def test_every_target_is_up(prometheus):
    # Scrapes run every 5 s in this scenario; give a restarted exporter a few rounds.
    deadline = time.monotonic() + 60
    while True:
        result = prometheus("/api/v1/query", query="up")["data"]["result"]
        down = [r["metric"] for r in result if r["value"][1] != "1"]
        if len(result) == len(EXPECTED_TARGETS) and not down:
            break
        assert time.monotonic() < deadline, f"targets not up: {down or result}"
        time.sleep(2)


def test_data_service_exporters_see_their_servers(prometheus):
    for query in ("pg_up", "redis_up", 'rabbitmq_identity_info{job="rabbitmq"}'):
        result = prometheus("/api/v1/query", query=query)["data"]["result"]
        assert [r["value"][1] for r in result] == ["1"], query


def test_scrape_urls_are_the_private_addresses(prometheus, address):
    urls = {t["labels"]["job"]: t["scrapeUrl"] for t in _targets(prometheus)}
    assert urls["redis"] == f"http://{address['data-node']}:9121/metrics"
    assert urls["postgresql"] == f"http://{address['data-node']}:9187/metrics"
    assert urls["rabbitmq_queues"].startswith(
        f"http://{address['data-node']}:15692/metrics/detailed?"
    )


def test_all_rules_load_and_evaluate(prometheus):
    groups = prometheus("/api/v1/rules")["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    shipped = {
        rule["alert"]
        for path in (ROLE / "files/etc/prometheus/rules").glob("*.rules.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    assert shipped <= set(rules)
    assert {name for name, rule in rules.items() if rule["health"] != "ok"} == set()


def test_rule_unit_tests_pass_against_the_installed_rules(host):
    # The role's promtool tests, pointed at the files the role installed.
    workdir = "/tmp/rule-tests"
    host.run_expect([0], f"rm -rf {workdir} && mkdir -p {workdir}")
    for test_file in sorted((ROLE / "tests/rules").glob("*.test.yml")):
        spec = yaml.safe_load(test_file.read_text())
        spec["rule_files"] = [f"/etc/prometheus/rules/{Path(r).name}" for r in spec["rule_files"]]
        content = json.dumps(spec)
        host.run_expect([0], f"cat > {workdir}/{test_file.name} <<'EOF'\n{content}\nEOF")
    result = host.run(f"cd {workdir} && promtool test rules *.test.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(list((ROLE / "tests/rules").glob("*.test.yml")))


def test_configuration_is_valid_and_retention_comes_from_variables(host):
    assert host.run("promtool check config /etc/prometheus/prometheus.yml").rc == 0
    args = host.check_output("ps -o args= -C prometheus")
    assert "--storage.tsdb.retention.time=2d" in args
    assert "--storage.tsdb.retention.size=1GB" in args
    config = host.file("/etc/prometheus/prometheus.yml")
    assert config.group == "prometheus" and config.mode == 0o640


@pytest.mark.parametrize("port", [9090])
def test_prometheus_listens_only_on_the_private_address(host, address, port):
    listeners = [
        line.split()[3]
        for line in host.check_output("ss -Htln").splitlines()
        if line.split()[3].endswith(f":{port}")
    ]
    assert listeners == [f"{address['monitoring-node']}:{port}"]
