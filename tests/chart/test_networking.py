"""Services, data-service Endpoints, both Ingress flavours and NetworkPolicy behaviour."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from growbin.core import processes

from .conftest import (
    LOCAL_VALUES,
    NAMESPACE,
    RELEASE,
    Rendered,
    helm_template,
    node_map,
    render,
    values_of,
)

API_DOMAINS = ("auth", "users", "scans", "recycling", "locations", "chat")
DATA_SERVICES = {"postgresql": 5432, "redis": 6379, "rabbitmq": 5672}


def _values(values_set: str) -> dict:
    return values_of(values_set)


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


@pytest.mark.parametrize("values_set", ["local", "production", "minimal"])
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


def test_ingress_paths_point_to_existing_service_ports() -> None:
    rendered = render("nginx")
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


@pytest.mark.parametrize("values_set", ["local", "production", "minimal", "managed-secret"])
def test_no_ingress_unless_asked(values_set: str) -> None:
    """Terraform's ALB targets the NodePorts: by default nothing waits for a controller."""
    assert not render(values_set).of_kind("Ingress")


@pytest.mark.parametrize("values_set", ["local", "production", "nginx", "minimal"])
def test_each_api_domain_has_its_node_map_node_port(values_set: str) -> None:
    """The Service's fixed NodePort is the port Terraform's target group for that domain
    uses (inventories/node_map.yml growbin_api_node_port), and traffic stays on the node."""
    rendered = render(values_set)
    ports_by_domain = {
        spec["api_domain"]: spec["api_node_port"]
        for spec in node_map().values()
        if spec["api_domain"]
    }
    assert set(ports_by_domain) == set(API_DOMAINS)
    values = _values(values_set)
    for domain in API_DOMAINS:
        if not values["api"][domain]["enabled"]:
            continue
        service = rendered.get("Service", f"{RELEASE}-{domain}")
        assert service["spec"]["type"] == "NodePort"
        assert service["spec"]["externalTrafficPolicy"] == "Local"
        (port,) = service["spec"]["ports"]
        assert port["nodePort"] == ports_by_domain[domain], domain
        assert port["targetPort"] == "http"


def test_no_alb_controller_annotations_anywhere(rendered: Rendered) -> None:
    """Nothing in the chart asks a load balancer controller to register targets."""
    for doc in rendered.docs:
        annotations = doc["metadata"].get("annotations") or {}
        assert not [a for a in annotations if a.startswith("alb.ingress.kubernetes.io/")]
        assert doc["kind"] != "TargetGroupBinding"


def test_nginx_cert_manager_flavour() -> None:
    rendered = render("nginx")
    ingress = rendered.get("Ingress", RELEASE)
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["api.growbin.app"], "secretName": "growbin-api-tls"}
    ]
    # nginx lets through the upload size the scans API accepts plus the multipart framing the
    # API allows for, so the API itself answers an oversized photo.
    config = rendered.get("ConfigMap", RELEASE)["data"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"]) == (
        int(config["GROWBIN_SCANS__MAX_UPLOAD_BYTES"]) + processes.UPLOAD_REQUEST_OVERHEAD_BYTES
    )


def test_no_wildcard_proxy_trust_in_any_manifest(rendered: Rendered) -> None:
    """No uvicorn flags in the chart, and no '*' among the trusted proxies: a forged
    X-Forwarded-For would otherwise bypass the per-address login limit."""
    for doc in rendered.docs:
        text = json.dumps(doc).lower()
        assert "forwarded-allow-ips" not in text, doc["metadata"]["name"]
        assert "uvicorn" not in text and "celery" not in text, doc["metadata"]["name"]
    values: list[str] = []
    for config in rendered.of_kind("ConfigMap"):
        values += [v for k, v in config["data"].items() if k == "GROWBIN_API__FORWARDED_ALLOW_IPS"]
    for _, template in rendered.pod_templates():
        for container in template["spec"]["containers"]:
            values += [
                e["value"]
                for e in container.get("env", [])
                if e["name"] == "GROWBIN_API__FORWARDED_ALLOW_IPS"
            ]
    assert all("*" not in v for v in values), values
    if rendered.values_set == "production":
        assert values, "production names its trusted proxies"


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


NETWORK_VALUES_SETS = ["local", "production", "nginx"]


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
def test_components_reach_dns_and_exactly_their_data_services(values_set: str) -> None:
    rendered = render(values_set)
    flows = _values(values_set)["networkPolicy"]["dataFlows"]
    dns = Peer(ip="192.168.250.10", namespace="kube-system", labels={"k8s-app": "kube-dns"})
    pods = _pods(rendered)
    assert "deploy-init" in pods
    for component, pod in pods.items():
        assert connection_allowed(rendered, pod, dns, 53, "UDP"), component
        for service, port in DATA_SERVICES.items():
            allowed = connection_allowed(rendered, pod, _data_peer(values_set, service), port)
            assert allowed == (component in flows[service]), f"{component} -> {service}"
        # Data services only on their own port.
        assert not connection_allowed(rendered, pod, _data_peer(values_set, "postgresql"), 6379)


def _egress_pairs(rendered: Rendered, addresses: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(component, data service) pairs the rendered NetworkPolicies open: read from each
    policy's podSelector component label and its egress ipBlock /32 + port."""
    by_endpoint = {
        (f"{address}/32", DATA_SERVICES[service]): service
        for service, service_addresses in addresses.items()
        for address in service_addresses
    }
    pairs = set()
    for policy in rendered.of_kind("NetworkPolicy"):
        component = policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for rule in policy["spec"].get("egress") or []:
            cidrs = [p["ipBlock"]["cidr"] for p in rule.get("to", []) if "ipBlock" in p]
            for port in rule.get("ports", []):
                for cidr in cidrs:
                    service = by_endpoint.get((cidr, port["port"]))
                    if service:
                        assert component, f"{policy['metadata']['name']} opens {service} to all"
                        pairs.add((component, service))
    return pairs


FLOWS_CASES = {
    "chart default": None,
    "narrow": {
        "postgresql": ["api-auth", "deploy-init"],
        "redis": ["worker-ai"],
        "rabbitmq": ["api-scans", "worker-storage"],
    },
    "nobody": {"postgresql": [], "redis": [], "rabbitmq": []},
}


@pytest.mark.parametrize("case", sorted(FLOWS_CASES))
def test_policies_open_exactly_the_data_flows_given(tmp_path: Path, case: str) -> None:
    flows = FLOWS_CASES[case]
    args = ["-f", str(LOCAL_VALUES)]
    if flows is not None:
        override = tmp_path / "flows.yaml"
        override.write_text(yaml.safe_dump({"networkPolicy": {"dataFlows": flows}}))
        args += ["-f", str(override)]
    else:
        flows = values_of("local")["networkPolicy"]["dataFlows"]
    rendered = Rendered(case, tuple(helm_template(*args)))
    addresses = {
        service: set(spec["addresses"])
        for service, spec in values_of("local")["externalServices"].items()
    }
    expected = {(component, service) for service, names in flows.items() for component in names}
    assert _egress_pairs(rendered, addresses) == expected
    # Credentials follow the same flows: only a component that may reach RabbitMQ or Redis
    # holds its password.
    for _, template in rendered.pod_templates():
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        env = {e["name"] for e in template["spec"]["containers"][0].get("env", [])}
        assert ("RABBITMQ_PASSWORD" in env) == (component in flows["rabbitmq"]), component
        assert ("GROWBIN_BROKER__URL" in env) == (component in flows["rabbitmq"]), component
        assert ("REDIS_PASSWORD" in env) == (component in flows["redis"]), component


def test_default_flows_follow_the_interface() -> None:
    """values.yaml: PostgreSQL and Redis from every API, worker and deploy-init; RabbitMQ only
    from the scans API (it publishes scan tasks) and the workers."""
    flows = values_of("local")["networkPolicy"]["dataFlows"]
    everyone = {f"api-{d}" for d in API_DOMAINS} | {"worker-storage", "worker-ai", "deploy-init"}
    assert set(flows["postgresql"]) == everyone
    assert set(flows["redis"]) == everyone
    assert set(flows["rabbitmq"]) == {"api-scans", "worker-storage", "worker-ai"}


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
    sources = _values("production")["networkPolicy"]["apiSourceCIDRs"]
    alb = Peer(ip=str(next(ipaddress.ip_network(sources[-1]).hosts())))
    prometheus = Peer(ip="10.0.16.20")
    elsewhere = Peer(ip="10.0.32.9")
    for component, pod in _pods(rendered).items():
        expect = component.startswith("api-")
        assert connection_allowed(rendered, alb, pod, 8000) == expect, component
        assert connection_allowed(rendered, prometheus, pod, 8000) == expect, component
        assert not connection_allowed(rendered, alb, pod, 9000)
        assert not connection_allowed(rendered, elsewhere, pod, 8000), component


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
    rendered = render("local")
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
    prometheus = Peer(ip="10.0.16.20")
    alb = Peer(ip="10.0.1.57")
    for component, pod in _pods(rendered).items():
        if not component.startswith("worker-"):
            continue
        assert connection_allowed(rendered, prometheus, pod, 9808), component
        assert not connection_allowed(rendered, alb, pod, 9808), component
        assert not connection_allowed(rendered, prometheus, pod, 8000), component


@pytest.mark.parametrize("values_set", ["local", "production", "managed-secret"])
def test_deploy_init_policy_exists_before_the_job(values_set: str) -> None:
    """On upgrades the release's default deny already selects the deploy-init pod, so its
    own policy must be a hook created before the Job."""
    rendered = render(values_set)
    policy = rendered.get("NetworkPolicy", f"{RELEASE}-deploy-init")
    job = rendered.get("Job", f"{RELEASE}-deploy-init")
    policy_hook = policy["metadata"]["annotations"]
    job_hook = job["metadata"]["annotations"]
    assert policy_hook["helm.sh/hook"] == job_hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(policy_hook["helm.sh/hook-weight"]) < int(job_hook["helm.sh/hook-weight"])
    assert policy["spec"]["ingress"] == []
