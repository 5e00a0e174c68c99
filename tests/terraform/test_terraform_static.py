"""terraform/ checked from its source: the terraform binary and providers are not available
in CI, so `terraform validate` cannot run there (see terraform/README.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tfcheck
import yaml

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
NODE_MAP = ROOT / "inventories" / "node_map.yml"
FLOW_MATRIX = ROOT / "inventories" / "flow_matrix.yml"
RECORDED = Path(__file__).parent / "fixtures" / "module-outputs.json"
EDGE = 'aws_security_group.flow["edge"]'

sys.path.insert(0, str(ROOT / "scripts"))
from terraform_inventory import node_map_hosts  # noqa: E402

# The node table of DESIGN.md: host => (node-map group, AWS instance type).
DESIGN_NODES = {
    "k8s-master": ("masters", "t3.large"),
    "api-waste": ("api", "t3.small"),
    "api-auth": ("api", "t3.micro"),
    "api-userinfo": ("api", "t3.micro"),
    "api-location": ("api", "t3.micro"),
    "api-recycle-info": ("api", "t3.micro"),
    "api-chat-llm": ("api", "t3.small"),
    "worker-storage": ("workers", "t3.medium"),
    "worker-ai": ("workers", "t3.medium"),
    "k8s-rabbitmq": ("rabbitmq", "t3.small"),
    "k8s-postgresql": ("postgresql", "t3.medium"),
    "k8s-redis": ("redis", "t3.small"),
    "k8s-monitoring": ("monitoring", "t3.large"),
}


def test_every_tf_file_parses():
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert len(files) >= 10
    for path in files:
        assert tfcheck.parse_file(path), path


def test_root_and_local_modules_pass_every_generic_check():
    # duplicates, undefined var/local/data/resource/module output/provider alias,
    # undocumented variables and outputs, module inputs, files read via path.module
    assert tfcheck.check_all(TERRAFORM) == []


def test_nodes_come_from_the_inventory_node_map_with_one_for_each(root):
    call = root.module_calls["module.node_map"]
    inventory_file = call["inventory_file"].replace("${path.module}", str(TERRAFORM))
    assert Path(inventory_file).resolve() == NODE_MAP.resolve()

    node_map_module = tfcheck.load_module(TERRAFORM / "modules" / "node_map")
    assert node_map_module.locals["local.inventory"] == "${yamldecode(file(var.inventory_file))}"

    assert root.locals["local.nodes"] == "${module.node_map.nodes}"
    instances = root.resources_of_type("aws_instance")
    assert list(instances) == ["aws_instance.node"], "one resource for all nodes, no copies"
    node = instances["aws_instance.node"]
    assert node["for_each"] == "${local.nodes}"
    assert node["instance_type"] == "${each.value.instance_type}"
    assert node["tags"]["Name"] == "${each.key}"


def test_node_map_has_the_13_design_nodes_and_instance_types():
    hosts = node_map_hosts(yaml.safe_load(NODE_MAP.read_text()))
    assert {name: h["growbin_instance_type"] for name, h in hosts.items()} == {
        name: instance_type for name, (_, instance_type) in DESIGN_NODES.items()
    }


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
def test_node_map_module_evaluates_to_the_inventory_nodes(tmp_path):
    """Where a terraform binary exists, evaluate the provider-free node_map module for real."""
    (tmp_path / "main.tf").write_text(
        f'module "node_map" {{\n  source = "{TERRAFORM / "modules" / "node_map"}"\n'
        f'  inventory_file = "{NODE_MAP}"\n}}\n'
        'output "nodes" { value = module.node_map.nodes }\n'
    )
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "TF_IN_AUTOMATION": "1", "HOME": str(tmp_path)}
    for command in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        subprocess.run(
            ["terraform", f"-chdir={tmp_path}", *command],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )
    result = subprocess.run(
        ["terraform", f"-chdir={tmp_path}", "output", "-json", "nodes"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    nodes = json.loads(result.stdout)
    assert {name: (n["group"], n["instance_type"]) for name, n in nodes.items()} == DESIGN_NODES
    hosts = node_map_hosts(yaml.safe_load(NODE_MAP.read_text()))
    assert {name: n["role"] for name, n in nodes.items()} == {
        name: h["growbin_node_role"] for name, h in hosts.items()
    }


def sg(key: str) -> str:
    return f'aws_security_group.flow["{key}"]'


def test_nothing_is_open_to_the_internet_except_the_alb_on_80_and_443(root, evaluated):
    allowed = {EDGE: {80, 443}}
    assert tfcheck.check_internet_exposure(root, allowed, evaluated) == []
    rules, problems = tfcheck.ingress_rules(root, evaluated)
    assert problems == []
    world = [r for r in rules if r.cidr in ("0.0.0.0/0", "::/0")]
    assert sorted((r.security_group, r.from_port) for r in world) == [(EDGE, 80), (EDGE, 443)]


@pytest.mark.parametrize("port", [22, 6443])
def test_ssh_and_kubernetes_api_only_from_the_nodes_or_admin_cidrs(root, evaluated, port):
    rules = tfcheck.rules_reaching(root, port, evaluated=evaluated)
    assert rules
    for rule in rules:
        if rule.source_group is not None:
            assert (port, rule.source_group) == (6443, sg("k8s_cluster")), rule
            continue
        assert rule.cidr == "${each.value}", rule
        assert "var.admin_cidrs" in str(root.resource(rule.address.split("[")[0])["for_each"])
    if port == 22:
        assert all(r.source_group is None for r in rules), "SSH is not open to other nodes"


@pytest.mark.parametrize(
    ("port", "protocol", "allowed_sources"),
    [
        # least privilege for the data services: only the application's nodes
        (5432, "tcp", {sg("api"), sg("workers")}),
        (6379, "tcp", {sg("api"), sg("workers")}),
        (5672, "tcp", {sg("api-waste"), sg("workers")}),
        (9187, "tcp", {sg("monitoring")}),
        (9100, "tcp", {sg("monitoring")}),
    ],
)
def test_data_and_metrics_ports_only_from_their_clients(
    root, evaluated, port, protocol, allowed_sources
):
    rules = tfcheck.rules_reaching(root, port, protocol, evaluated)
    assert rules, f"nothing allows {protocol}/{port}"
    assert {r.source_group for r in rules} <= allowed_sources


# --- the flow matrix is the security groups (defect 1: Typha 5473 was missing) ---------


def _matrix_flows(runtime: str) -> list[dict]:
    flows = yaml.safe_load(FLOW_MATRIX.read_text())["growbin_flow_matrix"]
    return [flow for flow in flows if runtime in flow["runtimes"]]


def _security_group_key(name: str) -> str:
    # On AWS the node map is the whole inventory: `all` is the k8s_cluster group.
    return "k8s_cluster" if name == "all" else name


# Rules the matrix leaves out on purpose (operator access; see inventories/flow_matrix.yml).
OPERATOR_RULES = {
    "aws_vpc_security_group_ingress_rule.node_ssh_from_admin": ("k8s_cluster", 22),
    "aws_vpc_security_group_ingress_rule.control_plane_api_from_admin": ("masters", 6443),
    "aws_vpc_security_group_ingress_rule.grafana_from_admin": ("monitoring", 3000),
}


def test_flow_module_reads_the_inventory_flow_matrix(root):
    call = root.module_calls["module.flow_rules"]
    matrix_file = call["flow_matrix_file"].replace("${path.module}", str(TERRAFORM))
    assert Path(matrix_file).resolve() == FLOW_MATRIX.resolve()
    assert call["runtime"] == "kubernetes"  # the production runtime
    flow_module = tfcheck.load_module(TERRAFORM / "modules" / "flow_rules")
    assert flow_module.locals["local.matrix"] == (
        "${yamldecode(file(var.flow_matrix_file)).growbin_flow_matrix}"
    )


def test_every_kubernetes_flow_is_an_ingress_rule_and_no_rule_is_not_a_flow(root, evaluated):
    expected = {
        (
            sg(_security_group_key(flow["to"])),
            flow.get("protocol", "tcp"),
            flow["port"],
            "0.0.0.0/0" if source == "any" else sg(_security_group_key(source)),
        )
        for flow in _matrix_flows("kubernetes")
        for source in ([flow["from"]] if flow["from"] == "any" else flow["from"])
    }
    rules, problems = tfcheck.ingress_rules(root, evaluated)
    assert problems == []
    flow_rules = [r for r in rules if r.address.split("[")[0] not in OPERATOR_RULES]
    assert tfcheck.check_rules_match(flow_rules, expected) == []
    operator = [r for r in rules if r.address.split("[")[0] in OPERATOR_RULES]
    assert {r.address: (r.security_group, r.from_port, r.to_port, r.cidr) for r in operator} == {
        address: (sg(group), port, port, "${each.value}")
        for address, (group, port) in OPERATOR_RULES.items()
    }
    groups = set(evaluated["${module.flow_rules.security_groups}"])
    assert tfcheck.check_security_group_keys(root, rules, groups) == []


def test_security_group_members_are_the_inventory_groups(root, evaluated):
    """A matrix name means the same nodes to Terraform as to Ansible (the production inventory)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(NODE_MAP), "--list"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    listed = json.loads(result.stdout)

    def hosts(group: str) -> set[str]:
        body = listed.get(group, {})
        members = set(body.get("hosts", []))
        for child in body.get("children", []):
            members |= hosts(child)
        return members

    members = evaluated["${module.flow_rules.security_groups}"]
    for key, nodes in members.items():
        if key == "edge":
            assert nodes == [], "the ALB's group holds no node"
        elif key in listed or key == "k8s_cluster":
            assert set(nodes) == hosts(key), key
        else:
            assert nodes == [key], f"{key} is a single host"
    per_node = evaluated["${module.flow_rules.node_security_groups}"]
    assert set(per_node) == hosts("all")
    assert all(len(keys) <= 5 for keys in per_node.values()), "AWS allows 5 groups per interface"
    instance = root.resource("aws_instance.node")
    assert instance["vpc_security_group_ids"] == (
        "${[for key in module.flow_rules.node_security_groups[each.key] : "
        "aws_security_group.flow[key].id]}"
    )
    assert root.resource("aws_security_group.flow")["for_each"] == (
        "${module.flow_rules.security_groups}"
    )


@pytest.mark.parametrize(
    ("port", "protocol", "group", "source"),
    [
        (5473, "tcp", "k8s_cluster", "k8s_cluster"),  # Calico Typha (tigera operator)
        (4789, "udp", "k8s_cluster", "k8s_cluster"),  # Calico VXLAN
        (6443, "tcp", "masters", "k8s_cluster"),  # kube-apiserver
        (10250, "tcp", "k8s_cluster", "masters"),  # kubelet API
    ],
)
def test_calico_and_kubernetes_ports_are_open_between_the_nodes(
    root, evaluated, port, protocol, group, source
):
    rules = tfcheck.rules_reaching(root, port, protocol, evaluated)
    assert any(r.security_group == sg(group) and r.source_group == sg(source) for r in rules), (
        f"{protocol}/{port} is not open on {group} from {source}"
    )


def test_alb_sends_only_to_the_api_node_ports(root, evaluated):
    rules, problems = tfcheck.egress_rules(root, evaluated)
    assert problems == []
    from_edge = {
        (r.source_group, r.protocol, r.from_port, r.to_port)
        for r in rules
        if r.security_group == EDGE
    }
    node_ports = {(sg(host), "tcp", port, port) for host, port in _node_map_node_ports().items()}
    assert from_edge == node_ports
    assert root.resource("aws_lb.api")["security_groups"] == [
        '${aws_security_group.flow["edge"].id}'
    ]


# --- target groups (defect 3: nothing registered the nodes) ---------------------------


def _node_map_node_ports() -> dict[str, int]:
    hosts = node_map_hosts(yaml.safe_load(NODE_MAP.read_text()))
    return {
        name: h["growbin_api_node_port"] for name, h in hosts.items() if "growbin_api_domain" in h
    }


def test_target_groups_use_the_node_map_node_ports_and_attach_the_domain_node(root, evaluated):
    hosts = node_map_hosts(yaml.safe_load(NODE_MAP.read_text()))
    expected = {
        h["growbin_api_domain"]: (name, h["growbin_api_node_port"])
        for name, h in hosts.items()
        if "growbin_api_domain" in h
    }
    assert len(expected) == 6
    groups = dict(
        tfcheck._instances(
            "aws_lb_target_group.api", root.resource("aws_lb_target_group.api"), evaluated
        )
    )
    assert {a: (g["target_type"], g["port"]) for a, g in groups.items()} == {
        f'aws_lb_target_group.api["{domain}"]': ("instance", port)
        for domain, (_, port) in expected.items()
    }
    attachment = root.resource("aws_lb_target_group_attachment.api")
    attached = dict(tfcheck._instances("attachment", attachment, evaluated))
    assert {(a["target_group_arn"], a["target_id"], a["port"]) for a in attached.values()} == {
        (
            f'${{aws_lb_target_group.api["{domain}"].arn}}',
            f'${{aws_instance.node["{node}"].id}}',
            port,
        )
        for domain, (node, port) in expected.items()
    }
    rules = root.resource("aws_lb_listener_rule.api")
    assert "module.node_map.api_targets" in rules["for_each"]


def test_no_load_balancer_controller_permissions_or_assumptions(root):
    assert tfcheck.check_no_load_balancer_controller(root) == []
    # no controller discovery tags (subnets, instances, groups) and no providerID wiring
    for path in TERRAFORM.rglob("*.tf"):
        text = path.read_text()
        assert "kubernetes.io/role/elb" not in text, path
        assert "kubernetes.io/cluster/" not in text, path
        assert "providerID" not in text and "provider-id" not in text, path


def test_app_image_registry_is_immutable_scanned_encrypted_and_output(root):
    assert tfcheck.check_private_registry(root, "aws_ecr_repository.app") == []
    assert root.outputs["output.app_image_repository_url"]["value"] == (
        "${aws_ecr_repository.app.repository_url}"
    )
    assert root.outputs["output.alb_subnet_cidrs"]["value"] == (
        "${sort([for subnet in aws_subnet.public : subnet.cidr_block])}"
    )
    assert root.resource("aws_lb.api")["subnets"] == (
        "${[for subnet in aws_subnet.public : subnet.id]}"
    )


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
def test_recorded_module_outputs_are_current(module_outputs):
    """fixtures/module-outputs.json stands in for terraform where it is missing (CI)."""
    assert json.loads(RECORDED.read_text()) == module_outputs, (
        "re-record: .venv/bin/python tests/terraform/tfcheck.py terraform "
        "module.node_map module.flow_rules > tests/terraform/fixtures/module-outputs.json"
    )


def test_images_bucket_is_private_encrypted_versioned_with_lifecycle_and_cors(root):
    assert tfcheck.check_private_bucket(root, "aws_s3_bucket.images") == []
    lifecycle = root.resource("aws_s3_bucket_lifecycle_configuration.images")
    rule_ids = {rule["id"] for rule in lifecycle["rule"]}
    assert rule_ids == {"expire-old-versions", "infrequent-access"}
    cors = root.resource("aws_s3_bucket_cors_configuration.images")["cors_rule"][0]
    assert cors["allowed_origins"] == "${var.app_origins}"
    assert "*" not in json.dumps(root.variables["var.app_origins"]["default"])


def test_cloudfront_reads_the_bucket_through_origin_access_control(root):
    distribution = root.resource("aws_cloudfront_distribution.images")
    origin = distribution["origin"][0]
    assert origin["origin_access_control_id"] == (
        "${aws_cloudfront_origin_access_control.images.id}"
    )
    assert distribution["viewer_certificate"][0]["acm_certificate_arn"] == (
        "${module.cdn_certificate.certificate_arn}"
    )
    policy = root.data_sources["data.aws_iam_policy_document.images_bucket"]
    allow = [s for s in policy["statement"] if s.get("effect", "Allow") == "Allow"]
    assert [s["principals"][0]["identifiers"] for s in allow] == [["cloudfront.amazonaws.com"]]
    assert allow[0]["condition"][0]["values"] == ["${aws_cloudfront_distribution.images.arn}"]


def test_cdn_certificate_comes_from_us_east_1_through_the_aliased_provider(root):
    assert "aws.us_east_1" in root.provider_configs
    providers = tfcheck.parse_file(TERRAFORM / "providers.tf")["provider"]
    regions = {b["aws"].get("alias"): b["aws"]["region"] for b in providers}
    assert regions == {None: "${var.region}", "us_east_1": "us-east-1"}
    assert root.module_calls["module.cdn_certificate"]["providers"] == {"aws": "${aws.us_east_1}"}
    for call in ("module.certificate", "module.cdn_certificate"):
        body = root.module_calls[call]
        assert body["domain_name"] == "${var.domain_name}"
        assert body["subject_alternative_names"] == ["*.${var.domain_name}"]


def test_route53_points_api_at_the_alb_and_images_at_cloudfront(root):
    api = root.resource("aws_route53_record.api")
    images = root.resource("aws_route53_record.images")
    assert api["name"] == "api.${var.domain_name}"
    assert api["alias"][0]["name"] == "${aws_lb.api.dns_name}"
    assert images["name"] == "images.${var.domain_name}"
    assert images["alias"][0]["name"] == "${aws_cloudfront_distribution.images.domain_name}"


def _policy_statements(root, name):
    return root.data_sources[f"data.aws_iam_policy_document.{name}"]["statement"]


def test_iam_least_privilege(root):
    policies = {
        address.split(".")[1]: body
        for address, body in root.resources.items()
        if address.startswith("aws_iam_role_policy.")
    }
    roles = {name: body["role"] for name, body in policies.items()}
    assert roles == {
        "images_worker": '${aws_iam_role.node["worker"].name}',
        "images_presign": '${aws_iam_role.node["scans-api"].name}',
        "app_image_pull": "${aws_iam_role.node[each.key].name}",
    }
    assert root.locals["local.app_image_iam_classes"] == '${toset(["api", "scans-api", "worker"])}'
    assert policies["app_image_pull"]["for_each"] == "${local.app_image_iam_classes}"
    for name in ("images_worker", "images_presign"):
        for statement in _policy_statements(root, name):
            assert all(action.startswith("s3:") for action in statement["actions"])
            assert all("aws_s3_bucket.images.arn" in r for r in statement["resources"])
    for statement in _policy_statements(root, "app_image_pull"):
        assert all(action.startswith("ecr:") for action in statement["actions"])
        if statement["actions"] != ["ecr:GetAuthorizationToken"]:  # cannot be scoped
            assert statement["resources"] == ["${aws_ecr_repository.app.arn}"]
            assert all(a.split(":")[1].startswith(("Get", "Batch")) for a in statement["actions"])
    for statements in (_policy_statements(root, n) for n in policies):
        assert all("*" not in s["actions"] and "s3:*" not in s["actions"] for s in statements)
    ssm = root.resource("aws_iam_role_policy_attachment.node_ssm")
    assert ssm["for_each"] == "${aws_iam_role.node}"
    assert ssm["policy_arn"].endswith("AmazonSSMManagedInstanceCore")


def test_nodes_require_imdsv2_and_encrypted_root_volumes(root):
    node = root.resource("aws_instance.node")
    assert node["metadata_options"][0]["http_tokens"] == "required"
    assert node["root_block_device"][0]["encrypted"] is True
    assert node["subnet_id"].startswith("${aws_subnet.private[")


def test_remote_state_is_an_opt_in_example():
    for path in TERRAFORM.rglob("*.tf"):
        for block in tfcheck.parse_file(path).get("terraform", []):
            assert "backend" not in block, f"{path} forces a backend"
    example = tfcheck.hcl2.loads(
        (TERRAFORM / "backend.tf.example").read_text(),
        serialization_options=tfcheck._PARSE_OPTIONS,
    )
    backend = example["terraform"][0]["backend"][0]["s3"]
    assert backend["encrypt"] is True
    assert backend["use_lockfile"] is True
