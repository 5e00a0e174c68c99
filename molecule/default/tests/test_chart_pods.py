"""The chart's own workloads run: what `helm template` renders for the local inventory, run as
rendered on the local platform, with the user journey passing through it.

The values and the credentials Secret come from the growbin_app role, rendered for
inventories/local by tests/kubernetes/render.yml; the chart renders them with the real helm.
pod_runner.py then runs the deploy-init Job and every Deployment from those manifests with the
production image built from this checkout, each pod in the network namespace of the node its
nodeSelector names, in place of that node's systemd unit. The journey goes through the edge,
so it reaches the pods exactly where it reached the units.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pod_runner as pr
import pytest
import yaml
from growbin_client import REPO, SEOUL, Platform, PlatformError, photo_of_a_cup
from growbin_nodes import VENV_BIN, Nodes

NAMESPACE = "growbin"
RELEASE = "growbin"
CHART = REPO / "charts" / "growbin"
HELM = REPO / ".cache" / "bin" / "helm"
RENDER_PLAYBOOK = REPO / "tests" / "kubernetes" / "render.yml"
LOCAL_INVENTORY = REPO / "inventories" / "local"
# The production image (app/Dockerfile), built from this checkout by `make image`'s script.
LOCAL_IMAGE = "growbin/app:chart-pods"
BUILD_SECONDS = 600
RENDER_SECONDS = 120
# Within the Job's own activeDeadlineSeconds, whichever is shorter.
JOB_SECONDS = 180
READY_SECONDS = 150
SERVING_AGAIN_SECONDS = 120
SCAN_PROGRESS = ["queued", "processing", "stored", "classifying", "completed"]


def clean_env() -> dict[str, str]:
    """The project's own Ansible configuration, not the one Molecule's verifier runs under."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "MOLECULE_"))
    }
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run(command: list[str], what: str, timeout: float) -> str:
    done = subprocess.run(
        command,
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"{what} failed (rc {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@dataclass(frozen=True)
class Release:
    values: dict[str, Any]
    manifests: pr.Manifests


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The role's values and Secret for the local inventory, rendered by the chart."""
    out = tmp_path_factory.mktemp("chart-render")
    run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(LOCAL_INVENTORY),
            str(RENDER_PLAYBOOK),
            "-e",
            f"render_dir={out}",
            # The plays render on the controller; the local inventory's docker connection
            # would otherwise write the files inside the node containers.
            "-e",
            "ansible_connection=local",
        ],
        "the render playbook",
        RENDER_SECONDS,
    )
    values_file, secret_file = out / "growbin-values.yaml", out / "growbin-secret.yaml"
    rendered = run(
        [str(HELM), "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values_file)],
        "helm template",
        RENDER_SECONDS,
    )
    secret = yaml.safe_load(secret_file.read_text())
    assert secret["kind"] == "Secret" and secret["apiVersion"] == "v1", secret_file
    documents = pr.load_documents(rendered, secret_file.read_text())
    return Release(yaml.safe_load(values_file.read_text()), pr.Manifests(documents, NAMESPACE))


# What the image is built from: a tag named after their digest is an image of this checkout.
IMAGE_INPUTS = ("app", "scripts/build-image.sh", "pyproject.toml")


def image_tag() -> str:
    digest = hashlib.sha256()
    for top in IMAGE_INPUTS:
        root = REPO / top
        paths = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return f"{LOCAL_IMAGE}-{digest.hexdigest()[:16]}"


@pytest.fixture(scope="module")
def app_image() -> str:
    """The production image of this checkout, built unless this checkout's tag exists."""
    tag = image_tag()
    if pr.docker("image", "inspect", tag).returncode == 0:
        return tag
    built = run(
        ["bash", str(REPO / "scripts" / "build-image.sh"), tag], "the image build", BUILD_SECONDS
    )
    assert built.strip().splitlines()[-1] == tag, built
    return tag


def image_map(release: Release, local_image: str) -> dict[str, str]:
    """The one substitution: the chart's image reference -> the image built here."""
    references = {
        container["image"]
        for workload in release.manifests.workloads()
        for container in workload.containers
    }
    repository = release.values["image"]["repository"]
    assert len(references) == 1, f"one image runs every process, the chart renders {references}"
    (reference,) = references
    assert re.fullmatch(rf"{re.escape(repository)}[:@].+", reference), reference
    return {reference: local_image}


def host_directories() -> list[pr.HostDirectory]:
    """node_config_host_directories: what the role provisions for hostPath volumes."""
    entries = pr.node_config_defaults().get("node_config_host_directories") or []
    return [
        pr.HostDirectory(
            path=entry["path"],
            owner=int(entry["owner"]),
            group=int(entry["group"]),
            mode=int(str(entry["mode"]), 8),
            node_roles=tuple(entry["node_roles"]),
        )
        for entry in entries
    ]


@dataclass
class ChartPods:
    runner: pr.PodRunner
    jobs: dict[str, tuple[pr.RunningContainer, int, str]]
    pods: list[pr.RunningContainer]
    stopped_units: list[tuple[pr.Node, str]]


def wait_until_serving(platform: Platform, within: float) -> None:
    """Every domain answers a real read through the edge (a fresh account needs auth up)."""
    deadline = time.monotonic() + within
    while True:
        try:
            user = platform.new_user()
            break
        except (PlatformError, httpx.TransportError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    user.wait_until_serving(within=max(deadline - time.monotonic(), 10.0))


@pytest.fixture(scope="module")
def chart_pods(
    release: Release,
    app_image: str,
    nodes: Nodes,
    platform: Platform,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ChartPods]:
    """deploy-init, then every Deployment, in place of the nodes' systemd units.

    Afterwards (always) the pod containers are removed, the units started again, and the
    platform serves every domain through the edge again before the next module runs.
    """
    workdir = tmp_path_factory.mktemp("chart-pods")
    runner = pr.PodRunner(
        release.manifests,
        image_map(release, app_image),
        pr.load_nodes(),
        pr.node_config_defaults()["node_config_role_label"],
        pr.HostDirectories(workdir / "nodes", host_directories()),
        workdir,
    )
    workloads = release.manifests.workloads()
    state = ChartPods(runner, {}, [], [])
    try:
        # A pre-install hook: Helm starts the release only after it succeeded.
        for job in (w for w in workloads if w.kind == "Job"):
            container, code, logs = runner.run_job(job, JOB_SECONDS)
            state.jobs[job.name] = (container, code, logs)
            assert code == 0, f"the {job.name} Job exited {code}:\n{logs[-3000:]}"
        deployments = [w for w in workloads if w.kind == "Deployment"]
        for workload in deployments:
            node = pr.place(workload, runner.nodes, runner.role_label)
            if node.app_unit and nodes.is_active(node.host, node.app_unit):
                nodes.stop(node.host, node.app_unit)
                state.stopped_units.append((node, node.app_unit))
        for workload in deployments:
            state.pods += runner.start(workload)
        runner.wait_ready(state.pods, READY_SECONDS)
        yield state
    finally:
        errors = runner.remove_all()
        for node, unit in state.stopped_units:
            nodes.start(node.host, unit)
        if state.stopped_units:
            wait_until_serving(platform, SERVING_AGAIN_SECONDS)
        assert not errors, errors


def test_the_journey_passes_through_the_chart_pods(
    chart_pods: ChartPods, platform: Platform, nodes: Nodes
) -> None:
    """Sign up, log in, scan, follow, result, history, chat about the scan, nearby."""
    user = platform.new_user()

    accepted = user.upload_photo(photo_of_a_cup())
    assert accepted.status_code == 202, accepted.text
    scan_id = accepted.json()["id"]
    progress = user.follow_scan(scan_id)
    assert progress.names == SCAN_PROGRESS, progress.events
    scan = user.wait_for_scan(scan_id, within=30)
    assert scan["status"] == "completed", scan
    assert scan["result"] == progress.events[-1].data["result"]
    assert scan["result"]["steps"], scan

    history = user.history()
    assert history.status_code == 200, history.text
    assert [item["id"] for item in history.json()["items"]] == [scan_id]

    created = user.start_conversation("my cup")
    assert created.status_code == 201, created.text
    answer = user.ask(created.json()["id"], "How do I throw this away?", scan_id=scan_id)
    assert answer.names[0] == "start" and answer.names[-1] == "done", answer.names
    assert f"scan:{scan_id}" in [source["ref"] for source in answer.events[0].data["sources"]]
    assert answer.events[-1].data["status"] == "complete"

    nearby = platform.nearby(*SEOUL)
    assert nearby.status_code == 200, nearby.text
    assert nearby.json()["items"], "no drop-off point near Seoul City Hall"

    # Nothing else could have answered: the nodes' units were stopped all along and every
    # pod still runs in its node's network namespace.
    for node, unit in chart_pods.stopped_units:
        assert not nodes.is_active(node.host, unit), f"{unit} runs again on {node.host}"
    for pod in chart_pods.pods:
        state = pr.inspect(pod.id)
        assert state["State"]["Running"], (
            f"{pod.run.name} stopped:\n{chart_pods.runner.logs(pod.id)}"
        )
        node_id = pr.inspect(pod.run.node.container)["Id"]
        assert state["HostConfig"]["NetworkMode"] == f"container:{node_id}", pod.run.name


def test_every_api_domain_and_worker_queue_runs_as_a_pod(chart_pods: ChartPods) -> None:
    """The units the pods replaced are exactly the application's nodes: none left running."""
    pods = {pod.run.node.host: pod.run.container["args"] for pod in chart_pods.pods}
    hosts = pr.node_map_hosts()
    expected = {
        host: ["api", vars_["growbin_api_domain"]]
        if "growbin_api_domain" in vars_
        else ["worker", vars_["growbin_worker_queue"]]
        for host, vars_ in hosts.items()
        if "growbin_api_domain" in vars_ or "growbin_worker_queue" in vars_
    }
    assert pods == expected


def test_deploy_init_migrated_every_database_and_seeded(chart_pods: ChartPods) -> None:
    assert chart_pods.jobs, "the chart renders no Job"
    for name, (container, code, logs) in chart_pods.jobs.items():
        assert code == 0, f"{name} exited {code}:\n{logs}"
        # It migrates the databases it holds credentials for (one line per domain).
        domains = [
            m.group(1).lower()
            for var in container.run.env
            if (m := re.fullmatch(r"GROWBIN_DATABASE__([A-Z]+)__PASSWORD", var))
        ]
        assert domains, f"{name} receives no database password"
        for domain in domains:
            assert re.search(
                rf"^{domain}: (applied \S+ -> \S+|at \S+, nothing to apply)$", logs, re.MULTILINE
            ), f"no migration line for {domain}:\n{logs}"
        assert re.search(r"^recycling: \S.*$", logs, re.MULTILINE), f"no seed line:\n{logs}"


def process_status(container_id: str) -> dict[str, str]:
    status = pr.docker_ok("exec", container_id, "cat", "/proc/1/status")
    return dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)


def process_env(container_id: str) -> dict[str, str]:
    raw = pr.docker_ok("exec", container_id, "cat", "/proc/1/environ")
    return dict(item.split("=", 1) for item in raw.split("\0") if item)


def process_argv(container_id: str) -> list[str]:
    return pr.docker_ok("exec", container_id, "cat", "/proc/1/cmdline").split("\0")[:-1]


def expected_security(workload_spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    return {
        **(workload_spec.get("securityContext") or {}),
        **(container.get("securityContext") or {}),
    }


def test_the_pods_run_exactly_as_rendered(chart_pods: ChartPods, app_image: str) -> None:
    """docker's view and PID 1's own view of each container against the rendered spec."""
    image = pr.inspect(app_image)["Config"]
    image_env = {item.split("=", 1)[0] for item in image["Env"]}
    problems: list[str] = []
    by_name = {w.name: w for w in chart_pods.runner.manifests.workloads()}
    job_containers = [container for container, _, _ in chart_pods.jobs.values()]
    for pod in [*job_containers, *chart_pods.pods]:
        name = pod.run.name
        workload = by_name[pod.run.pod_name]
        rendered = pod.run.container
        security = expected_security(workload.spec, rendered)
        uid, gid = security["runAsUser"], security["runAsGroup"]
        info = pr.inspect(pod.id)
        config, host = info["Config"], info["HostConfig"]

        if config["User"] != f"{uid}:{gid}":
            problems.append(f"{name}: user {config['User']!r}, rendered {uid}:{gid}")
        if host["ReadonlyRootfs"] is not bool(security.get("readOnlyRootFilesystem")):
            problems.append(f"{name}: read-only root {host['ReadonlyRootfs']}")
        if sorted(host["CapDrop"] or []) != sorted(security["capabilities"]["drop"]):
            problems.append(f"{name}: dropped capabilities {host['CapDrop']}")
        if security.get("allowPrivilegeEscalation") is False and "no-new-privileges" not in (
            host["SecurityOpt"] or []
        ):
            problems.append(f"{name}: privilege escalation allowed")
        if "command" not in rendered and config["Entrypoint"] != image["Entrypoint"]:
            problems.append(
                f"{name}: entrypoint {config['Entrypoint']}, image {image['Entrypoint']}"
            )
        if config["Cmd"] != rendered["args"]:
            problems.append(f"{name}: args {config['Cmd']}, rendered {rendered['args']}")
        if name in {c.run.name for c in job_containers}:
            continue  # the Job's process has exited: only docker's record remains

        # PID 1 itself: the growbin command with the rendered args, as the rendered user,
        # without capabilities or a way to gain privileges, under a read-only root.
        argv = process_argv(pod.id)
        if Path(argv[1]).name != image["Entrypoint"][0] or argv[2:] != rendered["args"]:
            problems.append(f"{name}: PID 1 runs {argv}")
        status = process_status(pod.id)
        if status["Uid"].split() != [str(uid)] * 4 or status["Gid"].split() != [str(gid)] * 4:
            problems.append(f"{name}: PID 1 uid {status['Uid']} gid {status['Gid']}")
        if int(status["CapEff"], 16) or int(status["CapBnd"], 16):
            problems.append(f"{name}: capabilities eff {status['CapEff']} bnd {status['CapBnd']}")
        if status["NoNewPrivs"].strip() != "1":
            problems.append(f"{name}: no_new_privs is {status['NoNewPrivs']}")
        wrote = pr.docker("exec", pod.id, "touch", "/growbin-root-write-probe")
        if wrote.returncode == 0 or "Read-only file system" not in wrote.stderr:
            problems.append(f"{name}: the root filesystem is writable ({wrote.stderr.strip()})")

        # Exactly the rendered environment (names only in messages: values hold secrets).
        env = process_env(pod.id)
        expected_env = pr.container_env(rendered, chart_pods.runner.manifests)
        extra = set(env) - set(expected_env) - image_env - pr.RUNTIME_ENV
        missing = set(expected_env) - set(env)
        differ = {k for k in set(expected_env) & set(env) if env[k] != expected_env[k]}
        if extra or missing or differ:
            problems.append(f"{name}: env extra {extra}, missing {missing}, different {differ}")

        # Every volume mount where the spec puts it, writable by the process.
        for mount in rendered.get("volumeMounts") or []:
            probe = f"{mount['mountPath']}/.growbin-write-probe"
            wrote = pr.docker("exec", pod.id, "sh", "-c", f"touch {probe} && rm {probe}")
            if wrote.returncode != 0:
                problems.append(
                    f"{name}: cannot write {mount['mountPath']}: {wrote.stderr.strip()}"
                )
    assert not problems, "\n".join(problems)


def test_every_host_path_is_provisioned_by_node_config(release: Release) -> None:
    """Each rendered hostPath is created by node_config on the pod's node, owned by its user;
    the filesystem image store is instead one directory the nodes share (here: one volume)."""
    provisioned = host_directories()
    assert provisioned, "roles/node_config/defaults/main.yml has no node_config_host_directories"
    nodes = pr.load_nodes()
    role_label = pr.node_config_defaults()["node_config_role_label"]
    image_store = release.values["objectStore"]["hostPath"]
    image_store_sources = set()
    checked = 0
    for workload in release.manifests.workloads():
        node = pr.place(workload, nodes, role_label)
        for volume in workload.spec.get("volumes") or []:
            if "hostPath" not in volume:
                continue
            checked += 1
            path = volume["hostPath"]["path"]
            if path == image_store:
                mounts = pr.inspect(node.container)["Mounts"]
                sources = {m["Source"] for m in mounts if m["Destination"] == path}
                assert sources, f"{workload.name}: {node.host} has no shared {path}"
                image_store_sources |= sources
                continue
            entry = next((d for d in provisioned if d.path == path), None)
            assert entry, f"{workload.name}: hostPath {path} is not in node_config_host_directories"
            assert node.role in entry.node_roles, f"{path} is not provisioned on {node.role}"
            for container in workload.containers:
                security = expected_security(workload.spec, container)
                assert (entry.owner, entry.group) == (security["runAsUser"], security["runAsGroup"])
    assert checked, "the local values render no hostPath volume: nothing was checked"
    assert len(image_store_sources) <= 1, f"the image store is not shared: {image_store_sources}"
