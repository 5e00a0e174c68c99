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
    CI_VALUES_DIR,
    LOCAL_VALUES,
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
    deployment = next(d for d in render("local").docs if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(broken, SEED_KUBERNETES_VERSION, strict=True)


# invalid values file (applied on top of the local values, so it is the only fault) ->
# text the error message must contain
INVALID_VALUES = {
    "unknown-key.yaml": "api.auth: Additional property replica is not allowed",
    "wrong-type.yaml": "api.scans.replicas: Invalid type. Expected: integer, given: string",
    "hostname-endpoint.yaml": (
        "externalServices.postgresql.addresses.0: Does not match format 'ipv4'"
    ),
    "unknown-node-role.yaml": "workers.ai.nodeRole must be one of the following",
    "missing-limits.yaml": "api.chat.resources: limits is required",
    "weak-inline-secret.yaml": "secrets.databasePasswords.auth: Does not match pattern",
    "bad-ingress-flavour.yaml": 'ingress.flavour must be one of the following: "nginx"',
    "alb-flavour.yaml": 'ingress.flavour must be one of the following: "nginx"',
    "min-above-max.yaml": (
        "workers.storage.autoscaling: minReplicas (3) is greater than maxReplicas (2)"
    ),
    "node-port-out-of-range.yaml": "api.users.nodePort: Must be greater than or equal to 30000",
    "duplicate-node-port.yaml": (
        "api.auth.nodePort and api.chat.nodePort are both 30081: "
        "each API domain needs its own NodePort"
    ),
    "unknown-data-flow-component.yaml": (
        "networkPolicy.dataFlows.rabbitmq lists worker-gpu, which is not a component"
    ),
    "no-api-sources.yaml": "networkPolicy.apiSourceCIDRs is empty while NetworkPolicies are on",
    "derived-setting.yaml": "settings.GROWBIN_BROKER__URL is set by the chart",
    "password-setting.yaml": "api.auth.settings.GROWBIN_DATABASE__AUTH__PASSWORD is set by the chart",
    "changed-api-port.yaml": "api.scans.settings.GROWBIN_API__PORT must be 8000",
    "wal-outside-volume.yaml": (
        "workers.storage.settings.GROWBIN_WORKER__WAL_PATH must be a file under /var/lib/growbin/wal/"
    ),
    "wildcard-proxies.yaml": "settings.GROWBIN_API__FORWARDED_ALLOW_IPS contains '*'",
    "short-api-grace-period.yaml": (
        "apiTerminationGracePeriodSeconds (300) must exceed the 5 s preStop pause plus "
        "GROWBIN_API__GRACEFUL_SHUTDOWN_SECONDS (310)"
    ),
    "integer-setting.yaml": (
        "settings.GROWBIN_API__KEEPALIVE_SECONDS: Invalid type. Expected: string, given: integer"
    ),
    "lowercase-setting.yaml": 'settings: Property name of "growbin_log_level" does not match',
    "model-host-path.yaml": "workers.ai: Additional property modelHostPath is not allowed",
}


def _template_on_local(*args: str):
    return run_helm("template", "growbin", str(CHART_DIR), "-f", str(LOCAL_VALUES), *args)


def test_every_invalid_values_file_has_an_expectation() -> None:
    files = {p.name for p in (TEST_VALUES_DIR / "invalid").glob("*.yaml")}
    assert files == set(INVALID_VALUES)


@pytest.mark.parametrize(("file_name", "message"), sorted(INVALID_VALUES.items()))
def test_invalid_values_fail_with_readable_error(file_name: str, message: str) -> None:
    result = _template_on_local("-f", str(TEST_VALUES_DIR / "invalid" / file_name))
    assert result.returncode != 0, f"{file_name} rendered although it is invalid"
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize("service", ["postgresql", "redis", "rabbitmq"])
def test_chart_defaults_hold_no_addresses_and_say_which_are_missing(
    tmp_path: Path, service: str
) -> None:
    """values.yaml is environment-neutral: without the inventory's addresses it refuses to
    render, naming the first missing key, instead of pointing pods at someone's network."""
    text = (CHART_DIR / "values.yaml").read_text()
    assert "172.29.77." not in text, (
        "the local inventory's addresses belong in ci/local-values.yaml"
    )
    defaults = yaml.safe_load(text)
    assert all(not spec["addresses"] for spec in defaults["externalServices"].values())
    assert not defaults["networkPolicy"]["apiSourceCIDRs"]
    assert not defaults["networkPolicy"]["metricsSourceCIDRs"]
    given = {
        name: {"addresses": ["192.0.2.10"]}
        for name in ("postgresql", "redis", "rabbitmq")
        if name != service
    }
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"environment": "local", "externalServices": given}))
    result = run_helm("template", "growbin", str(CHART_DIR), "-f", str(values))
    assert result.returncode != 0
    assert f"externalServices.{service}.addresses is empty" in result.stderr, result.stderr


def test_production_without_image_digest_fails() -> None:
    production = str(CI_VALUES_DIR / "production-values.yaml")
    result = run_helm(
        "template", "growbin", str(CHART_DIR), "-f", production, "--set", "image.digest="
    )
    assert result.returncode != 0
    assert "environment is production but image.digest is empty" in result.stderr, result.stderr
    # The same values with the digest render, and every container runs repository@digest.
    values = yaml.safe_load(Path(production).read_text())
    pinned = f"{values['image']['repository']}@{values['image']['digest']}"
    images = {
        c["image"]
        for d in render("production").docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {pinned}


def test_unpinned_image_is_accepted_outside_production() -> None:
    result = _template_on_local("--set", "image.digest=")
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"growbin/app:0.1.0"}


def test_weak_inline_secret_lists_every_missing_credential() -> None:
    result = _template_on_local("-f", str(TEST_VALUES_DIR / "invalid" / "weak-inline-secret.yaml"))
    for missing in ("users is required", "chat is required", "secrets.jwtPrivateKey"):
        assert missing in result.stderr


def test_existing_secret_and_inline_secrets_conflict(tmp_path: Path) -> None:
    values = tmp_path / "both.yaml"
    values.write_text(
        "secrets:\n  existingSecret: growbin-app\n  redisPassword: abcdefghijklmnopq\n"
    )
    result = _template_on_local("-f", str(values))
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
    docs = helm_template("-f", str(LOCAL_VALUES), "--set", "fullnameOverride=")
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert "growbin-auth" in names


def test_kubernetes_older_than_the_seed_is_refused() -> None:
    result = _template_on_local("--kube-version", "1.27.0")
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or ">=1.28.0-0" in result.stderr, result.stderr
