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


@pytest.fixture(scope="module")
def root() -> tfcheck.Module:
    return tfcheck.load_module(TERRAFORM)


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


def test_nothing_is_open_to_the_internet_except_the_alb_on_80_and_443(root):
    allowed = {"aws_security_group.alb": {80, 443}}
    assert tfcheck.check_internet_exposure(root, allowed) == []
    world = [r for r in tfcheck.ingress_rules(root)[0] if r.cidr in ("0.0.0.0/0", "::/0")]
    assert sorted((r.security_group, r.from_port) for r in world) == [
        ("aws_security_group.alb", 80),
        ("aws_security_group.alb", 443),
    ]


@pytest.mark.parametrize("port", [22, 6443])
def test_ssh_and_kubernetes_api_only_from_vpc_or_admin_cidrs(root, port):
    rules = tfcheck.rules_reaching(root, port)
    assert rules
    for rule in rules:
        assert rule.source_group is None
        assert rule.cidr in ("${var.vpc_cidr}", "${each.value}"), rule
        if rule.cidr != "${var.vpc_cidr}":
            assert "var.admin_cidrs" in str(root.resource(rule.address.split("[")[0])["for_each"])
    if port == 22:
        assert all(r.cidr != "${var.vpc_cidr}" for r in rules), "SSH is not open to the VPC"


@pytest.mark.parametrize(
    ("port", "protocol", "only_from"),
    [
        (5432, "tcp", "aws_security_group.node"),
        (6379, "tcp", "aws_security_group.node"),
        (5672, "tcp", "aws_security_group.node"),
        (30000, "tcp", "aws_security_group.alb"),
        (32767, "tcp", "aws_security_group.alb"),
        (10250, "tcp", "aws_security_group.node"),
        (4789, "udp", "aws_security_group.node"),
        (9100, "tcp", 'aws_security_group.data_service["monitoring"]'),
        (9187, "tcp", 'aws_security_group.data_service["monitoring"]'),
    ],
)
def test_cluster_and_data_ports_only_from_their_security_group(root, port, protocol, only_from):
    rules = tfcheck.rules_reaching(root, port, protocol)
    assert rules, f"nothing allows {protocol}/{port}"
    assert {r.source_group for r in rules} == {only_from}


def test_data_service_nodes_get_their_security_group(root):
    extra = root.locals["local.node_extra_security_groups"]
    assert "aws_security_group.data_service[node.group].id" in extra
    assert "aws_security_group.control_plane.id" in extra
    assert root.resources["aws_security_group.data_service"]["for_each"] == (
        "${local.data_service_groups}"
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
        "load_balancer_controller": '${aws_iam_role.node["control-plane"].name}',
    }
    for name in ("images_worker", "images_presign"):
        for statement in _policy_statements(root, name):
            assert all(action.startswith("s3:") for action in statement["actions"])
            assert all("aws_s3_bucket.images.arn" in r for r in statement["resources"])
    for statement in _policy_statements(root, "load_balancer_controller"):
        mutating = [a for a in statement["actions"] if not a.split(":")[1].startswith("Describe")]
        if mutating:
            assert statement["resources"] == "${[for group in aws_lb_target_group.api : group.arn]}"
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
