"""The chart's workloads, run from their rendered manifests on the local platform's nodes.

There is no Kubernetes here, so this module plays the parts of the scheduler and of kubelet
that the chart's pods depend on, and nothing else. Every fact about a pod comes from the
manifests `helm template` rendered (Deployments, the deploy-init hook Job, the ConfigMaps,
Services and Endpoints) plus the credentials Secret the growbin_app role would create. Two
inputs are not in the manifests, and they are the only substitutions made:

- the image: the rendered reference (repository:tag or repository@digest) names an image in
  a registry; it is mapped to the image built locally from the same code (``image_map``);
- the node: a pod's ``nodeSelector`` names a node role; the node map
  (``inventories/node_map.yml``) says which host has that role, and the pod joins the network
  namespace of that host's container (``growbin-<host>``), standing in for kubelet on that
  node. The data nodes' firewalls then admit the pod exactly as they admit the node.

Everything else is translated field by field (see ``ContainerRun``). A field this module does
not know is an error rather than something silently dropped, so a chart change it cannot
honour fails the test instead of running a different pod than the one rendered.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
NODE_MAP = REPO / "inventories" / "node_map.yml"
NODE_CONFIG_DEFAULTS = REPO / "roles" / "node_config" / "defaults" / "main.yml"
NODE_CONTAINER_PREFIX = "growbin-"
POD_CONTAINER_PREFIX = "chartpod-"
# Marks the containers this module starts, so a cleanup never touches anything else.
POD_LABEL = "growbin.test.chart-pod"
DOCKER_SECONDS = 120.0

# Environment kubelet or the runtime adds without the pod spec asking. Kubernetes also adds
# KUBERNETES_SERVICE_HOST/PORT* (the API server's Service, even with enableServiceLinks off);
# there is no API server here and the application does not read them, so they are left out.
RUNTIME_ENV = frozenset({"HOSTNAME", "HOME"})

# Pod and container fields that need no translation here, each with the reason.
IGNORED_POD_FIELDS = {
    # Identity for the API server, and no token is mounted (automountServiceAccountToken).
    "serviceAccountName",
    # Pull secrets: the image is local (see the image mapping).
    "imagePullSecrets",
    # Replaced by the node-map placement (nodeSelector) and checked against taints.
    "tolerations",
    # Used when the pods are removed: docker's stop timeout.
    "terminationGracePeriodSeconds",
    # Deployments restart crashed containers; here a crash fails the test instead.
    "restartPolicy",
}
IGNORED_CONTAINER_FIELDS = {
    "name",
    # The local image is always present.
    "imagePullPolicy",
    # Informational in Kubernetes too; the pod shares the node's network namespace here.
    "ports",
    # Restarts a wedged container; a test run is shorter than its first failure window.
    "livenessProbe",
    # Runs at pod deletion; the test removes its pods after the checks.
    "lifecycle",
}


class UnsupportedSpec(Exception):
    """The rendered pod uses something this runner cannot reproduce faithfully."""


class PodFailed(Exception):
    """A container did not start, exited, or never became ready, as kubelet would report it."""


# --- manifests ---------------------------------------------------------------------------


def load_documents(*texts: str) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for text in texts:
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys as the container sees them: `data` decoded, `stringData` winning."""
    values = {
        key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()
    }
    values.update({key: str(value) for key, value in (secret.get("stringData") or {}).items()})
    return values


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    # The Deployment's or Job's own spec, and its pod template.
    owner: dict[str, Any]
    pod: dict[str, Any]

    @property
    def containers(self) -> list[dict[str, Any]]:
        return self.pod["spec"]["containers"]

    @property
    def spec(self) -> dict[str, Any]:
        return self.pod["spec"]


class Manifests:
    """One rendered release: the documents of `helm template` plus the credentials Secret."""

    def __init__(self, documents: Iterable[dict[str, Any]], namespace: str) -> None:
        self.documents = list(documents)
        self.namespace = namespace

    def named(self, kind: str) -> dict[str, dict[str, Any]]:
        found = {}
        for doc in self.documents:
            if doc.get("kind") == kind:
                name = doc["metadata"]["name"]
                if name in found:
                    raise UnsupportedSpec(f"two {kind} objects named {name}")
                found[name] = doc
        return found

    def workloads(self) -> list[Workload]:
        """Every Deployment and Job, in the order rendered."""
        result = []
        for doc in self.documents:
            if doc.get("kind") in ("Deployment", "Job"):
                spec = doc["spec"]
                result.append(
                    Workload(doc["kind"], doc["metadata"]["name"], spec, spec["template"])
                )
            elif doc.get("kind") in ("Pod", "StatefulSet", "DaemonSet", "CronJob", "ReplicaSet"):
                raise UnsupportedSpec(
                    f"the chart renders a {doc['kind']}, which this runner does not run"
                )
        return result

    def service_addresses(self) -> dict[str, list[str]]:
        """DNS name -> addresses, for the Services without a selector (their Endpoints).

        Kubernetes resolves such a Service to its cluster IP and kube-proxy forwards to the
        Endpoints; with no kube-proxy the names resolve to the Endpoints addresses directly,
        which is only the same thing when each Service port equals its target port.
        """
        endpoints = self.named("Endpoints")
        names: dict[str, list[str]] = {}
        for name, service in self.named("Service").items():
            spec = service["spec"]
            if spec.get("selector"):
                continue
            for port in spec["ports"]:
                if port.get("targetPort", port["port"]) != port["port"]:
                    raise UnsupportedSpec(
                        f"Service {name} maps port {port['port']} to another port"
                    )
            if name not in endpoints:
                raise UnsupportedSpec(f"Service {name} has no selector and no Endpoints")
            addresses = [
                address["ip"]
                for subset in endpoints[name].get("subsets") or []
                for address in subset.get("addresses") or []
            ]
            for fqdn in (
                name,
                f"{name}.{self.namespace}",
                f"{name}.{self.namespace}.svc",
                f"{name}.{self.namespace}.svc.cluster.local",
            ):
                names[fqdn] = addresses
        return names


# --- environment -------------------------------------------------------------------------


def expand(text: str, *mappings: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion (k8s.io/kubernetes third_party/forked/golang/expansion).

    `$(NAME)` becomes NAME's value when a mapping defines it and stays as written otherwise;
    `$$` is an escaped `$`; any other `$` is kept. Only variables defined before the one being
    expanded are in the mappings, as kubelet builds the environment in order.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(next((m[name] for m in mappings if name in m), f"$({name})"))
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def container_env(container: Mapping[str, Any], manifests: Manifests) -> dict[str, str]:
    """The environment kubelet gives a container: envFrom first, then env in order."""
    config_maps = manifests.named("ConfigMap")
    secrets = manifests.named("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref, objects, read = source["configMapRef"], config_maps, lambda o: o.get("data") or {}
        elif "secretRef" in source:
            ref, objects, read = source["secretRef"], secrets, secret_data
        else:
            raise UnsupportedSpec(f"envFrom source {sorted(source)}")
        if ref["name"] not in objects:
            if ref.get("optional"):
                continue
            raise PodFailed(f"CreateContainerConfigError: {ref['name']} not found")
        for name, value in read(objects[ref["name"]]).items():
            # kubelet skips keys that are not valid variable names (and records an event).
            if ENV_NAME.match(prefix + name):
                env[prefix + name] = str(value)
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            ref, objects, read = source["secretKeyRef"], secrets, secret_data
        elif "configMapKeyRef" in source:
            ref, objects, read = (
                source["configMapKeyRef"],
                config_maps,
                lambda o: o.get("data") or {},
            )
        else:
            raise UnsupportedSpec(f"env {name}: valueFrom {sorted(source)}")
        values = read(objects[ref["name"]]) if ref["name"] in objects else None
        if values is None or ref["key"] not in values:
            if ref.get("optional"):
                continue
            raise PodFailed(
                f"CreateContainerConfigError: {name} needs key {ref['key']} of {ref['name']}"
            )
        env[name] = values[ref["key"]]
    return env


# --- quantities --------------------------------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity_bytes(value: str | int) -> int:
    text = str(value)
    for suffix, factor in {**_BINARY, **_DECIMAL}.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def quantity_cpus(value: str | int | float) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


# --- nodes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    host: str
    role: str
    taints: tuple[dict[str, str], ...]
    # The systemd unit that runs the application on this node, if any (roles/app_systemd:
    # growbin-api on API hosts, growbin-worker on worker hosts).
    app_unit: str | None

    @property
    def container(self) -> str:
        return f"{NODE_CONTAINER_PREFIX}{self.host}"


def node_map_hosts(path: Path = NODE_MAP) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = {}

    def walk(group: Mapping[str, Any]) -> None:
        hosts.update(group.get("hosts") or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(yaml.safe_load(path.read_text())["all"])
    return hosts


def load_nodes(path: Path = NODE_MAP) -> dict[str, Node]:
    """Node role -> node, from the node map."""
    nodes: dict[str, Node] = {}
    for host, hostvars in node_map_hosts(path).items():
        role = hostvars["growbin_node_role"]
        unit = (
            "growbin-api"
            if "growbin_api_domain" in hostvars
            else "growbin-worker"
            if "growbin_worker_queue" in hostvars
            else None
        )
        if role in nodes:
            raise UnsupportedSpec(f"node role {role} is on two hosts; placement would be a guess")
        nodes[role] = Node(host, role, tuple(hostvars.get("growbin_node_taints") or ()), unit)
    return nodes


def node_config_defaults() -> dict[str, Any]:
    return yaml.safe_load(NODE_CONFIG_DEFAULTS.read_text())


def place(workload: Workload, nodes: Mapping[str, Node], role_label: str) -> Node:
    """The node the scheduler would bind the pod to: nodeSelector, then taints."""
    selector = dict(workload.spec.get("nodeSelector") or {})
    if set(selector) != {role_label}:
        raise UnsupportedSpec(f"{workload.name}: nodeSelector {selector} is not just {role_label}")
    role = selector[role_label]
    if role not in nodes:
        raise PodFailed(f"{workload.name}: no node has {role_label}={role} (Pending)")
    node = nodes[role]
    tolerations = workload.spec.get("tolerations") or []
    for taint in node.taints:
        if taint["effect"] not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            raise PodFailed(f"{workload.name}: node {node.host} has untolerated taint {taint}")
    return node


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, str]) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint["key"]
    return toleration.get("key") == taint["key"] and toleration.get("value") == taint.get("value")


# --- docker ------------------------------------------------------------------------------


def docker(*args: str, timeout: float = DOCKER_SECONDS, env: Mapping[str, str] | None = None):
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env) if env is not None else None,
    )


def docker_ok(*args: str, timeout: float = DOCKER_SECONDS) -> str:
    done = docker(*args, timeout=timeout)
    if done.returncode != 0:
        raise PodFailed(f"docker {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout


def inspect(container: str) -> dict[str, Any]:
    return json.loads(docker_ok("inspect", container))[0]


@dataclass(frozen=True)
class HostDirectory:
    """A node directory a role provisions: node_config_host_directories."""

    path: str
    owner: int
    group: int
    mode: int
    node_roles: tuple[str, ...]


@dataclass
class ContainerRun:
    """One rendered container, translated into `docker run`.

    - image: through ``image_map`` (the one substitution, see the module docstring);
    - command/args: `command` replaces the image ENTRYPOINT (`--entrypoint` + leading
      arguments), `args` the image CMD; `$(VAR)` in them is expanded with the container's
      environment, as kubelet does;
    - env: envFrom + env resolved from the rendered ConfigMap and Secret
      (``container_env``); values reach docker through its environment (`-e NAME`), so no
      secret appears on a command line;
    - securityContext (container over pod): runAsUser/runAsGroup -> `--user`, fsGroup and
      supplementalGroups -> `--group-add`, readOnlyRootFilesystem -> `--read-only`,
      capabilities -> `--cap-drop`/`--cap-add`, allowPrivilegeEscalation false ->
      `--security-opt no-new-privileges`, privileged -> `--privileged`; seccomp RuntimeDefault
      is docker's default profile;
    - resources.limits: memory -> `--memory`, cpu -> `--cpus`;
    - volumes: emptyDir -> tmpfs of its sizeLimit (mode 0777 and exec, as kubelet's emptyDirs),
      hostPath -> a bind mount of the node directory (``HostDirectories``);
    - DNS: the network mode `container:` refuses `--add-host`, so the Services without a
      selector resolve through a generated /etc/hosts (their Endpoints addresses), bind-mounted
      read-only;
    - placement: `--network container:growbin-<host>` (see ``place``).
    """

    pod_name: str
    container: dict[str, Any]
    node: Node
    image: str
    env: dict[str, str]
    argv: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    entrypoint: str | None = None

    @property
    def name(self) -> str:
        return f"{POD_CONTAINER_PREFIX}{self.pod_name}-{self.container['name']}"


def _security(pod_ctx: Mapping[str, Any], ctx: Mapping[str, Any]) -> list[str]:
    known = {
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "fsGroup",
        "supplementalGroups",
        "seccompProfile",
        "readOnlyRootFilesystem",
        "allowPrivilegeEscalation",
        "privileged",
        "capabilities",
    }
    for name in {*pod_ctx, *ctx} - known:
        raise UnsupportedSpec(f"securityContext.{name}")
    merged = {**pod_ctx, **ctx}
    argv: list[str] = []
    user = merged.get("runAsUser")
    if user is None:
        raise UnsupportedSpec("no runAsUser: the image user would decide, unlike a pinned pod")
    if merged.get("runAsNonRoot") and int(user) == 0:
        raise PodFailed("CreateContainerConfigError: runAsNonRoot with runAsUser 0")
    group = merged.get("runAsGroup")
    argv += ["--user", f"{user}:{group}" if group is not None else str(user)]
    for extra in [pod_ctx.get("fsGroup"), *(pod_ctx.get("supplementalGroups") or [])]:
        if extra is not None:
            argv += ["--group-add", str(extra)]
    seccomp = merged.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        argv += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        raise UnsupportedSpec(f"seccompProfile {seccomp}")
    if merged.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    if merged.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    if merged.get("privileged"):
        argv.append("--privileged")
    capabilities = merged.get("capabilities") or {}
    for cap in capabilities.get("drop") or []:
        argv += ["--cap-drop", cap]
    for cap in capabilities.get("add") or []:
        argv += ["--cap-add", cap]
    return argv


class HostDirectories:
    """Node directories for hostPath volumes, as the roles (or kubelet) would leave them.

    A path the node container has as a mount (the local object store volume) is that mount:
    the node's own directory, as it is. Otherwise the directory would be in the node
    container's root filesystem, which docker cannot bind; a fresh one stands in for it: a path
    node_config provisions on the pod's node is created with that role's owner, group and mode.
    A `Directory` hostPath nobody provisions makes kubelet refuse the pod; for
    `DirectoryOrCreate` kubelet creates it as root:root 0755, and so does this.
    """

    def __init__(self, root: Path, provisioned: Iterable[HostDirectory]) -> None:
        self.root = root
        self.provisioned = list(provisioned)

    def prepare(self, node: Node, volume: Mapping[str, Any]) -> Path:
        path = volume["path"]
        kind = volume.get("type", "")
        for mount in inspect(node.container)["Mounts"]:
            if mount["Destination"] == path:
                return Path(mount["Source"])
        source = self.root / node.host / path.lstrip("/")
        spec = next(
            (d for d in self.provisioned if d.path == path and node.role in d.node_roles), None
        )
        if source.exists():
            shutil.rmtree(source)
        if spec is not None:
            source.mkdir(parents=True)
            os.chown(source, spec.owner, spec.group)
            source.chmod(spec.mode)
        elif kind == "DirectoryOrCreate":
            source.mkdir(parents=True, mode=0o755)
        elif kind == "Directory":
            raise PodFailed(
                f"hostPath {path} (type Directory) does not exist on {node.host}: no role "
                "provisions it there, kubelet refuses the pod"
            )
        else:
            raise UnsupportedSpec(f"hostPath {path} of type {kind or 'unset'}")
        return source


def translate(
    workload: Workload,
    manifests: Manifests,
    node: Node,
    image_map: Mapping[str, str],
    host_directories: HostDirectories,
    hosts_file: Path,
) -> list[ContainerRun]:
    spec = workload.spec
    known_pod = {
        "containers",
        "nodeSelector",
        "securityContext",
        "volumes",
        "automountServiceAccountToken",
        "enableServiceLinks",
        *IGNORED_POD_FIELDS,
    }
    for name in set(spec) - known_pod:
        raise UnsupportedSpec(f"{workload.name}: pod field {name}")
    if spec.get("automountServiceAccountToken", True):
        raise UnsupportedSpec(
            f"{workload.name}: mounts a ServiceAccount token (no API server here)"
        )
    if spec.get("enableServiceLinks", True):
        raise UnsupportedSpec(f"{workload.name}: Service links would add env this runner lacks")
    volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
    runs = []
    for container in workload.containers:
        known = {
            "image",
            "command",
            "args",
            "env",
            "envFrom",
            "securityContext",
            "resources",
            "volumeMounts",
            "workingDir",
            "startupProbe",
            "readinessProbe",
            *IGNORED_CONTAINER_FIELDS,
        }
        for name in set(container) - known:
            raise UnsupportedSpec(f"{workload.name}/{container['name']}: container field {name}")
        if container["image"] not in image_map:
            raise UnsupportedSpec(f"no local image for {container['image']}")
        env = container_env(container, manifests)
        run = ContainerRun(workload.name, container, node, image_map[container["image"]], env)
        command = [expand(a, env) for a in container.get("command") or []]
        args = [expand(a, env) for a in container.get("args") or []]
        if command:
            run.entrypoint, run.args = command[0], command[1:] + args
        else:
            run.args = args
        argv = [
            "--detach",
            "--name",
            run.name,
            "--label",
            f"{POD_LABEL}={workload.name}",
            "--network",
            f"container:{node.container}",
            "--stop-timeout",
            str(spec.get("terminationGracePeriodSeconds", 30)),
        ]
        argv += _security(spec.get("securityContext") or {}, container.get("securityContext") or {})
        limits = (container.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            argv += ["--memory", str(quantity_bytes(limits["memory"]))]
        if "cpu" in limits:
            argv += ["--cpus", str(quantity_cpus(limits["cpu"]))]
        if "workingDir" in container:
            argv += ["--workdir", container["workingDir"]]
        for mount in container.get("volumeMounts") or []:
            argv += _mount(workload, node, mount, volumes, host_directories)
        argv += ["--mount", f"type=bind,source={hosts_file},target=/etc/hosts,readonly"]
        for name in env:
            argv += ["--env", name]
        if run.entrypoint is not None:
            argv += ["--entrypoint", run.entrypoint]
        run.argv = [*argv, run.image, *run.args]
        runs.append(run)
    return runs


def _mount(
    workload: Workload,
    node: Node,
    mount: Mapping[str, Any],
    volumes: Mapping[str, Mapping[str, Any]],
    host_directories: HostDirectories,
) -> list[str]:
    for name in set(mount) - {"name", "mountPath", "readOnly"}:
        raise UnsupportedSpec(f"{workload.name}: volumeMount field {name}")
    volume = volumes[mount["name"]]
    target = mount["mountPath"]
    if "emptyDir" in volume:
        empty_dir = volume["emptyDir"] or {}
        if empty_dir.get("medium") not in (None, "", "Memory"):
            raise UnsupportedSpec(f"emptyDir medium {empty_dir['medium']}")
        # docker mounts tmpfs noexec unless told otherwise; an emptyDir is not.
        options = "mode=0777,exec"
        if "sizeLimit" in empty_dir:
            options += f",size={quantity_bytes(empty_dir['sizeLimit'])}"
        return ["--tmpfs", f"{target}:{options}"]
    if "hostPath" in volume:
        source = host_directories.prepare(node, volume["hostPath"])
        options = f"type=bind,source={source},target={target}"
        return ["--mount", options + (",readonly" if mount.get("readOnly") else "")]
    raise UnsupportedSpec(f"{workload.name}: volume {volume['name']} of kind {sorted(volume)}")


def hosts_file_text(manifests: Manifests) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for name, addresses in manifests.service_addresses().items():
        lines += [f"{address}\t{name}" for address in addresses]
    return "\n".join(lines) + "\n"


# --- probes ------------------------------------------------------------------------------

# Run in the node's network namespace, where kubelet's probes of a pod on that node start.
_HTTP_PROBE = """
import sys, urllib.error, urllib.request
try:
    status = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status
except urllib.error.HTTPError as exc:
    status = exc.code
print(status)
sys.exit(0 if 200 <= status < 400 else 1)
"""


def node_address(node: Node) -> str:
    networks = inspect(node.container)["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


def probe_once(run: ContainerRun, probe: Mapping[str, Any], address: str) -> tuple[bool, str]:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        get = probe["httpGet"]
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in run.container["ports"] if p.get("name") == port)
        scheme = get.get("scheme", "HTTP").lower()
        url = f"{scheme}://{get.get('host', address)}:{port}{get.get('path', '/')}"
        probe_argv = ["exec", run.node.container, "python3", "-c", _HTTP_PROBE, url, str(timeout)]
        try:
            done = docker(*probe_argv, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            return False, f"GET {url}: timed out"
        answer = done.stdout.strip() or done.stderr.strip().splitlines()[-1:]
        return done.returncode == 0, f"GET {url}: {answer}"
    if "exec" in probe:
        command = probe["exec"]["command"]
        try:
            done = docker("exec", run.name, *command, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            return False, f"exec {command}: timed out"
        if done.returncode in (126, 127):
            raise PodFailed(
                f"{run.name}: probe command {command} cannot run in the image: "
                f"{(done.stdout + done.stderr).strip()[-300:]}"
            )
        return done.returncode == 0, f"exec {command}: rc {done.returncode}"
    raise UnsupportedSpec(f"probe {sorted(probe)}")


@dataclass
class RunningContainer:
    run: ContainerRun
    id: str


class PodRunner:
    """Starts the rendered pods on their nodes and removes them again."""

    def __init__(
        self,
        manifests: Manifests,
        image_map: Mapping[str, str],
        nodes: Mapping[str, Node],
        role_label: str,
        host_directories: HostDirectories,
        workdir: Path,
    ) -> None:
        self.manifests = manifests
        self.image_map = image_map
        self.nodes = nodes
        self.role_label = role_label
        self.host_directories = host_directories
        self.hosts_file = workdir / "hosts"
        self.hosts_file.write_text(hosts_file_text(manifests))
        self.hosts_file.chmod(0o644)
        self.started: list[RunningContainer] = []

    def translate(self, workload: Workload) -> list[ContainerRun]:
        node = place(workload, self.nodes, self.role_label)
        return translate(
            workload, self.manifests, node, self.image_map, self.host_directories, self.hosts_file
        )

    def start(self, workload: Workload) -> list[RunningContainer]:
        running = []
        for run in self.translate(workload):
            # A container left by an interrupted earlier run of this module.
            label = docker(
                "inspect", "--format", f'{{{{index .Config.Labels "{POD_LABEL}"}}}}', run.name
            )
            if label.returncode == 0 and label.stdout.strip():
                docker("rm", "--force", run.name)
            environment = {"PATH": os.environ.get("PATH", ""), **run.env}
            if "DOCKER_HOST" in os.environ:
                environment["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
            done = docker("run", *run.argv, env=environment)
            if done.returncode != 0:
                raise PodFailed(f"{run.name}: docker run failed: {done.stderr.strip()}")
            container = RunningContainer(run, done.stdout.strip())
            self.started.append(container)
            running.append(container)
        return running

    def run_job(self, workload: Workload, budget: float) -> tuple[RunningContainer, int, str]:
        """Runs a Job's pod to completion: (container, exit code, logs).

        Bounded by activeDeadlineSeconds (or ``budget`` if shorter). A failed run is not
        retried as backoffLimit would: a deploy-init that needs a second attempt is a defect
        the test should show.
        """
        if workload.spec.get("restartPolicy") != "Never" or len(workload.containers) != 1:
            raise UnsupportedSpec(f"{workload.name}: only one-container Never-restart Jobs")
        (container,) = self.start(workload)
        deadline = min(budget, float(workload.owner.get("activeDeadlineSeconds") or budget))
        try:
            waited = docker("wait", container.id, timeout=deadline)
        except subprocess.TimeoutExpired as exc:
            raise PodFailed(f"{workload.name} ran longer than {deadline:.0f} s") from exc
        logs = docker("logs", container.id)
        return container, int(waited.stdout.strip()), logs.stdout + logs.stderr

    def wait_ready(self, containers: Iterable[RunningContainer], within: float) -> None:
        """Until every container passed its startupProbe, then its readinessProbe.

        Probes run as kubelet runs them: httpGet from the node's network namespace to the pod
        address (here the node's), exec inside the container. Polled every second rather than
        every periodSeconds, to be quick; bounded by ``within``.
        """
        pending = {
            c.id: (c, [p for p in ("startupProbe", "readinessProbe") if p in c.run.container])
            for c in containers
        }
        addresses = {c.run.node.host: node_address(c.run.node) for c, _ in pending.values()}
        deadline = time.monotonic() + within
        last: dict[str, str] = {}
        while pending:
            for cid, (container, probes) in list(pending.items()):
                state = inspect(cid)["State"]
                if not state["Running"]:
                    raise PodFailed(
                        f"{container.run.name} exited ({state['ExitCode']}):\n{self.logs(cid)}"
                    )
                while probes:
                    ok, detail = probe_once(
                        container.run,
                        container.run.container[probes[0]],
                        addresses[container.run.node.host],
                    )
                    last[cid] = f"{probes[0]}: {detail}"
                    if not ok:
                        break
                    probes.pop(0)
                if not probes:
                    del pending[cid]
            if not pending:
                return
            if time.monotonic() > deadline:
                report = "; ".join(f"{pending[c][0].run.name}: {last.get(c)}" for c in pending)
                raise PodFailed(f"not ready after {within:.0f} s: {report}")
            time.sleep(1.0)

    def logs(self, container_id: str, tail: int = 60) -> str:
        done = docker("logs", "--tail", str(tail), container_id)
        return done.stdout + done.stderr

    def remove_all(self) -> list[str]:
        """Removes every container this runner started; returns the errors, if any."""
        errors = []
        for container in reversed(self.started):
            done = docker("rm", "--force", "--volumes", container.id)
            if done.returncode != 0 and "No such container" not in done.stderr:
                errors.append(f"{container.run.name}: {done.stderr.strip()}")
        self.started.clear()
        return errors
