"""The static checks fail on broken configurations: each snippet breaks one rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import tfcheck

PROVIDERS = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.30" }
  }
}
provider "aws" {
  region = "ap-northeast-2"
}
"""

CHILD_MODULE = """
variable "zone_id" {
  type        = string
  description = "zone"
}
output "certificate_arn" {
  description = "arn"
  value       = "arn:${var.zone_id}"
}
"""


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in {"providers.tf": PROVIDERS, **files}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


BROKEN = {
    "duplicate resource address": (
        {
            "a.tf": 'resource "aws_vpc" "main" {\n  cidr_block = "10.0.0.0/16"\n}\n',
            "b.tf": 'resource "aws_vpc" "main" {\n  cidr_block = "10.1.0.0/16"\n}\n',
        },
        "duplicate aws_vpc.main",
    ),
    "undeclared variable": (
        {"main.tf": 'resource "aws_vpc" "main" {\n  cidr_block = var.vpc_cidr\n}\n'},
        "uses undeclared var.vpc_cidr",
    ),
    "undefined local": (
        {"main.tf": 'resource "aws_vpc" "main" {\n  cidr_block = local.cidr\n}\n'},
        "uses undefined local.cidr",
    ),
    "undefined resource": (
        {"main.tf": 'resource "aws_subnet" "a" {\n  vpc_id = aws_vpc.main.id\n}\n'},
        "uses undefined resource aws_vpc.main",
    ),
    "undefined data source": (
        {"main.tf": 'resource "aws_instance" "a" {\n  ami = data.aws_ami.debian.id\n}\n'},
        "uses undefined data.aws_ami.debian",
    ),
    "unconfigured provider alias": (
        {
            "main.tf": 'resource "aws_acm_certificate" "c" {\n  provider    = aws.us_east_1\n'
            '  domain_name = "growbin.app"\n}\n'
        },
        "uses provider aws.us_east_1, which is not configured",
    ),
    "module output that does not exist": (
        {
            "main.tf": 'module "cert" {\n  source  = "./modules/cert"\n  zone_id = "Z1"\n}\n'
            'output "arn" {\n  description = "arn"\n  value       = module.cert.arn\n}\n',
            "modules/cert/main.tf": CHILD_MODULE,
        },
        "uses module.cert.arn, which that module does not output",
    ),
    "module called without a required input": (
        {
            "main.tf": 'module "cert" {\n  source = "./modules/cert"\n}\n',
            "modules/cert/main.tf": CHILD_MODULE,
        },
        "module.cert does not set required zone_id",
    ),
    "variable without description": (
        {"variables.tf": 'variable "name" {\n  type = string\n}\n'},
        "var.name has no description",
    ),
    "variable without type": (
        {"variables.tf": 'variable "name" {\n  description = "name"\n}\n'},
        "var.name has no type",
    ),
    "each.value outside for_each": (
        {"main.tf": 'resource "aws_vpc" "main" {\n  cidr_block = each.value\n}\n'},
        "aws_vpc.main uses each.* without for_each",
    ),
    "file read from a wrong path": (
        {
            "main.tf": 'locals {\n  nodes = yamldecode(file("${path.module}/../nope.yml"))\n}\n'
            'output "nodes" {\n  description = "nodes"\n  value       = local.nodes\n}\n'
        },
        "reads missing file ../nope.yml",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_generic_checks_report_the_break(tmp_path, case):
    files, expected = BROKEN[case]
    problems = tfcheck.check_all(_write(tmp_path, files))
    assert any(expected in problem for problem in problems), problems


def test_a_clean_snippet_has_no_problems(tmp_path):
    files = {
        "main.tf": 'variable "cidr" {\n  type        = string\n  description = "c"\n}\n'
        'resource "aws_vpc" "main" {\n  cidr_block = var.cidr\n}\n'
        'module "cert" {\n  source  = "./modules/cert"\n  zone_id = aws_vpc.main.id\n}\n',
        "modules/cert/main.tf": CHILD_MODULE,
    }
    assert tfcheck.check_all(_write(tmp_path, files)) == []


SECURITY_GROUPS = """
resource "aws_security_group" "node" {
  name = "node"
}
resource "aws_security_group" "alb" {
  name = "alb"
}
"""

EXPOSED = {
    "SSH open to the world": (
        'resource "aws_vpc_security_group_ingress_rule" "ssh" {\n'
        "  security_group_id = aws_security_group.node.id\n"
        '  cidr_ipv4 = "0.0.0.0/0"\n  ip_protocol = "tcp"\n  from_port = 22\n  to_port = 22\n}\n',
        "0.0.0.0/0 may reach aws_security_group.node ports 22-22",
    ),
    "6443 open through a classic rule": (
        'resource "aws_security_group_rule" "api" {\n  type = "ingress"\n'
        "  security_group_id = aws_security_group.node.id\n"
        '  cidr_blocks = ["10.0.0.0/16", "0.0.0.0/0"]\n  protocol = "tcp"\n'
        "  from_port = 6443\n  to_port = 6443\n}\n",
        "0.0.0.0/0 may reach aws_security_group.node ports 6443-6443",
    ),
    "ALB open beyond 80/443": (
        'resource "aws_vpc_security_group_ingress_rule" "alb" {\n'
        "  for_each = { http = 80, admin = 8080 }\n"
        "  security_group_id = aws_security_group.alb.id\n"
        '  cidr_ipv4 = "0.0.0.0/0"\n  ip_protocol = "tcp"\n'
        "  from_port = each.value\n  to_port = each.value\n}\n",
        '["admin"]: 0.0.0.0/0 may reach aws_security_group.alb ports 8080-8080',
    ),
    "all protocols open to the world": (
        'resource "aws_vpc_security_group_ingress_rule" "any" {\n'
        "  security_group_id = aws_security_group.alb.id\n"
        '  cidr_ipv4 = "0.0.0.0/0"\n  ip_protocol = "-1"\n}\n',
        "0.0.0.0/0 may reach aws_security_group.alb ports None-None",
    ),
    "CIDR from an unvalidated variable": (
        'variable "admin_cidrs" {\n  type = list(string)\n  description = "a"\n'
        '  default = ["0.0.0.0/0"]\n}\n'
        'resource "aws_vpc_security_group_ingress_rule" "ssh" {\n'
        "  for_each = toset(var.admin_cidrs)\n"
        "  security_group_id = aws_security_group.node.id\n"
        '  cidr_ipv4 = each.value\n  ip_protocol = "tcp"\n  from_port = 22\n  to_port = 22\n}\n',
        "var.admin_cidrs feeds a CIDR but does not refuse 0.0.0.0/0",
    ),
}


@pytest.mark.parametrize("case", sorted(EXPOSED))
def test_internet_exposure_is_reported(tmp_path, case):
    rule, expected = EXPOSED[case]
    module = tfcheck.load_module(_write(tmp_path, {"sg.tf": SECURITY_GROUPS + rule}))
    problems = tfcheck.check_internet_exposure(module, {"aws_security_group.alb": {80, 443}})
    assert any(expected in problem for problem in problems), problems


PUBLIC_BUCKET = """
resource "aws_s3_bucket" "images" {
  bucket = "growbin-images"
}
resource "aws_s3_bucket_acl" "images" {
  bucket = aws_s3_bucket.images.id
  acl    = "public-read"
}
resource "aws_s3_bucket_public_access_block" "images" {
  bucket                  = aws_s3_bucket.images.id
  block_public_acls       = false
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
data "aws_iam_policy_document" "images" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.images.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}
resource "aws_s3_bucket_policy" "images" {
  bucket = aws_s3_bucket.images.id
  policy = data.aws_iam_policy_document.images.json
}
"""


def test_public_unencrypted_unversioned_bucket_is_reported(tmp_path):
    module = tfcheck.load_module(_write(tmp_path, {"s3.tf": PUBLIC_BUCKET}))
    problems = tfcheck.check_private_bucket(module, "aws_s3_bucket.images")
    assert sorted(problems) == sorted(
        [
            "aws_s3_bucket.images: aws_s3_bucket_acl grants public-read",
            "aws_s3_bucket.images: public access block block_public_acls is not true",
            "aws_s3_bucket.images: no default encryption",
            "aws_s3_bucket.images: versioning is not enabled",
            "aws_s3_bucket.images: policy allows principal * (None)",
        ]
    )


def test_invalid_hcl_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.tf"
    path.write_text('resource "aws_vpc" "main" {\n  cidr_block = \n')
    with pytest.raises(ValueError, match="broken.tf: not valid HCL"):
        tfcheck.parse_file(path)


# --- rules built from evaluated module outputs ----------------------------------------

FLOW_RULES = """
resource "aws_security_group" "flow" {
  for_each = module.flows.security_groups
  name     = each.key
}
resource "aws_vpc_security_group_ingress_rule" "flow" {
  for_each = module.flows.group_rules

  security_group_id            = aws_security_group.flow[each.value.security_group].id
  referenced_security_group_id = aws_security_group.flow[each.value.source_security_group].id
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
}
"""


def _flow(group: str, source: str, protocol: str, port: int) -> dict:
    return {
        "security_group": group,
        "source_security_group": source,
        "protocol": protocol,
        "port": port,
    }


# The flow rules as a module would evaluate them: kubelet and VXLAN, but no Typha, and an
# extra 9999 nobody asked for; "ghost" is not a group the module creates.
EVALUATED = {
    "${module.flows.security_groups}": {"k8s_cluster": ["a", "b"], "masters": ["a"]},
    "${module.flows.group_rules}": {
        "kubelet/masters": _flow("k8s_cluster", "masters", "tcp", 10250),
        "vxlan/k8s_cluster": _flow("k8s_cluster", "k8s_cluster", "udp", 4789),
        "debug/k8s_cluster": _flow("k8s_cluster", "k8s_cluster", "tcp", 9999),
        "ghost/masters": _flow("ghost", "masters", "tcp", 10250),
    },
}


def _sg(key: str) -> str:
    return f'aws_security_group.flow["{key}"]'


def test_a_for_each_over_an_unevaluated_expression_is_reported(tmp_path):
    module = tfcheck.load_module(_write(tmp_path, {"sg.tf": FLOW_RULES}))
    rules, problems = tfcheck.ingress_rules(module)
    assert len(rules) == 1
    assert any("for_each ${module.flows.group_rules} is not expanded" in p for p in problems)


def test_evaluated_for_each_expands_each_value_inside_references(tmp_path):
    module = tfcheck.load_module(_write(tmp_path, {"sg.tf": FLOW_RULES}))
    rules, problems = tfcheck.ingress_rules(module, EVALUATED)
    assert problems == []
    kubelet = next(r for r in rules if r.address.endswith('["kubelet/masters"]'))
    assert (kubelet.security_group, kubelet.source_group) == (_sg("k8s_cluster"), _sg("masters"))
    assert (kubelet.protocol, kubelet.from_port, kubelet.to_port) == ("tcp", 10250, 10250)


def test_rules_that_differ_from_the_flow_data_are_reported(tmp_path):
    module = tfcheck.load_module(_write(tmp_path, {"sg.tf": FLOW_RULES}))
    rules, _ = tfcheck.ingress_rules(module, EVALUATED)
    expected = {
        (_sg("k8s_cluster"), "tcp", 10250, _sg("masters")),
        (_sg("k8s_cluster"), "udp", 4789, _sg("k8s_cluster")),
        (_sg("k8s_cluster"), "tcp", 5473, _sg("k8s_cluster")),  # Typha
        (_sg("ghost"), "tcp", 10250, _sg("masters")),
    }
    problems = tfcheck.check_rules_match(rules, expected)
    assert problems == [
        'missing: aws_security_group.flow["k8s_cluster"] tcp/5473 '
        'from aws_security_group.flow["k8s_cluster"]',
        'aws_vpc_security_group_ingress_rule.flow["debug/k8s_cluster"]: '
        'aws_security_group.flow["k8s_cluster"] tcp/9999 '
        'from aws_security_group.flow["k8s_cluster"] is not in the data',
    ]
    keys = set(EVALUATED["${module.flows.security_groups}"])
    assert tfcheck.check_security_group_keys(module, rules, keys) == [
        'aws_vpc_security_group_ingress_rule.flow["ghost/masters"]: '
        'aws_security_group.flow["ghost"] is not a security group that exists'
    ]


# The controller's permissions this configuration used to grant (defect 3).
CONTROLLER_IAM = """
data "aws_iam_policy_document" "load_balancer_controller" {
  statement {
    sid       = "Discover"
    actions   = ["elasticloadbalancing:DescribeTargetGroups"]
    resources = ["*"]
  }
  statement {
    sid       = "RegisterNodesInGrowbinTargetGroups"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = ["*"]
  }
}
resource "aws_iam_role_policy_attachment" "lbc" {
  role       = "nodes"
  policy_arn = "arn:aws:iam::aws:policy/ElasticLoadBalancingFullAccess"
}
"""


def test_load_balancer_controller_permissions_are_reported(tmp_path):
    module = tfcheck.load_module(_write(tmp_path, {"iam.tf": CONTROLLER_IAM}))
    assert tfcheck.check_no_load_balancer_controller(module) == [
        "data.aws_iam_policy_document.load_balancer_controller: RegisterNodesInGrowbinTargetGroups"
        " allows elasticloadbalancing:RegisterTargets (a load balancer controller's permission)",
        "data.aws_iam_policy_document.load_balancer_controller: RegisterNodesInGrowbinTargetGroups"
        " allows elasticloadbalancing:DeregisterTargets (a load balancer controller's permission)",
        "aws_iam_role_policy_attachment.lbc: attaches "
        "arn:aws:iam::aws:policy/ElasticLoadBalancingFullAccess",
    ]


def test_mutable_unscanned_unencrypted_registry_is_reported(tmp_path):
    registry = 'resource "aws_ecr_repository" "app" {\n  name = "app"\n  force_delete = true\n}\n'
    module = tfcheck.load_module(_write(tmp_path, {"ecr.tf": registry}))
    assert tfcheck.check_private_registry(module, "aws_ecr_repository.app") == [
        "aws_ecr_repository.app: tags are mutable (image_tag_mutability is not IMMUTABLE)",
        "aws_ecr_repository.app: images are not scanned on push",
        "aws_ecr_repository.app: no encryption_configuration (KMS or AES256)",
        "aws_ecr_repository.app: force_delete would destroy deployed images",
    ]
    assert tfcheck.check_private_registry(module, "aws_ecr_repository.missing") == [
        "aws_ecr_repository.missing is not defined"
    ]


def test_module_inputs_that_need_the_configuration_cannot_be_evaluated(tmp_path):
    files = {
        "main.tf": 'variable "zone" {\n  type = string\n  description = "z"\n}\n'
        'module "cert" {\n  source  = "./modules/cert"\n  zone_id = var.zone\n}\n',
        "modules/cert/main.tf": CHILD_MODULE,
    }
    module = tfcheck.load_module(_write(tmp_path, files))
    with pytest.raises(ValueError, match=r"cannot evaluate '\$\{var.zone\}'"):
        tfcheck.evaluate_module_calls(module, ["module.cert"])
