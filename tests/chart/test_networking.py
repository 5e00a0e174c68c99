"""Services, data-service Endpoints, both Ingress flavours and NetworkPolicy behaviour."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest
import yaml

from .conftest import CHART_DIR, CI_VALUES_DIR, NAMESPACE, RELEASE, Rendered, render

API_DOMAINS = ("auth", "users", "scans", "recycling", "locations", "chat")
DATA_SERVICES = {"postgresql": 5432, "redis": 6379, "rabbitmq": 5672}


def _values(values_set: str) -> dict:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    if values_set in ("default", "managed-secret"):
        return defaults
    override = yaml.safe_load((CI_VALUES_DIR / f"{values_set}-values.yaml").read_text())
    return {**defaults, **override}


def test_every_selecting_service_reaches_a_pod_port(rendered: Rendered) -> None:
    templates = [t for _, t in rendered.pod_templates()]
    for service in rendered.of_kind("Service"):
        selector = service["spec"].get("selector")
        if selector is None:
            continue
        name = service["metadata"]["name"]
        pods = [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]
        assert len(pods) == 1, f"{name} selects {len(pods)} pod templates"
        port_names = {p["name"] for c in pods[0]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, name


@pytest.mark.parametrize("values_set", ["default", "production", "minimal"])
def test_data_services_are_selectorless_with_endpoints_from_values(values_set: str) -> None:
    rendered = render(values_set)
    external = _values(values_set)["externalServices"]
    for service_name, port in DATA_SERVICES.items():
        name = f"{RELEASE}-{service_name}"
        service = rendered.get("Service", name)
        endpoints = rendered.get("Endpoints", name)
        assert "selector" not in service["spec"]
        assert service["spec"]["ports"] == [
            {"name": service_name, "port": port, "targetPort": port, "protocol": "TCP"}
        ]
        (subset,) = endpoints["subsets"]
        assert [a["ip"] for a in subset["addresses"]] == external[service_name]["addresses"]
        assert subset["ports"] == [{"name": service_name, "port": port, "protocol": "TCP"}]


@pytest.mark.parametrize("values_set", ["default", "production", "nginx"])
def test_ingress_paths_point_to_existing_service_ports(values_set: str) -> None:
    rendered = render(values_set)
    (ingress,) = rendered.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "api.growbin.app"
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == {f"/api/v1/{d}" for d in API_DOMAINS}
    for path, spec in paths.items():
        assert spec["pathType"] == "Prefix"
        backend = spec["backend"]["service"]
        service = rendered.get("Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
        assert backend["name"] == f"{RELEASE}-{path.rsplit('/', 1)[1]}"


def test_alb_flavour() -> None:
    rendered = render("production")
    ingress = rendered.get("Ingress", RELEASE)
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert "tls" not in ingress["spec"], "the ALB terminates TLS with the ACM certificate"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert annotations["alb.ingress.kubernetes.io/group.name"] == "growbin"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "instance"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/health"
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    for domain in API_DOMAINS:
        service = rendered.get("Service", f"{RELEASE}-{domain}")
        assert service["spec"]["type"] == "NodePort"
        assert service["spec"]["externalTrafficPolicy"] == "Local"


def test_alb_without_certificate_arn_relies_on_discovery() -> None:
    annotations = render("default").get("Ingress", RELEASE)["metadata"]["annotations"]
    assert "alb.ingress.kubernetes.io/certificate-arn" not in annotations
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == (
        '[{"HTTP": 80}, {"HTTPS": 443}]'
    )


def test_nginx_cert_manager_flavour() -> None:
    rendered = render("nginx")
    ingress = rendered.get("Ingress", RELEASE)
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert not [a for a in annotations if a.startswith("alb.")]
    assert ingress["spec"]["tls"] == [
        {"hosts": ["api.growbin.app"], "secretName": "growbin-api-tls"}
    ]
    for domain in API_DOMAINS:
        service = rendered.get("Service", f"{RELEASE}-{domain}")
        assert service["spec"]["type"] == "ClusterIP"
        assert "externalTrafficPolicy" not in service["spec"]


# --- NetworkPolicy semantics ---------------------------------------------------------
# A small evaluator of the NetworkPolicy rules the chart uses (pod/namespace selectors
# with matchLabels, ipBlock with except, TCP/UDP ports), so tests ask behavioural
# questions ("may scans reach auth?") instead of re-reading the template.


@dataclass(frozen=True)
class Peer:
    ip: str
    namespace: str = ""
    labels: dict = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict:
        return {"kubernetes.io/metadata.name": self.namespace} if self.namespace else {}


def _selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "evaluator supports matchLabels only"
    return selector.get("matchLabels", {}).items() <= labels.items()


def _peer_matches(rule_peer: dict, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if not peer.namespace:
        return False
    if "namespaceSelector" in rule_peer:
        namespace_ok = _selects(rule_peer["namespaceSelector"], peer.namespace_labels)
    else:
        namespace_ok = peer.namespace == NAMESPACE
    pod_ok = _selects(rule_peer["podSelector"], peer.labels) if "podSelector" in rule_peer else True
    return namespace_ok and pod_ok


def _port_matches(rule: dict, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
    )


def _allowed(
    policies: list[dict], pod: Peer, direction: str, other: Peer, port: int, protocol: str
) -> bool:
    policy_type = {"ingress": "Ingress", "egress": "Egress"}[direction]
    peer_key = {"ingress": "from", "egress": "to"}[direction]
    selecting = [
        p
        for p in policies
        if pod.namespace == NAMESPACE
        and policy_type in p["spec"]["policyTypes"]
        and _selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(direction, []) or []:
            peers = rule.get(peer_key)
            if (not peers or any(_peer_matches(p, other) for p in peers)) and _port_matches(
                rule, port, protocol
            ):
                return True
    return False


def connection_allowed(
    rendered: Rendered, source: Peer, target: Peer, port: int, protocol: str = "TCP"
) -> bool:
    policies = rendered.of_kind("NetworkPolicy")
    return _allowed(policies, source, "egress", target, port, protocol) and _allowed(
        policies, target, "ingress", source, port, protocol
    )


def _pods(rendered: Rendered) -> dict[str, Peer]:
    """component -> a pod of it, with an address from the Calico pod CIDR."""
    pods = {}
    for index, (_, template) in enumerate(rendered.pod_templates()):
        labels = template["metadata"]["labels"]
        pods[labels["app.kubernetes.io/component"]] = Peer(
            ip=f"192.168.{index + 1}.10", namespace=NAMESPACE, labels=labels
        )
    return pods


def _data_peer(values_set: str, service: str) -> Peer:
    return Peer(ip=_values(values_set)["externalServices"][service]["addresses"][0])


NETWORK_VALUES_SETS = ["default", "production", "nginx"]


@pytest.mark.parametrize("values_set", NETWORK_VALUES_SETS)
def test_every_growbin_pod_is_default_denied(values_set: str) -> None:
    rendered = render(values_set)
    deny = rendered.get("NetworkPolicy", f"{RELEASE}-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    stranger = Peer(ip="192.168.200.9", namespace="other", labels={"app": "x"})
    for pod in _pods(rendered).values():
        assert _selects(deny["spec"]["podSelector"], pod.labels)
        assert not connection_allowed(rendered, stranger, pod, 8000)
        assert not connection_allowed(rendered, pod, Peer(ip="10.0.9.9"), 22)


@pytest.mark.parametrize("values_set", NETWORK_VALUES_SETS)
def test_api_and_workers_reach_data_services_and_dns(values_set: str) -> None:
    rendered = render(values_set)
    dns = Peer(ip="192.168.250.10", namespace="kube-system", labels={"k8s-app": "kube-dns"})
    for component, pod in _pods(rendered).items():
        assert connection_allowed(rendered, pod, dns, 53, "UDP"), component
        assert connection_allowed(rendered, pod, _data_peer(values_set, "postgresql"), 5432)
        reaches_queue = component != "migrations"
        for service in ("redis", "rabbitmq"):
            allowed = connection_allowed(
                rendered, pod, _data_peer(values_set, service), DATA_SERVICES[service]
            )
            assert allowed == reaches_queue, f"{component} -> {service}"
        # Data services only on their own port.
        assert not connection_allowed(rendered, pod, _data_peer(values_set, "postgresql"), 6379)


@pytest.mark.parametrize("values_set", NETWORK_VALUES_SETS)
def test_api_services_cannot_reach_each_other(values_set: str) -> None:
    rendered = render(values_set)
    pods = _pods(rendered)
    apis = {c: p for c, p in pods.items() if c.startswith("api-")}
    assert len(apis) == len(API_DOMAINS)
    for source_name, source in pods.items():
        for target_name, target in apis.items():
            if source_name != target_name:
                # Refused on both ends: the source may not send, the target not accept.
                policies = rendered.of_kind("NetworkPolicy")
                route = f"{source_name} -> {target_name}"
                assert not _allowed(policies, source, "egress", target, 8000, "TCP"), route
                assert not _allowed(policies, target, "ingress", source, 8000, "TCP"), route


def test_alb_and_prometheus_reach_api_pods() -> None:
    rendered = render("production")
    alb = Peer(ip="10.0.1.57")
    prometheus = Peer(ip="10.0.3.20")
    for component, pod in _pods(rendered).items():
        expect = component.startswith("api-")
        assert connection_allowed(rendered, alb, pod, 8000) == expect, component
        assert connection_allowed(rendered, prometheus, pod, 8000) == expect, component
        assert not connection_allowed(rendered, alb, pod, 9000)


def test_nginx_controller_reaches_api_pods() -> None:
    rendered = render("nginx")
    controller = Peer(
        ip="192.168.77.3",
        namespace="ingress-nginx",
        labels={"app.kubernetes.io/name": "ingress-nginx"},
    )
    for component, pod in _pods(rendered).items():
        assert connection_allowed(rendered, controller, pod, 8000) == component.startswith("api-")


def test_only_flagged_components_reach_the_internet() -> None:
    rendered = render("default")
    s3 = Peer(ip="52.219.60.1")
    metadata = Peer(ip="169.254.169.254")
    node = Peer(ip="10.0.2.5")
    expected = {"api-scans", "api-chat", "worker-storage", "worker-ai"}
    for component, pod in _pods(rendered).items():
        assert connection_allowed(rendered, pod, s3, 443) == (component in expected), component
        assert connection_allowed(rendered, pod, metadata, 80) == (component in expected)
        # Private ranges stay closed even for internet-enabled pods.
        assert not connection_allowed(rendered, pod, node, 443), component


def test_prometheus_reaches_worker_exporters_only_on_their_port() -> None:
    rendered = render("production")
    prometheus = Peer(ip="10.0.3.20")
    alb = Peer(ip="10.0.1.57")
    for component, pod in _pods(rendered).items():
        if not component.startswith("worker-"):
            continue
        assert connection_allowed(rendered, prometheus, pod, 9808), component
        assert not connection_allowed(rendered, alb, pod, 9808), component
        assert not connection_allowed(rendered, prometheus, pod, 8000), component
