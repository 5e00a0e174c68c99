"""The Grafana dashboards: valid, wired to the provisioned data source, and every metric a
panel queries is one the platform really exports - the running exporters (scraped here
through the targets Prometheus found) or the application's own metric declarations."""

import ast
import json
import re
from pathlib import Path

import pytest
from conftest import http_get

testinfra_hosts = ["monitoring-node"]

PROJECT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((PROJECT / "roles/grafana/files/dashboards").glob("*.json"))
DATASOURCES = (
    PROJECT / "roles/grafana/templates/etc/grafana/provisioning/datasources/growbin.yml.j2"
)

PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def _expressions(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (or a label_values() variable query)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"label_values\(([^,)]+),[^)]*\)", r"\1", expr)
    names = set(re.findall(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr))
    return {name for name in names if name.lower() not in PROMQL_WORDS}


def _app_metric_names() -> set[str]:
    """Series names the application declares (prometheus_client collectors in app/growbin)."""
    suffixes = {
        "Counter": ["_total", "_created"],
        "CounterMetricFamily": ["_total"],
        "Histogram": ["_bucket", "_sum", "_count", "_created"],
        "Summary": ["_sum", "_count", "_created"],
        "Gauge": [""],
        "GaugeMetricFamily": [""],
    }
    names = set()
    for source in (PROJECT / "app/growbin").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            kind = getattr(node.func, "id", getattr(node.func, "attr", ""))
            first = node.args[0]
            if (
                kind in suffixes
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                base = (
                    first.value.removesuffix("_total")
                    if kind.startswith("Counter")
                    else first.value
                )
                names |= {base + suffix for suffix in suffixes[kind]}
    return names


@pytest.fixture(scope="module")
def exported_names(prometheus) -> set[str]:
    names = set()
    for target in prometheus("/api/v1/targets", state="active")["data"]["activeTargets"]:
        body = http_get(target["scrapeUrl"]).decode()
        for line in body.splitlines():
            if line.startswith("# TYPE "):
                family, kind = line.split()[2:4]
                names.add(family)
                if kind in ("histogram", "summary"):
                    names |= {family + "_bucket", family + "_sum", family + "_count"}
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names | {"up"} | _app_metric_names()


def test_the_five_dashboards_exist():
    assert [p.name for p in DASHBOARDS] == [
        "growbin-api.json",
        "growbin-data-services.json",
        "growbin-nodes.json",
        "growbin-scan-pipeline.json",
        "growbin-worker-wal.json",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_and_uses_the_provisioned_datasource(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem and dashboard["title"].startswith("Growbin / ")
    provisioned = re.findall(r"uid: (\S+)", DATASOURCES.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in provisioned
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in provisioned
            assert metric_names(target["expr"]), target["expr"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_queried_metric_is_exported(path, exported_names):
    dashboard = json.loads(path.read_text())
    queried = set().union(*(metric_names(expr) for expr in _expressions(dashboard)))
    assert queried - exported_names == set()


def test_alert_rules_query_exported_metrics(exported_names):
    rules_dir = PROJECT / "roles/prometheus/files/etc/prometheus/rules"
    import yaml

    queried = set()
    for path in rules_dir.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                queried |= metric_names(rule["expr"])
    assert queried - exported_names == set()


def test_metric_name_extraction():
    assert metric_names(
        'sum by (service) (rate(growbin_http_requests_total{status=~"5.."}[5m])) '
        "/ on (instance) max by (instance) (pg_settings_max_connections) > 0.8"
    ) == {"growbin_http_requests_total", "pg_settings_max_connections"}
    assert metric_names('label_values(up{job="node"}, instance)') == {"up"}
