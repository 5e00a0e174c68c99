"""One deploy contract, two runtimes: for the same inventory, every process gets the same
effective settings from the systemd env file (app_systemd) as from the chart's rendered pod
spec (growbin_app values + Secret through the real helm), and every GROWBIN_* variable either
runtime emits is a field of the settings model.

Only two differences are legitimate and normalised here: the bind address (GROWBIN_API__HOST:
a node address under systemd, the pod's own in Kubernetes) and data-service hosts (addresses
under systemd, the chart's selector-less Service names in Kubernetes, resolved through the
rendered Endpoints as cluster DNS would).
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from growbin.core import processes
from growbin.core.settings import Settings, StorageSettings
from pydantic import BaseModel

from tests.kubernetes.conftest import REPO_ROOT, inventory_hosts, node_map_hosts, run_playbook
from tests.kubernetes.test_growbin_app_values import CHART_DIR, HELM_TIMEOUT_S, helm_bin

INVENTORIES = ("production", "local")
RUNTIME_SPECIFIC = {"GROWBIN_API__HOST"}
URL_SETTINGS = ("GROWBIN_REDIS__URL", "GROWBIN_BROKER__URL")


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert value.startswith("'") and value.endswith("'"), line
            env[name] = value[1:-1].replace("\\n", "\n")
    return env


@pytest.fixture(scope="module", params=INVENTORIES)
def rendered(request, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp(f"parity-{request.param}")
    run_playbook(
        Path(__file__).parent / "render.yml",
        out,
        inventory=REPO_ROOT / "inventories" / request.param,
    )
    manifests = subprocess.run(
        [helm_bin(), "template", "growbin", str(CHART_DIR), "-n", "growbin"]
        + ["-f", str(out / "growbin-values.yaml")],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    secret = yaml.safe_load((out / "growbin-secret.yaml").read_text())
    systemd = {
        path.name.removeprefix("systemd-").removesuffix(".env"): read_env_file(path)
        for path in out.glob("systemd-*.env")
    }
    return {"docs": docs, "secret": secret, "systemd": systemd}


def endpoints(docs: list[dict]) -> dict[str, str]:
    """Service name -> first address, from the selector-less Services' Endpoints(lices)."""
    addresses = {}
    for doc in docs:
        if doc["kind"] == "Endpoints":
            addresses[doc["metadata"]["name"]] = doc["subsets"][0]["addresses"][0]["ip"]
        elif doc["kind"] == "EndpointSlice":
            service = doc["metadata"]["labels"]["kubernetes.io/service-name"]
            addresses[service] = doc["endpoints"][0]["addresses"][0]
    return addresses


def expand(value: str, defined: dict[str, str]) -> str:
    # Kubernetes expands $(VAR) of variables defined earlier in the list; others stay as written.
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: defined.get(m[1], m[0]), value)


def container_env(doc: dict, docs: list[dict], secret: dict) -> dict[str, str]:
    config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    secret_data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"], item
        if ref["key"] in secret_data:
            env[item["name"]] = secret_data[ref["key"]]
        else:
            assert ref.get("optional"), f"{item['name']}: key {ref['key']} missing from the Secret"
    return {k: v for k, v in env.items() if k.startswith("GROWBIN_")}


def chart_processes(rendered: dict) -> dict[str, dict[str, str]]:
    # Names of the external Services resolve through their Endpoints; deploy-init (a hook that
    # runs before the Services exist) is given addresses, which resolve to themselves.
    docs = rendered["docs"]
    hosts = endpoints(docs)
    result = {}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        env = container_env(doc, docs, rendered["secret"])
        env = {k: v for k, v in env.items() if k not in RUNTIME_SPECIFIC}
        env["GROWBIN_DATABASE__HOST"] = hosts.get(
            env["GROWBIN_DATABASE__HOST"], env["GROWBIN_DATABASE__HOST"]
        )
        for name in URL_SETTINGS:
            if name in env:
                parts = urlsplit(env[name])
                host = hosts.get(parts.hostname, parts.hostname)
                netloc = f"{parts.username}:{parts.password}@{host}:{parts.port}"
                env[name] = urlunsplit(parts._replace(netloc=netloc))
        result[component] = env
    return result


def systemd_processes(rendered: dict) -> dict[str, dict[str, str]]:
    result = {}
    for host, spec in node_map_hosts().items():
        name = (
            f"api-{spec['growbin_api_domain']}"
            if "growbin_api_domain" in spec
            else f"worker-{spec['growbin_worker_queue']}"
            if "growbin_worker_queue" in spec
            else None
        )
        if name:
            env = rendered["systemd"][host]
            result[name] = {k: v for k, v in env.items() if k not in RUNTIME_SPECIFIC}
    return result


def test_every_process_has_the_same_settings_in_both_runtimes(rendered):
    chart = chart_processes(rendered)
    systemd = systemd_processes(rendered)
    assert set(systemd) <= set(chart), (
        f"processes without a chart workload: {set(systemd) - set(chart)}"
    )
    assert len(systemd) == 8
    for name, env in systemd.items():
        assert chart[name] == env, name


def test_deploy_init_is_the_same_command_with_each_domains_settings(rendered):
    chart = chart_processes(rendered)["deploy-init"]
    for host, spec in node_map_hosts().items():
        if "growbin_api_domain" not in spec:
            continue
        domain = spec["growbin_api_domain"]
        systemd = rendered["systemd"][f"{host}-deploy-init"]
        # The systemd runtime runs it per domain with that domain's credentials only.
        passwords = {k for k in systemd if k.endswith("__PASSWORD")}
        assert passwords == {f"GROWBIN_DATABASE__{domain.upper()}__PASSWORD"}
        assert {k: v for k, v in systemd.items()} == {
            k: v for k, v in chart.items() if not k.endswith("__PASSWORD") or k in passwords
        }, host


def image_store_mounts(docs: list[dict]) -> dict[str, tuple[str, str]]:
    """Component -> (mount path, node directory) of its `objects` hostPath volume."""
    mounts = {}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] == "objects":
                    component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
                    path = volumes["objects"]["hostPath"]["path"]
                    mounts[component] = (mount["mountPath"], path)
    return mounts


def test_the_filesystem_image_store_is_the_same_directory_in_both_runtimes(rendered):
    """Where the systemd processes keep scan images on a node directory, the chart's pods of
    exactly those processes (the contract's object_store ones) mount that same directory there.
    Locally the node containers share it as one volume; with s3 (production) nothing mounts."""
    systemd = systemd_processes(rendered)
    on_disk = {
        name: env["GROWBIN_STORAGE__ROOT"]
        for name, env in systemd.items()
        if env.get("GROWBIN_STORAGE__BACKEND") == "filesystem"
    }
    assert on_disk == {} or set(on_disk) == set(systemd), "one backend for every process"
    image_handlers = {name for name, process in processes.PROCESSES.items() if process.object_store}
    assert image_store_mounts(rendered["docs"]) == {
        name: (root, root) for name, root in on_disk.items() if name in image_handlers
    }


def test_the_local_nodes_of_image_handlers_share_the_image_store_volume():
    """inventories/local's shared volume is on exactly the nodes of object_store processes."""
    local = yaml.safe_load((REPO_ROOT / "inventories" / "local" / "10-local_nodes.yml").read_text())
    volumes = {
        host: spec.get("growbin_local_volumes", []) for host, spec in inventory_hosts(local).items()
    }
    root = StorageSettings.model_fields["root"].default
    sharing = {
        host for host, mounts in volumes.items() if any(m.endswith(f":{root}") for m in mounts)
    }
    handlers = set()
    for host, spec in node_map_hosts().items():
        queue, domain = spec.get("growbin_worker_queue"), spec.get("growbin_api_domain")
        name = f"worker-{queue}" if queue else f"api-{domain}" if domain else None
        if name and processes.PROCESSES[name].object_store:
            handlers.add(host)
    assert handlers == {"api-waste", "worker-storage", "worker-ai"}
    assert sharing == handlers


def setting_names(model: type[BaseModel], prefix: str = "GROWBIN_") -> set[str]:
    names = set()
    for field, info in model.model_fields.items():
        name = f"{prefix}{field.upper()}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, name + "__")
        else:
            names.add(name)
    return names


def test_every_emitted_variable_is_a_settings_field(rendered):
    known = setting_names(Settings)
    emitted = set()
    for env in [*chart_processes(rendered).values(), *rendered["systemd"].values()]:
        emitted |= set(env)
    assert emitted, "nothing rendered"
    assert emitted - known == set()


def test_the_settings_reader_rejects_unknown_names():
    # The check above is only as good as setting_names: a typo must not be a field.
    known = setting_names(Settings)
    assert "GROWBIN_DATABASE__AUTH__PASSWORD" in known
    assert "GROWBIN_API__FORWARDED_ALLOW_IPS" in known
    assert "GROWBIN_DATABASE__PASSWORD" not in known
