"""Alertmanager: valid configuration from the variables, ready, fed by Prometheus, and routing
by severity to the receivers the variables define."""

import json
import time

from conftest import http_json

testinfra_hosts = ["monitoring-node"]


def test_configuration_is_valid(host):
    result = host.run("amtool check-config /etc/prometheus/alertmanager.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert " - 2 receivers\n" in result.stdout
    config = host.file("/etc/prometheus/alertmanager.yml")
    assert config.mode == 0o640 and config.group == "prometheus"


def test_service_is_ready_on_private_address_and_loopback(host, address):
    assert host.service("prometheus-alertmanager").is_running
    assert host.run("curl -fsS http://127.0.0.1:9093/-/ready").rc == 0
    status = http_json(f"http://{address['monitoring-node']}:9093/api/v2/status")
    assert status["cluster"]["status"] == "disabled"
    assert not host.socket("tcp://0.0.0.0:9094").is_listening


def test_prometheus_sends_to_it(prometheus, address):
    active = prometheus("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [f"http://{address['monitoring-node']}:9093/api/v2/alerts"]


def test_alerts_are_routed_by_severity(nodes):
    # The scenario's always-firing rules: critical goes to the pager, warning to operators.
    sink = nodes["data-node"]
    deadline = time.monotonic() + 60
    while not (
        sink.file("/var/lib/webhook-sink/pager.jsonl").exists
        and sink.file("/var/lib/webhook-sink/operators.jsonl").exists
    ):
        assert time.monotonic() < deadline, "no notification reached the webhooks"
        time.sleep(2)

    def alert_names(receiver: str) -> set[str]:
        lines = sink.file(f"/var/lib/webhook-sink/{receiver}.jsonl").content_string.splitlines()
        return {a["labels"]["alertname"] for line in lines for a in json.loads(line)["alerts"]}

    assert alert_names("pager") == {"PipelineCheckCritical"}
    assert alert_names("operators") == {"PipelineCheckWarning"}
