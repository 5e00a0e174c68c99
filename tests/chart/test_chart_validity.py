"""The chart lints, renders schema-valid Kubernetes objects, and rejects bad values."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from .conftest import (
    CHART_DIR,
    TEST_VALUES_DIR,
    VALUES_SETS,
    helm_template,
    node_map,
    render,
    run_helm,
    values_args,
)

# The seed cluster runs 1.28; COLLECTION_KUBERNETES_VERSION is the kubernetes role's
# default and must follow it when that default changes.
SEED_KUBERNETES_VERSION = "1.28.0"
COLLECTION_KUBERNETES_VERSION = "1.31.0"
KUBERNETES_VERSIONS = (SEED_KUBERNETES_VERSION, COLLECTION_KUBERNETES_VERSION)


@pytest.mark.parametrize("values_set", VALUES_SETS)
def test_helm_lint_strict(values_set: str) -> None:
    result = run_helm("lint", "--strict", str(CHART_DIR), *values_args(values_set))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_set", VALUES_SETS)
def test_manifests_match_kubernetes_schema(values_set: str, kube_version: str) -> None:
    rendered = render(values_set, kube_version)
    assert rendered.docs
    errors = []
    for doc in rendered.docs:
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_kubernetes_validate_rejects_unknown_field() -> None:
    """Guards the test above: strict mode must actually refuse a misplaced field."""
    deployment = next(d for d in render("default").docs if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(broken, SEED_KUBERNETES_VERSION, strict=True)


# invalid values file -> text the error message must contain
INVALID_VALUES = {
    "unknown-key.yaml": "api.auth: Additional property replica is not allowed",
    "wrong-type.yaml": "api.scans.replicas: Invalid type. Expected: integer, given: string",
    "hostname-endpoint.yaml": (
        "externalServices.postgresql.addresses.0: Does not match format 'ipv4'"
    ),
    "unknown-node-role.yaml": "workers.ai.nodeRole must be one of the following",
    "missing-limits.yaml": "api.chat.resources: limits is required",
    "weak-inline-secret.yaml": "secrets.databasePasswords.auth: Does not match pattern",
    "bad-ingress-flavour.yaml": 'ingress.flavour must be one of the following: "alb", "nginx"',
    "bad-certificate-arn.yaml": "ingress.alb.certificateArn: Does not match pattern",
    "min-above-max.yaml": (
        "workers.storage.autoscaling: minReplicas (3) is greater than maxReplicas (2)"
    ),
}


def test_every_invalid_values_file_has_an_expectation() -> None:
    files = {p.name for p in (TEST_VALUES_DIR / "invalid").glob("*.yaml")}
    assert files == set(INVALID_VALUES)


@pytest.mark.parametrize(("file_name", "message"), sorted(INVALID_VALUES.items()))
def test_invalid_values_fail_with_readable_error(file_name: str, message: str) -> None:
    result = run_helm(
        "template", "growbin", str(CHART_DIR), "-f", str(TEST_VALUES_DIR / "invalid" / file_name)
    )
    assert result.returncode != 0, f"{file_name} rendered although it is invalid"
    assert message in result.stderr, result.stderr


def test_weak_inline_secret_lists_every_missing_credential() -> None:
    result = run_helm(
        "template",
        "growbin",
        str(CHART_DIR),
        "-f",
        str(TEST_VALUES_DIR / "invalid" / "weak-inline-secret.yaml"),
    )
    for missing in ("users is required", "chat is required", "secrets.jwtPrivateKey"):
        assert missing in result.stderr


def test_existing_secret_and_inline_secrets_conflict(tmp_path: Path) -> None:
    values = tmp_path / "both.yaml"
    values.write_text(
        "secrets:\n  existingSecret: growbin-app\n  redisPassword: abcdefghijklmnopq\n"
    )
    result = run_helm("template", "growbin", str(CHART_DIR), "-f", str(values))
    assert result.returncode != 0
    assert "secrets.existingSecret (growbin-app) and inline secrets.* values are both set" in (
        result.stderr
    )


def test_node_taints_default_mirrors_node_map() -> None:
    values_file = CHART_DIR / "values.yaml"
    chart_taints = yaml.safe_load(values_file.read_text())["nodeTaints"]
    map_taints = {role: spec["taints"] for role, spec in node_map().items() if spec["taints"]}
    assert chart_taints == map_taints


def test_schema_node_roles_are_the_node_map_roles() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert set(schema["definitions"]["nodeRole"]["enum"]) == set(node_map())


def test_release_name_with_chart_name_is_not_repeated() -> None:
    docs = helm_template("--set", "fullnameOverride=")
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert "growbin-auth" in names


def test_kubernetes_older_than_the_seed_is_refused() -> None:
    result = run_helm("template", "growbin", str(CHART_DIR), "--kube-version", "1.27.0")
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or ">=1.28.0-0" in result.stderr, result.stderr
