"""Static checks of a Terraform configuration, without the terraform binary.

Terraform and its providers cannot be downloaded where these tests run, so `terraform
validate` is not available. This module parses every `.tf` file with python-hcl2 and
checks what can be decided from the source alone: unique addresses, references that
resolve, documented variables, module wiring, and which security group rules are open to
the internet. Every check returns a list of human-readable problems; empty means clean.

Provider-free local modules (the node map, the flow rules) can also be evaluated for real
with a terraform binary (`evaluate_module_calls`); their outputs then expand the `for_each`
of the resources built from them, so the rules Terraform would create can be compared with
the data they come from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

_PARSE_OPTIONS = hcl2.SerializationOptions(
    with_comments=False,
    explicit_blocks=False,
    strip_string_quotes=True,
    preserve_heredocs=False,
)

# Arguments of a `module` block that are not input variables of the called module.
_MODULE_META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}

_WORLD_CIDRS = {"0.0.0.0/0", "::/0"}

_VARIABLE_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
_LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
_MODULE_REF = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?")
_DATA_REF = re.compile(r"(?<![\w.])data\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
_PATH_MODULE_FILE = re.compile(r"""(?:file|templatefile)\("\$\{path\.module\}/([^"]+)\"""")
_EACH_REF = re.compile(r"(?<![\w.])each\.(?:key|value)\b")
_COUNT_REF = re.compile(r"(?<![\w.])count\.index\b")


@dataclass
class Module:
    """One Terraform module directory, its blocks keyed by address."""

    directory: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    module_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    provider_configs: set[str] = field(default_factory=set)
    required_providers: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def resource(self, address: str) -> dict[str, Any]:
        return self.resources[address]

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        prefix = f"{resource_type}."
        return {a: body for a, body in self.resources.items() if a.startswith(prefix)}


def parse_file(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            return hcl2.load(handle, serialization_options=_PARSE_OPTIONS)
    except Exception as error:  # python-hcl2 raises several lark exception types
        raise ValueError(f"{path}: not valid HCL: {error}") from error


def load_module(directory: Path) -> Module:
    """Parse every `.tf` file of `directory` (not its subdirectories) into one Module."""
    module = Module(directory=directory)
    files = sorted(directory.glob("*.tf"))
    if not files:
        raise ValueError(f"{directory}: no .tf files")
    for path in files:
        _add_file(module, path.name, parse_file(path))
    return module


def _add(module: Module, table: dict[str, Any], address: str, body: Any, where: str) -> None:
    if address in table:
        module.problems.append(f"{where}: duplicate {address}")
    table[address] = body


def _add_file(module: Module, name: str, parsed: dict[str, Any]) -> None:
    for block in parsed.get("resource", []):
        for resource_type, instances in block.items():
            for resource_name, body in instances.items():
                address = f"{resource_type}.{resource_name}"
                _add(module, module.resources, address, body, name)
    for block in parsed.get("data", []):
        for data_type, instances in block.items():
            for data_name, body in instances.items():
                address = f"data.{data_type}.{data_name}"
                _add(module, module.data_sources, address, body, name)
    for block in parsed.get("variable", []):
        for var_name, body in block.items():
            _add(module, module.variables, f"var.{var_name}", body, name)
    for block in parsed.get("output", []):
        for output_name, body in block.items():
            _add(module, module.outputs, f"output.{output_name}", body, name)
    for block in parsed.get("module", []):
        for call_name, body in block.items():
            _add(module, module.module_calls, f"module.{call_name}", body, name)
    for block in parsed.get("locals", []):
        for local_name, value in block.items():
            _add(module, module.locals, f"local.{local_name}", value, name)
    for block in parsed.get("provider", []):
        for provider_name, body in block.items():
            alias = body.get("alias")
            config = f"{provider_name}.{alias}" if alias else provider_name
            if config in module.provider_configs:
                module.problems.append(f"{name}: duplicate provider configuration {config}")
            module.provider_configs.add(config)
    for block in parsed.get("terraform", []):
        for required in block.get("required_providers", []):
            module.required_providers.update(required)


def walk_strings(value: Any) -> Iterator[str]:
    """Every string in a parsed body, map keys included (they may interpolate too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)


def _expressions(value: Any) -> Iterator[str]:
    # Only strings with an interpolation are expressions; plain literals (descriptions,
    # IAM actions, CIDRs) cannot reference anything.
    return (text for text in walk_strings(value) if "${" in text)


def _unwrap(expression: Any) -> Any:
    """`${each.value}` -> `each.value`; literals are returned unchanged."""
    if isinstance(expression, str) and expression.startswith("${") and expression.endswith("}"):
        inner = expression[2:-1]
        if "${" not in inner:
            return inner
    return expression


def _all_blocks(module: Module) -> Iterator[tuple[str, Any]]:
    yield from module.resources.items()
    yield from module.data_sources.items()
    yield from module.variables.items()
    yield from module.outputs.items()
    yield from module.module_calls.items()
    yield from module.locals.items()


def check_variables(module: Module) -> list[str]:
    problems = []
    for address, body in module.variables.items():
        for attribute in ("type", "description"):
            if not body.get(attribute):
                problems.append(f"{module.directory.name}: {address} has no {attribute}")
    return problems


def check_outputs(module: Module) -> list[str]:
    return [
        f"{module.directory.name}: {address} has no description"
        for address, body in module.outputs.items()
        if not body.get("description")
    ]


def check_references(module: Module, resource_prefixes: tuple[str, ...] | None = None) -> list[str]:
    """Every var/local/data/resource/module/provider reference names something defined."""
    name = module.directory.name
    prefixes = resource_prefixes or tuple(sorted(module.required_providers)) or ("aws",)
    resource_ref = re.compile(
        r"(?<![\w.])((?:" + "|".join(map(re.escape, prefixes)) + r")_[\w]+)\.([A-Za-z_][\w-]*)"
    )
    problems = []
    called_outputs = {
        call: _child_outputs(module, call_address)
        for call_address in module.module_calls
        for call in [call_address.removeprefix("module.")]
    }
    for owner, body in _all_blocks(module):
        for text in _expressions(body):
            for var_name in _VARIABLE_REF.findall(text):
                if f"var.{var_name}" not in module.variables:
                    problems.append(f"{name}: {owner} uses undeclared var.{var_name}")
            for local_name in _LOCAL_REF.findall(text):
                if f"local.{local_name}" not in module.locals:
                    problems.append(f"{name}: {owner} uses undefined local.{local_name}")
            for data_type, data_name in _DATA_REF.findall(text):
                if f"data.{data_type}.{data_name}" not in module.data_sources:
                    problems.append(f"{name}: {owner} uses undefined data.{data_type}.{data_name}")
            for resource_type, resource_name in resource_ref.findall(text):
                if f"{resource_type}.{resource_name}" not in module.resources:
                    problems.append(
                        f"{name}: {owner} uses undefined resource {resource_type}.{resource_name}"
                    )
            for call, output in _MODULE_REF.findall(text):
                if call not in called_outputs:
                    problems.append(f"{name}: {owner} uses undefined module.{call}")
                elif (
                    output
                    and called_outputs[call] is not None
                    and output not in called_outputs[call]
                ):
                    problems.append(
                        f"{name}: {owner} uses module.{call}.{output}, "
                        "which that module does not output"
                    )
            for relative in _PATH_MODULE_FILE.findall(text):
                if not (module.directory / relative).is_file():
                    problems.append(f"{name}: {owner} reads missing file {relative}")
    problems += _check_meta_arguments(module)
    problems += _check_provider_references(module)
    return problems


def _check_meta_arguments(module: Module) -> list[str]:
    # `each.*` only exists under for_each, `count.index` only under count.
    problems = []
    blocks = {**module.resources, **module.data_sources, **module.module_calls}
    for address, body in blocks.items():
        texts = list(_expressions({k: v for k, v in body.items() if k != "for_each"}))
        if "for_each" not in body and any(_EACH_REF.search(t) for t in texts):
            problems.append(f"{module.directory.name}: {address} uses each.* without for_each")
        if "count" not in body and any(_COUNT_REF.search(t) for t in texts):
            problems.append(f"{module.directory.name}: {address} uses count.index without count")
    return problems


def _check_provider_references(module: Module) -> list[str]:
    problems = []
    configured = module.provider_configs
    for address, body in {**module.resources, **module.data_sources}.items():
        if "provider" in body:
            config = _unwrap(body["provider"])
            if config not in configured:
                problems.append(
                    f"{module.directory.name}: {address} uses provider {config}, "
                    "which is not configured"
                )
    for address, body in module.module_calls.items():
        for passed in (body.get("providers") or {}).values():
            config = _unwrap(passed)
            if config not in configured:
                problems.append(
                    f"{module.directory.name}: {address} passes provider {config}, "
                    "which is not configured"
                )
    return problems


def _child_directory(module: Module, call_address: str) -> Path | None:
    source = module.module_calls[call_address].get("source", "")
    if source.startswith(("./", "../")):
        return (module.directory / source).resolve()
    return None


def _child_outputs(module: Module, call_address: str) -> set[str] | None:
    directory = _child_directory(module, call_address)
    if directory is None or not directory.is_dir():
        return None
    child = load_module(directory)
    return {address.removeprefix("output.") for address in child.outputs}


def check_module_calls(module: Module) -> list[str]:
    """Local modules exist, get every required input and no unknown one."""
    problems = []
    for address, body in module.module_calls.items():
        directory = _child_directory(module, address)
        if directory is None:
            continue
        if not directory.is_dir():
            problems.append(f"{module.directory.name}: {address} source {directory} is missing")
            continue
        child = load_module(directory)
        declared = {a.removeprefix("var.") for a in child.variables}
        required = {
            a.removeprefix("var.") for a, var in child.variables.items() if "default" not in var
        }
        given = set(body) - _MODULE_META_ARGUMENTS
        for missing in sorted(required - given):
            problems.append(f"{module.directory.name}: {address} does not set required {missing}")
        for unknown in sorted(given - declared):
            problems.append(f"{module.directory.name}: {address} sets unknown input {unknown}")
    return problems


def check_all(directory: Path) -> list[str]:
    """All generic checks for a module and, recursively, the local modules it calls."""
    module = load_module(directory)
    problems = list(module.problems)
    problems += check_variables(module)
    problems += check_outputs(module)
    problems += check_references(module)
    problems += check_module_calls(module)
    for address in module.module_calls:
        child = _child_directory(module, address)
        if child is not None and child.is_dir():
            problems += [p for p in check_all(child) if p not in problems]
    return problems


# --- security group rules -------------------------------------------------------------


@dataclass(frozen=True)
class IngressRule:
    """One ingress rule instance (a for_each over a literal map is expanded)."""

    address: str
    security_group: str
    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None
    source_group: str | None


_EACH_VALUE_ATTRIBUTE = re.compile(r"(?<![\w.])each\.value\.([A-Za-z_][\w-]*)")


def _instances(
    address: str, body: dict[str, Any], evaluated: dict[str, Any] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    # Expand `for_each = { key = literal }`, or a for_each expression whose value is known
    # from `evaluated` (expression -> value), so that each.key/each.value resolve; any other
    # for_each leaves each.* symbolic (and the rule must be safe for any value).
    for_each = body.get("for_each")
    if isinstance(for_each, str) and evaluated and for_each in evaluated:
        for_each = evaluated[for_each]
    if isinstance(for_each, dict):
        for key, value in for_each.items():
            yield f'{address}["{key}"]', _substitute(body, key, value)
    else:
        yield address, body


def _literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _substitute(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for attribute, expression in body.items():
        inner = _unwrap(expression)
        if inner == "each.key":
            resolved[attribute] = key
        elif inner == "each.value":
            resolved[attribute] = value
        elif isinstance(inner, str) and inner.startswith("each.value.") and isinstance(value, dict):
            resolved[attribute] = value.get(inner.removeprefix("each.value."), expression)
        elif isinstance(expression, str):
            # each.* inside a larger expression (an index, a string) becomes a literal:
            # aws_security_group.flow[each.value.to].id -> aws_security_group.flow["api"].id
            text = expression.replace("${each.key}", key).replace("each.key", json.dumps(key))
            if isinstance(value, dict):
                text = _EACH_VALUE_ATTRIBUTE.sub(
                    lambda m: _literal(value[m.group(1)]) if m.group(1) in value else m.group(0),
                    text,
                )
            resolved[attribute] = text
        else:
            resolved[attribute] = expression
    return resolved


def _port(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _group_address(expression: Any) -> str | None:
    inner = _unwrap(expression)
    if not isinstance(inner, str):
        return None
    return inner.removesuffix(".id")


def _symbolic(rule: IngressRule) -> bool:
    fields = (rule.security_group, rule.source_group)
    return any(f is not None and _EACH_REF.search(f) for f in fields) or (
        rule.protocol.startswith("${") or (rule.from_port is None and rule.protocol != "-1")
    )


def ingress_rules(
    module: Module, evaluated: dict[str, Any] | None = None
) -> tuple[list[IngressRule], list[str]]:
    """All ingress rules, plus problems for rules that cannot be read statically.

    `evaluated` maps for_each expressions (e.g. "${module.flow_rules.group_rules}") to their
    values; a rule whose group, peer, protocol or ports still depend on each.* afterwards is
    reported, because nothing could be said about what it opens.
    """
    return _rules(module, "ingress", evaluated)


def egress_rules(
    module: Module, evaluated: dict[str, Any] | None = None
) -> tuple[list[IngressRule], list[str]]:
    """Like ingress_rules for egress; `cidr`/`source_group` name the destination."""
    return _rules(module, "egress", evaluated)


def _rules(
    module: Module, direction: str, evaluated: dict[str, Any] | None
) -> tuple[list[IngressRule], list[str]]:
    rules, problems = [], []
    for address, body in module.resources.items():
        if address.startswith("aws_security_group."):
            for inline in body.get(direction, []) or []:
                problems.append(f"{address}: inline {direction} {inline}; use rule resources")
            continue
        if address.startswith("aws_security_group_rule."):
            if body.get("type") != direction:
                continue
            cidrs = body.get("cidr_blocks", []) + body.get("ipv6_cidr_blocks", [])
            for instance, resolved in _instances(address, body, evaluated):
                for cidr in cidrs or [None]:
                    rules.append(
                        IngressRule(
                            address=instance,
                            security_group=_group_address(resolved.get("security_group_id")),
                            protocol=str(resolved.get("protocol")),
                            from_port=_port(resolved.get("from_port")),
                            to_port=_port(resolved.get("to_port")),
                            cidr=cidr,
                            source_group=_group_address(resolved.get("source_security_group_id")),
                        )
                    )
            continue
        if not address.startswith(f"aws_vpc_security_group_{direction}_rule."):
            continue
        for instance, resolved in _instances(address, body, evaluated):
            rules.append(
                IngressRule(
                    address=instance,
                    security_group=_group_address(resolved.get("security_group_id")),
                    protocol=str(resolved.get("ip_protocol")),
                    from_port=_port(resolved.get("from_port")),
                    to_port=_port(resolved.get("to_port")),
                    cidr=resolved.get("cidr_ipv4") or resolved.get("cidr_ipv6"),
                    source_group=_group_address(resolved.get("referenced_security_group_id")),
                )
            )
    for rule in rules:
        if _symbolic(rule):
            problems.append(
                f"{rule.address}: for_each {module.resources[rule.address.split('[')[0]].get('for_each')} "
                "is not expanded, so its group, peer or ports are unknown"
            )
    return rules, problems


def _covers(rule: IngressRule, port: int) -> bool:
    if rule.protocol == "-1":
        return True
    if rule.from_port is None or rule.to_port is None:
        return True  # unknown ports: assume the worst
    return rule.from_port <= port <= rule.to_port


def check_internet_exposure(
    module: Module, allowed: dict[str, set[int]], evaluated: dict[str, Any] | None = None
) -> list[str]:
    """No ingress rule is open to the internet except `allowed` (group address -> ports).

    A CIDR that comes from a variable is accepted only if that variable has a validation
    block refusing 0.0.0.0/0 and its default is not world-open. `evaluated` as for
    ingress_rules.
    """
    rules, problems = ingress_rules(module, evaluated)
    for rule in rules:
        if rule.source_group is not None:
            continue
        if rule.cidr is None:
            problems.append(f"{rule.address}: no source (neither CIDR nor security group)")
            continue
        if "${" not in rule.cidr:
            if rule.cidr in _WORLD_CIDRS:
                ports = allowed.get(rule.security_group, set())
                if (
                    rule.from_port is None
                    or rule.from_port != rule.to_port
                    or (rule.from_port not in ports)
                ):
                    problems.append(
                        f"{rule.address}: {rule.cidr} may reach {rule.security_group} "
                        f"ports {rule.from_port}-{rule.to_port}"
                    )
            continue
        body = module.resources[rule.address.split("[")[0]]
        sources = set(_VARIABLE_REF.findall(rule.cidr)) | set(
            _VARIABLE_REF.findall(str(body.get("for_each", "")))
        )
        if not sources:
            problems.append(f"{rule.address}: CIDR {rule.cidr} is not a literal or a variable")
        for var_name in sources:
            problems += _check_cidr_variable(module, rule.address, var_name)
    return problems


def _check_cidr_variable(module: Module, where: str, var_name: str) -> list[str]:
    variable = module.variables.get(f"var.{var_name}")
    if variable is None:
        return [f"{where}: CIDR from undeclared var.{var_name}"]
    default = variable.get("default")
    defaults = default if isinstance(default, list) else [default]
    problems = [f"{where}: var.{var_name} defaults to {d}" for d in defaults if d in _WORLD_CIDRS]
    refuses_world = any(
        "0.0.0.0/0" in str(validation.get("condition", ""))
        for validation in variable.get("validation", []) or []
    )
    if not refuses_world:
        problems.append(f"{where}: var.{var_name} feeds a CIDR but does not refuse 0.0.0.0/0")
    return problems


def rules_reaching(
    module: Module, port: int, protocol: str = "tcp", evaluated: dict[str, Any] | None = None
) -> list[IngressRule]:
    rules, _ = ingress_rules(module, evaluated)
    return [r for r in rules if r.protocol in (protocol, "-1") and _covers(r, port)]


# (security group, protocol, port, peer): peer is a security group address or a CIDR.
RuleKey = tuple[str, str, int, str]


def rule_keys(rules: list[IngressRule]) -> dict[RuleKey, list[str]]:
    """Single-port rules by (group, protocol, port, peer) => addresses of the rules."""
    keys: dict[RuleKey, list[str]] = {}
    for rule in rules:
        ports = [rule.from_port] if rule.from_port == rule.to_port else [None]
        peer = rule.source_group or rule.cidr or "?"
        for port in ports:
            keys.setdefault((rule.security_group, rule.protocol, port, peer), []).append(
                rule.address
            )
    return keys


def check_rules_match(rules: list[IngressRule], expected: set[RuleKey]) -> list[str]:
    """The rules open exactly `expected`: nothing missing, nothing the data does not name."""
    actual = rule_keys(rules)
    problems = [
        f"missing: {group} {protocol}/{port} from {peer}"
        for group, protocol, port, peer in sorted(expected - set(actual), key=str)
    ]
    problems += [
        f"{', '.join(actual[key])}: {key[0]} {key[1]}/{key[2]} from {key[3]} is not in the data"
        for key in sorted(set(actual) - expected, key=str)
    ]
    return problems


def check_security_group_keys(
    module: Module, rules: list[IngressRule], keys: set[str]
) -> list[str]:
    """Every `aws_security_group.X["key"]` a rule uses is one of the groups for_each creates."""
    problems = []
    for rule in rules:
        for group in (rule.security_group, rule.source_group):
            match = re.fullmatch(r'(aws_security_group\.[\w-]+)\["([^"]+)"\]', group or "")
            if match and match.group(1) in module.resources and match.group(2) not in keys:
                problems.append(f"{rule.address}: {group} is not a security group that exists")
    return problems


# --- S3 bucket ------------------------------------------------------------------------


def _attached(module: Module, resource_type: str, bucket: str) -> list[dict[str, Any]]:
    target = f"${{{bucket}.id}}"
    return [
        body
        for body in module.resources_of_type(resource_type).values()
        if body.get("bucket") == target
    ]


def _first(blocks: Any) -> dict[str, Any]:
    if isinstance(blocks, list):
        return blocks[0] if blocks else {}
    return blocks or {}


def check_private_bucket(module: Module, bucket: str) -> list[str]:
    """`bucket` (e.g. aws_s3_bucket.images) is private, encrypted and versioned."""
    problems = []
    if bucket not in module.resources:
        return [f"{bucket} is not defined"]
    if module.resources[bucket].get("acl") not in (None, "private"):
        problems.append(f"{bucket}: acl {module.resources[bucket]['acl']}")
    for body in _attached(module, "aws_s3_bucket_acl", bucket):
        if body.get("acl") != "private":
            problems.append(f"{bucket}: aws_s3_bucket_acl grants {body.get('acl')}")
    blocks = _attached(module, "aws_s3_bucket_public_access_block", bucket)
    flags = (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    )
    if not blocks:
        problems.append(f"{bucket}: no public access block")
    for body in blocks:
        problems += [
            f"{bucket}: public access block {f} is not true"
            for f in flags
            if body.get(f) is not True
        ]
    encryption = _attached(module, "aws_s3_bucket_server_side_encryption_configuration", bucket)
    algorithms = [
        _first(_first(body.get("rule")).get("apply_server_side_encryption_by_default")).get(
            "sse_algorithm"
        )
        for body in encryption
    ]
    if not any(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in algorithms):
        problems.append(f"{bucket}: no default encryption")
    versioning = _attached(module, "aws_s3_bucket_versioning", bucket)
    if not any(
        _first(v.get("versioning_configuration")).get("status") == "Enabled" for v in versioning
    ):
        problems.append(f"{bucket}: versioning is not enabled")
    problems += _check_policy_documents(module, bucket)
    return problems


def _check_policy_documents(module: Module, bucket: str) -> list[str]:
    # A bucket policy may deny everyone (`*`) but must not allow everyone.
    problems = []
    for body in _attached(module, "aws_s3_bucket_policy", bucket):
        document = _unwrap(body.get("policy", ""))
        match = re.fullmatch(r"data\.aws_iam_policy_document\.([\w-]+)\.json", str(document))
        if not match:
            problems.append(f"{bucket}: policy is not an aws_iam_policy_document")
            continue
        source = module.data_sources.get(f"data.aws_iam_policy_document.{match.group(1)}", {})
        for statement in source.get("statement", []) or []:
            if statement.get("effect", "Allow") != "Allow":
                continue
            for principal in statement.get("principals", []) or []:
                if "*" in principal.get("identifiers", []):
                    problems.append(f"{bucket}: policy allows principal * ({statement.get('sid')})")
    return problems


# --- load balancer, registry ---------------------------------------------------------


# IAM actions only a load balancer controller running in the cluster needs: the ALB and its
# targets are Terraform's (load_balancer.tf), so no node role may change them.
_CONTROLLER_ACTION = re.compile(r"^elasticloadbalancing:(?!Describe)")


def check_no_load_balancer_controller(module: Module) -> list[str]:
    """No IAM policy lets a node change load balancers or targets; no controller is deployed."""
    problems = []
    for address, body in module.data_sources.items():
        if not address.startswith("data.aws_iam_policy_document."):
            continue
        for statement in body.get("statement", []) or []:
            for action in statement.get("actions", []) or []:
                if (
                    action == "*"
                    or action.startswith("elasticloadbalancing:*")
                    or (_CONTROLLER_ACTION.match(action))
                ):
                    problems.append(
                        f"{address}: {statement.get('sid')} allows {action} "
                        "(a load balancer controller's permission)"
                    )
    for address, body in module.resources.items():
        if address.startswith("aws_iam_role_policy_attachment."):
            arn = str(body.get("policy_arn", ""))
            if "ElasticLoadBalancing" in arn or "LoadBalancerController" in arn:
                problems.append(f"{address}: attaches {arn}")
        if address.startswith("helm_release.") and "load-balancer-controller" in str(body):
            problems.append(f"{address}: deploys the AWS Load Balancer Controller")
    return problems


def check_private_registry(module: Module, repository: str) -> list[str]:
    """`repository` (an aws_ecr_repository address) has immutable tags, scan on push, encryption."""
    if repository not in module.resources:
        return [f"{repository} is not defined"]
    body = module.resources[repository]
    problems = []
    if body.get("image_tag_mutability") != "IMMUTABLE":
        problems.append(f"{repository}: tags are mutable (image_tag_mutability is not IMMUTABLE)")
    if _first(body.get("image_scanning_configuration")).get("scan_on_push") is not True:
        problems.append(f"{repository}: images are not scanned on push")
    if _first(body.get("encryption_configuration")).get("encryption_type") not in ("KMS", "AES256"):
        problems.append(f"{repository}: no encryption_configuration (KMS or AES256)")
    if body.get("force_delete") is True:
        problems.append(f"{repository}: force_delete would destroy deployed images")
    return problems


# --- evaluating provider-free modules -------------------------------------------------


def _hcl_argument(value: Any, root: Path) -> str:
    # Only module outputs and paths relative to the root can be evaluated out of context.
    if isinstance(value, str):
        inner = _unwrap(value)
        if inner != value and re.fullmatch(r"module\.[\w-]+(\.[\w-]+)*", inner):
            return inner
        text = value.replace("${path.module}", str(root))
        if "${" in text:
            raise ValueError(f"cannot evaluate {value!r} outside the configuration")
        return json.dumps(text)
    return json.dumps(value)


def evaluate_module_calls(
    module: Module, calls: list[str], terraform: str = "terraform", timeout: int = 120
) -> dict[str, dict[str, Any]]:
    """Evaluate the module calls (`module.X`) of `module` with a terraform binary.

    The calls are copied as written (sources and `${path.module}` made absolute); their
    inputs may only be literals, root-relative paths and outputs of the other calls, and
    the called modules must need no provider. Returns call name => outputs.
    """
    root = module.directory.resolve()
    text = []
    for address in calls:
        body = module.module_calls[address]
        name = address.removeprefix("module.")
        directory = _child_directory(module, address)
        if directory is None:
            raise ValueError(f"{address}: only local modules can be evaluated")
        lines = [f'module "{name}" {{', f"  source = {json.dumps(str(directory))}"]
        for argument, value in body.items():
            if argument not in _MODULE_META_ARGUMENTS:
                lines.append(f"  {argument} = {_hcl_argument(value, root)}")
        lines.append("}")
        lines.append(f'output "{name}" {{\n  value = module.{name}\n}}')
        text.append("\n".join(lines))
    with tempfile.TemporaryDirectory(prefix="tfcheck-") as scratch:
        (Path(scratch) / "main.tf").write_text("\n\n".join(text) + "\n")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/local/bin"),
            "HOME": scratch,
            "TF_IN_AUTOMATION": "1",
        }
        for command in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
            result = subprocess.run(
                [terraform, f"-chdir={scratch}", *command, "-no-color"],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
            if result.returncode != 0:
                raise ValueError(f"terraform {command[0]} failed:\n{result.stderr}")
        result = subprocess.run(
            [terraform, f"-chdir={scratch}", "output", "-json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=True,
        )
    return {name: output["value"] for name, output in json.loads(result.stdout).items()}


def for_each_values(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`evaluated` for ingress_rules & co: "${module.X.Y}" => value, from evaluate_module_calls."""
    return {
        f"${{module.{call}.{name}}}": value
        for call, values in outputs.items()
        for name, value in values.items()
    }


if __name__ == "__main__":
    # Re-record tests/terraform/fixtures/module-outputs.json (needs a terraform binary):
    #   .venv/bin/python tests/terraform/tfcheck.py terraform module.node_map module.flow_rules
    import sys

    directory, *calls = sys.argv[1:]
    outputs = evaluate_module_calls(load_module(Path(directory)), calls)
    print(json.dumps(outputs, indent=1, sort_keys=True))
