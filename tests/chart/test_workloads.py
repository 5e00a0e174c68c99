"""Pods: placement on the node map, security, probes, resources, labels, hooks, secrets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import (
    LOCAL_VALUES,
    RELEASE,
    REPO_ROOT,
    Rendered,
    helm_template,
    node_map,
    render,
    run_helm,
    values_args,
    values_of,
)

ROLE_LABEL = "growbin.app/role"
API_DOMAINS = ("auth", "users", "scans", "recycling", "locations", "chat")
WORKER_QUEUES = ("storage", "ai")
# Databases a service opens besides its own (chat grounds answers in the knowledge base and
# the user's scans; both workers write scan results only).
DATABASES_NEEDED = {
    "chat": ["chat", "recycling", "scans"],
    "worker-storage": ["scans"],
    "worker-ai": ["scans"],
}
COMMON_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}

# Node capacity (2 vCPU on every t3 size) and what is not ours to use on each node:
# kubelet + containerd + OS (~300 MiB, ~100m), calico-node (~150 MiB, 250m request),
# kube-proxy (~30 MiB). Infra nodes also carry their natively-run service.
INSTANCE_CAPACITY = {  # type -> (millicores, MiB)
    "t3.micro": (2000, 1024),
    "t3.small": (2000, 2048),
    "t3.medium": (2000, 4096),
    "t3.large": (2000, 8192),
}
NODE_OVERHEAD = (350, 480)
NATIVE_SERVICE_MEMORY = {
    "infra-postgresql": 2560,
    "infra-redis": 1024,
    "infra-rabbitmq": 1024,
    "infra-monitoring": 4096,
}


def cpu_millicores(quantity: str | int | float) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def memory_mib(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity).groups()
    return {"Ki": int(number) // 1024, "Mi": int(number), "Gi": int(number) * 1024}[unit]


def containers(template: dict) -> list[dict]:
    return template["spec"]["containers"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_every_pod_is_pinned_to_a_node_map_role_with_exact_tolerations(
    rendered: Rendered,
) -> None:
    roles = node_map()
    workloads = rendered.pod_templates()
    assert workloads
    for owner, template in workloads:
        spec = template["spec"]
        name = owner["metadata"]["name"]
        assert set(spec["nodeSelector"]) == {ROLE_LABEL}, name
        role = spec["nodeSelector"][ROLE_LABEL]
        assert role in roles, f"{name}: role {role} is not in the node map"
        expected = [
            {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
            for t in roles[role]["taints"]
        ]
        assert spec.get("tolerations", []) == expected, name


def test_production_deploy_init_tolerates_the_postgresql_node() -> None:
    job = render("production").get("Job", f"{RELEASE}-deploy-init")
    spec = job["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {ROLE_LABEL: "infra-postgresql"}
    assert spec["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "postgresql", "effect": "NoSchedule"}
    ]


def test_api_and_worker_pods_land_on_their_own_nodes() -> None:
    rendered = render("local")
    expected = {
        "auth": "api-auth",
        "users": "api-userinfo",
        "scans": "api-waste",
        "recycling": "api-recycle-info",
        "locations": "api-location",
        "chat": "api-chat-llm",
        "worker-storage": "worker-storage",
        "worker-ai": "worker-ai",
    }
    for suffix, role in expected.items():
        deployment = rendered.get("Deployment", f"{RELEASE}-{suffix}")
        assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {ROLE_LABEL: role}


def test_pods_run_as_non_root_with_read_only_root_and_no_capabilities(
    rendered: Rendered,
) -> None:
    for owner, template in rendered.pod_templates():
        name = owner["metadata"]["name"]
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in containers(template):
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") == "tmp", f"{name}: read-only root needs a writable /tmp"


def test_workers_have_a_writable_wal_volume_matching_the_setting(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        container = containers(deployment["spec"]["template"])[0]
        if container["args"][0] != "worker":
            continue
        wal_path = env_of(container)["GROWBIN_WORKER__WAL_PATH"]["value"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert wal_path.startswith(mounts["wal"] + "/")


def test_production_storage_wal_survives_pod_replacement() -> None:
    deployment = render("production").get("Deployment", f"{RELEASE}-worker-storage")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    # Directory: kubelet must not create it (as root:root 0755, unwritable for the pod).
    assert volumes["wal"]["hostPath"] == {"path": "/var/lib/growbin/wal", "type": "Directory"}


NODE_CONFIG_DEFAULTS = REPO_ROOT / "roles" / "node_config" / "defaults" / "main.yml"


def _unprovisioned_host_paths(rendered: Rendered) -> list[str]:
    """hostPath volumes no node_config_host_directories entry creates on the pod's node with
    the pod's user as owner."""
    directories = yaml.safe_load(NODE_CONFIG_DEFAULTS.read_text()).get(
        "node_config_host_directories"
    )
    assert directories, f"{NODE_CONFIG_DEFAULTS} defines no node_config_host_directories"
    provisioned = {d["path"]: d for d in directories}
    problems = []
    for owner, template in rendered.pod_templates():
        pod = template["spec"]
        role = pod["nodeSelector"][ROLE_LABEL]
        for volume in pod.get("volumes", []):
            if "hostPath" not in volume:
                continue
            path = volume["hostPath"]["path"]
            name = f"{owner['metadata']['name']}: {path}"
            directory = provisioned.get(path)
            if volume["hostPath"]["type"] != "Directory":
                problems.append(f"{name} may be created by kubelet as root")
            elif directory is None:
                problems.append(f"{name} is created by no role")
            elif role not in directory["node_roles"]:
                problems.append(f"{name} is not provisioned on {role} nodes")
            elif (int(directory["owner"]), int(directory["group"])) != (
                pod["securityContext"]["runAsUser"],
                pod["securityContext"]["runAsGroup"],
            ):
                problems.append(f"{name} is owned by {directory['owner']}, not the pod's user")
    return problems


@pytest.mark.parametrize("values_set", ["local", "production", "minimal", "nginx"])
def test_every_host_path_is_provisioned_for_the_pod(values_set: str) -> None:
    """A hostPath of type Directory must already exist on the pod's node, owned by the pod's
    user: node_config_host_directories (roles/node_config) is what creates it."""
    assert _unprovisioned_host_paths(render(values_set)) == []


def test_an_unprovisioned_host_path_is_reported(tmp_path: Path) -> None:
    """Guards the test above: a journal directory node_config does not create."""
    override = tmp_path / "ai-wal.yaml"
    override.write_text(
        yaml.safe_dump({"workers": {"ai": {"wal": {"hostPath": "/var/lib/growbin/elsewhere"}}}})
    )
    rendered = Rendered(
        "ai-wal", tuple(helm_template("-f", str(LOCAL_VALUES), "-f", str(override)))
    )
    assert _unprovisioned_host_paths(rendered) == [
        f"{RELEASE}-worker-ai: /var/lib/growbin/elsewhere is created by no role"
    ]
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump({"workers": {"ai": {"nodeRole": "api-auth"}}}))
    rendered = Rendered(
        "moved",
        tuple(
            helm_template(
                "-f",
                str(LOCAL_VALUES),
                "-f",
                str(moved),
                "--set",
                "workers.ai.wal.hostPath=/var/lib/growbin/wal",
            )
        ),
    )
    assert _unprovisioned_host_paths(rendered) == [
        f"{RELEASE}-worker-ai: /var/lib/growbin/wal is not provisioned on api-auth nodes"
    ]
    rendered = Rendered(
        "uid",
        tuple(
            helm_template(
                "-f",
                str(LOCAL_VALUES),
                "--set",
                "runAsUser=10002",
                "--set",
                "workers.storage.wal.hostPath=/var/lib/growbin/wal",
            )
        ),
    )
    assert _unprovisioned_host_paths(rendered) == [
        f"{RELEASE}-worker-storage: /var/lib/growbin/wal is owned by 10001, not the pod's user"
    ]


def _image_store_mounts(rendered: Rendered) -> dict[str, tuple[str, dict]]:
    """Deployment or Job -> (mount path, volume) of its `objects` volume, where it has one."""
    mounts = {}
    for owner, template in rendered.pod_templates():
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for container in containers(template):
            for mount in container.get("volumeMounts", []):
                if mount["name"] == "objects":
                    mounts[owner["metadata"]["name"]] = (mount["mountPath"], volumes["objects"])
    return mounts


def _render_with(tmp_path: Path, name: str, overrides: dict) -> subprocess.CompletedProcess[str]:
    override = tmp_path / f"{name}.yaml"
    override.write_text(yaml.safe_dump(overrides))
    return run_helm(
        "template",
        RELEASE,
        str(REPO_ROOT / "charts" / "growbin"),
        "-f",
        str(LOCAL_VALUES),
        "-f",
        str(override),
    )


def test_the_filesystem_image_store_is_mounted_where_images_are_handled(tmp_path: Path) -> None:
    """The scan API and both workers see the shared directory at GROWBIN_STORAGE__ROOT, as the
    systemd units do; nothing else mounts it. With s3 (every CI values set) nobody does."""
    for values_set in ("local", "production", "minimal", "nginx"):
        assert _image_store_mounts(render(values_set)) == {}, values_set
    done = _render_with(
        tmp_path,
        "filesystem",
        {
            "settings": {
                "GROWBIN_STORAGE__BACKEND": "filesystem",
                "GROWBIN_STORAGE__ROOT": "/srv/growbin/images",
            },
            "objectStore": {"hostPath": "/mnt/growbin-images"},
        },
    )
    assert done.returncode == 0, done.stderr
    rendered = Rendered("filesystem", tuple(d for d in yaml.safe_load_all(done.stdout) if d))
    volume = {"name": "objects", "hostPath": {"path": "/mnt/growbin-images", "type": "Directory"}}
    assert _image_store_mounts(rendered) == {
        f"{RELEASE}-{name}": ("/srv/growbin/images", volume)
        for name in ("scans", "worker-storage", "worker-ai")
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"settings": {"GROWBIN_STORAGE__BACKEND": "filesystem"}},
            "api.scans stores scan images on the filesystem backend but objectStore.hostPath "
            "is empty",
        ),
        (
            {"objectStore": {"hostPath": "/mnt/growbin-images"}},
            "objectStore.hostPath (/mnt/growbin-images) is set but api.scans uses the s3 backend",
        ),
    ],
    ids=["filesystem-without-directory", "directory-with-s3"],
)
def test_the_image_store_backend_and_directory_must_agree(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    done = _render_with(tmp_path, "store", overrides)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_production_renders_a_host_path() -> None:
    """Guards the test above: the production values do use the WAL hostPath."""
    template = render("production").get("Deployment", f"{RELEASE}-worker-storage")["spec"]
    assert any("hostPath" in v for v in template["template"]["spec"]["volumes"])


def test_api_probes_use_health_and_ready(rendered: Rendered) -> None:
    apis = [
        d
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["labels"].get("growbin.app/tier") == "api"
    ]
    assert apis
    for deployment in apis:
        container = containers(deployment["spec"]["template"])[0]
        assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_workers_probe_and_shut_down_gracefully(rendered: Rendered) -> None:
    workers = [
        d
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["labels"].get("growbin.app/tier") == "worker"
    ]
    for deployment in workers:
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        queue = container["args"][1]
        assert container["livenessProbe"]["exec"]["command"] == ["growbin", "worker-ping", queue]
        assert container["startupProbe"]["exec"]["command"] == ["growbin", "worker-ping", queue]
        assert pod["terminationGracePeriodSeconds"] >= 60


def test_entry_points_are_chosen_by_arguments() -> None:
    """The image's ENTRYPOINT is `growbin`: containers pass only its arguments, and every
    option comes from the settings (no `command:` override, no server flags)."""
    rendered = render("local")
    for domain in API_DOMAINS:
        container = containers(
            rendered.get("Deployment", f"{RELEASE}-{domain}")["spec"]["template"]
        )[0]
        assert container["args"] == ["api", domain]
    for queue in WORKER_QUEUES:
        container = containers(
            rendered.get("Deployment", f"{RELEASE}-worker-{queue}")["spec"]["template"]
        )[0]
        assert container["args"] == ["worker", queue]
    job = rendered.get("Job", f"{RELEASE}-deploy-init")
    assert containers(job["spec"]["template"])[0]["args"] == ["deploy-init"]
    for owner, template in rendered.pod_templates():
        for container in containers(template):
            assert "command" not in container, owner["metadata"]["name"]


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for owner, template in rendered.pod_templates():
        for container in containers(template):
            resources = container["resources"]
            name = owner["metadata"]["name"]
            for section in ("requests", "limits"):
                assert set(resources[section]) == {"cpu", "memory"}, name
            assert cpu_millicores(resources["requests"]["cpu"]) <= cpu_millicores(
                resources["limits"]["cpu"]
            ), name
            assert memory_mib(resources["requests"]["memory"]) <= memory_mib(
                resources["limits"]["memory"]
            ), name


def _max_replicas(rendered: Rendered, deployment: dict) -> int:
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]:
            return hpa["spec"]["maxReplicas"]
    return deployment["spec"]["replicas"]


@pytest.mark.parametrize("values_set", ["local", "production", "minimal"])
def test_resources_fit_the_node_sizes(values_set: str) -> None:
    """At full scale plus one rolling-update surge pod (and the deploy-init Job running
    alongside), the requests on each node fit what the node has left."""
    rendered = render(values_set)
    roles = node_map()
    demand: dict[str, list[int]] = {}
    for owner, template in rendered.pod_templates():
        role = template["spec"]["nodeSelector"][ROLE_LABEL]
        requests = containers(template)[0]["resources"]["requests"]
        limits = containers(template)[0]["resources"]["limits"]
        pods = 1 if owner["kind"] == "Job" else _max_replicas(rendered, owner) + 1
        cpu, memory = INSTANCE_CAPACITY[roles[role]["instance_type"]]
        budget_cpu = cpu - NODE_OVERHEAD[0]
        budget_memory = memory - NODE_OVERHEAD[1] - NATIVE_SERVICE_MEMORY.get(role, 0)
        assert memory_mib(limits["memory"]) <= budget_memory, owner["metadata"]["name"]
        assert cpu_millicores(limits["cpu"]) <= cpu, owner["metadata"]["name"]
        used = demand.setdefault(role, [0, 0, budget_cpu, budget_memory])
        used[0] += pods * cpu_millicores(requests["cpu"])
        used[1] += pods * memory_mib(requests["memory"])
    assert demand
    for role, (cpu_used, memory_used, budget_cpu, budget_memory) in demand.items():
        assert cpu_used <= budget_cpu, f"{role}: {cpu_used}m requested, {budget_cpu}m free"
        assert memory_used <= budget_memory, (
            f"{role}: {memory_used}Mi requested, {budget_memory}Mi free"
        )


def test_every_object_carries_the_standard_labels(rendered: Rendered) -> None:
    for doc in rendered.docs:
        labels = doc["metadata"]["labels"]
        for key in COMMON_LABELS[:2] + COMMON_LABELS[3:]:
            assert key in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks {key}"
        assert labels["app.kubernetes.io/part-of"] == "growbin"
    for owner, template in rendered.pod_templates():
        for key in COMMON_LABELS:
            assert key in template["metadata"]["labels"], owner["metadata"]["name"]


def test_selectors_use_only_immutable_identity_labels(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        assert set(deployment["spec"]["selector"]["matchLabels"]) == SELECTOR_KEYS
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        assert set(pdb["spec"]["selector"]["matchLabels"]) == SELECTOR_KEYS


def test_autoscalers_and_budgets_target_existing_deployments(rendered: Rendered) -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "the HPA owns the replica count"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        matches = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1
        # A budget must never block a node drain of a single-replica service.
        assert "minAvailable" not in pdb["spec"]
        assert pdb["spec"]["maxUnavailable"] >= 1


def test_default_scaling_covers_api_and_workers() -> None:
    rendered = render("local")
    targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in rendered.of_kind("HorizontalPodAutoscaler")
    }
    expected = {f"{RELEASE}-{d}" for d in API_DOMAINS} | {
        f"{RELEASE}-worker-{q}" for q in WORKER_QUEUES
    }
    assert targets == expected
    assert {p["metadata"]["name"] for p in rendered.of_kind("PodDisruptionBudget")} == expected


def test_minimal_values_drop_optional_objects() -> None:
    rendered = render("minimal")
    kinds = {d["kind"] for d in rendered.docs}
    assert not kinds & {
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
    }
    names = {d["metadata"]["name"] for d in rendered.of_kind("Deployment")}
    assert names == {f"{RELEASE}-auth", f"{RELEASE}-recycling"}
    for deployment in rendered.of_kind("Deployment"):
        assert deployment["spec"]["replicas"] == 1


# --- deploy-init hook -----------------------------------------------------------------


def _hook(doc: dict) -> tuple[set[str], int]:
    annotations = doc["metadata"].get("annotations", {})
    events = set(filter(None, annotations.get("helm.sh/hook", "").split(",")))
    return events, int(annotations.get("helm.sh/hook-weight", "0"))


@pytest.mark.parametrize("values_set", ["local", "production", "managed-secret"])
def test_deploy_init_job_runs_before_install_and_upgrade(values_set: str) -> None:
    """`growbin deploy-init` (migrate + seed) runs before new code starts, with the
    credentials of every domain, and everything it reads exists before it."""
    rendered = render(values_set)
    job = rendered.get("Job", f"{RELEASE}-deploy-init")
    events, job_weight = _hook(job)
    assert events == {"pre-install", "pre-upgrade"}
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["activeDeadlineSeconds"] > 0
    (container,) = pod["containers"]
    assert container["args"] == ["deploy-init"]

    # Hooks run before the release's objects exist: its ServiceAccount and ConfigMap are
    # hooks of lower weight, and it reaches the data services by address.
    service_account = rendered.get("ServiceAccount", pod["serviceAccountName"])
    sa_events, sa_weight = _hook(service_account)
    assert sa_events == events and sa_weight < job_weight
    (source,) = container["envFrom"]
    config = rendered.get("ConfigMap", source["configMapRef"]["name"])
    config_events, config_weight = _hook(config)
    assert config_events == events and config_weight < job_weight
    assert config["data"] == rendered.get("ConfigMap", RELEASE)["data"]
    values = values_of(values_set)
    env = env_of(container)
    assert (
        env["GROWBIN_DATABASE__HOST"]["value"]
        == (values["externalServices"]["postgresql"]["addresses"][0])
    )
    redis_address = values["externalServices"]["redis"]["addresses"][0]
    assert f"@{redis_address}:6379/" in env["GROWBIN_REDIS__URL"]["value"]

    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values() if "valueFrom" in e}
    assert len(refs) == 1
    secret_name = refs.pop()
    assert {f"GROWBIN_DATABASE__{d.upper()}__PASSWORD" for d in API_DOMAINS} <= set(env)
    assert "GROWBIN_AUTH__JWT_PUBLIC_KEY" in env, "production settings refuse to load without it"
    assert "GROWBIN_AUTH__JWT_PRIVATE_KEY" not in env
    secrets = [s for s in rendered.of_kind("Secret") if s["metadata"]["name"] == secret_name]
    if values_set != "managed-secret":
        assert secret_name == "growbin-app" and not secrets
    else:
        (secret,) = secrets
        secret_events, secret_weight = _hook(secret)
        assert secret_events == events and secret_weight < job_weight
        assert set(secret["stringData"]) == {f"database-password-{d}" for d in API_DOMAINS} | {
            "jwt-public-key",
            "redis-password",
        }
        assert all(secret["stringData"].values())


def test_deploy_init_hook_secret_holds_every_key_the_job_references(tmp_path: Path) -> None:
    """Whatever flows deploy-init is given, its own Secret copy (chart-managed case) has
    each key its container references."""
    override = tmp_path / "flows.yaml"
    override.write_text(
        yaml.safe_dump({"networkPolicy": {"dataFlows": {"rabbitmq": ["api-scans", "deploy-init"]}}})
    )
    docs = helm_template(*values_args("managed-secret"), "-f", str(override))
    rendered = Rendered("flows", tuple(docs))
    job = rendered.get("Job", f"{RELEASE}-deploy-init")
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in containers(job["spec"]["template"])[0]["env"]
        if "valueFrom" in e
    }
    assert ("growbin-deploy-init", "rabbitmq-password") in refs
    secret = rendered.get("Secret", f"{RELEASE}-deploy-init")
    assert {key for _, key in refs} == set(secret["stringData"])


def test_deploy_init_receives_the_credentials_its_databases_list(tmp_path: Path) -> None:
    override = tmp_path / "init.yaml"
    override.write_text(yaml.safe_dump({"deployInit": {"databases": ["auth", "recycling"]}}))
    docs = helm_template("-f", str(LOCAL_VALUES), "-f", str(override))
    job = next(d for d in docs if d["kind"] == "Job")
    env = env_of(containers(job["spec"]["template"])[0])
    passwords = {k for k in env if k.endswith("__PASSWORD") and k.startswith("GROWBIN_DATABASE")}
    assert passwords == {
        "GROWBIN_DATABASE__AUTH__PASSWORD",
        "GROWBIN_DATABASE__RECYCLING__PASSWORD",
    }


# --- Secret vs existingSecret ------------------------------------------------------------


def _secret_refs(rendered: Rendered) -> list[tuple[str, str, bool]]:
    refs = []
    for deployment in rendered.of_kind("Deployment"):
        for entry in containers(deployment["spec"]["template"])[0]["env"]:
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.append((ref["name"], ref["key"], ref.get("optional", False)))
    return refs


def test_existing_secret_is_referenced_and_not_created() -> None:
    rendered = render("production")
    assert not rendered.of_kind("Secret")
    refs = _secret_refs(rendered)
    assert refs and {name for name, _, _ in refs} == {"growbin-app"}


def test_managed_secret_holds_every_referenced_key() -> None:
    rendered = render("managed-secret")
    secret = rendered.get("Secret", f"{RELEASE}-credentials")
    assert "helm.sh/hook" not in secret["metadata"].get("annotations", {})
    data = secret["stringData"]
    assert data["jwt-private-key"].startswith("-----BEGIN PRIVATE KEY-----")
    for name, key, optional in _secret_refs(rendered):
        assert name == f"{RELEASE}-credentials"
        assert optional or key in data, key
    # A changed credential rolls the pods.
    for deployment in rendered.of_kind("Deployment"):
        assert "checksum/secret" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_credentials_are_handed_out_by_need() -> None:
    rendered = render("local")
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        env = env_of(containers(deployment["spec"]["template"])[0])
        has_private_key = "GROWBIN_AUTH__JWT_PRIVATE_KEY" in env
        assert has_private_key == (name == f"{RELEASE}-auth"), name
        assert "GROWBIN_AUTH__JWT_PUBLIC_KEY" in env
        assert ("GROWBIN_LLM__API_KEY" in env) == (
            name in {f"{RELEASE}-chat", f"{RELEASE}-worker-ai"}
        ), name
        service = name.removeprefix(f"{RELEASE}-")
        passwords = {
            k for k in env if k.startswith("GROWBIN_DATABASE__") and k.endswith("__PASSWORD")
        }
        needed = DATABASES_NEEDED.get(service, [service])
        assert passwords == {f"GROWBIN_DATABASE__{d.upper()}__PASSWORD" for d in needed}, name


def test_broker_and_redis_urls_use_the_data_services_and_secret_passwords() -> None:
    rendered = render("local")
    env = env_of(containers(rendered.get("Deployment", f"{RELEASE}-scans")["spec"]["template"])[0])
    names = list(env)
    assert env["GROWBIN_REDIS__URL"]["value"] == (
        f"redis://growbin:$(REDIS_PASSWORD)@{RELEASE}-redis:6379/0"
    )
    assert env["GROWBIN_BROKER__URL"]["value"] == (
        f"amqp://growbin:$(RABBITMQ_PASSWORD)@{RELEASE}-rabbitmq:5672/growbin"
    )
    # Kubernetes expands $(VAR) only from variables defined earlier in the list.
    assert names.index("REDIS_PASSWORD") < names.index("GROWBIN_REDIS__URL")
    assert names.index("RABBITMQ_PASSWORD") < names.index("GROWBIN_BROKER__URL")
    assert env["GROWBIN_DATABASE__HOST"]["value"] == f"{RELEASE}-postgresql"
    config = rendered.get("ConfigMap", RELEASE)["data"]
    assert config["GROWBIN_ENVIRONMENT"] == "local"
    assert config["GROWBIN_DATABASE__PORT"] == "5432"
    assert render("production").get("ConfigMap", RELEASE)["data"]["GROWBIN_ENVIRONMENT"] == (
        "production"
    )


def test_workers_export_metrics_and_use_the_model_inside_the_image() -> None:
    rendered = render("local")
    for queue in WORKER_QUEUES:
        template = rendered.get("Deployment", f"{RELEASE}-worker-{queue}")["spec"]["template"]
        container = containers(template)[0]
        assert {"name": "metrics", "containerPort": 9808, "protocol": "TCP"} in container["ports"]
        env = env_of(container)
        assert env["GROWBIN_WORKER__METRICS_PORT"]["value"] == "9808"
        assert template["metadata"]["annotations"]["prometheus.io/port"] == "9808"
        # The ONNX model ships in the image at the settings' default path: no node folder.
        assert "GROWBIN_LLM__OFFLINE_MODEL_PATH" not in env
        assert {v["name"] for v in template["spec"]["volumes"]} == {"tmp", "wal"}


# --- settings ---------------------------------------------------------------------------


def test_settings_are_rendered_verbatim(tmp_path: Path) -> None:
    """`settings` lands in the ConfigMap as given; per-component settings only in that
    component's container, after the shared ones."""
    override = tmp_path / "settings.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "settings": {"GROWBIN_LOG_LEVEL": "WARNING", "GROWBIN_LLM__MODEL": "m-1"},
                "api": {"chat": {"settings": {"GROWBIN_CHAT__MAX_ANSWER_TOKENS": "300"}}},
                "workers": {"ai": {"settings": {"GROWBIN_WORKER__CONCURRENCY": "3"}}},
                "deployInit": {"settings": {"GROWBIN_DEPLOY__SEED_SAMPLE_LOCATIONS": "true"}},
            }
        )
    )
    docs = helm_template("-f", str(LOCAL_VALUES), "-f", str(override))
    rendered = Rendered("settings", tuple(docs))
    defaults = yaml.safe_load((REPO_ROOT / "charts" / "growbin" / "values.yaml").read_text())
    config = rendered.get("ConfigMap", RELEASE)["data"]
    expected = {**defaults["settings"], "GROWBIN_LOG_LEVEL": "WARNING", "GROWBIN_LLM__MODEL": "m-1"}
    assert config == {**expected, "GROWBIN_ENVIRONMENT": "local", "GROWBIN_DATABASE__PORT": "5432"}
    component_settings = {
        "chat": ("GROWBIN_CHAT__MAX_ANSWER_TOKENS", "300"),
        "worker-ai": ("GROWBIN_WORKER__CONCURRENCY", "3"),
        "deploy-init": ("GROWBIN_DEPLOY__SEED_SAMPLE_LOCATIONS", "true"),
    }
    for owner, template in rendered.pod_templates():
        name = owner["metadata"]["name"].removeprefix(f"{RELEASE}-")
        env = env_of(containers(template)[0])
        for component, (key, value) in component_settings.items():
            if component == name:
                assert env[key]["value"] == value, name
            elif key != "GROWBIN_WORKER__CONCURRENCY" or not name.startswith("worker-"):
                assert key not in env, name
    storage = env_of(
        containers(rendered.get("Deployment", f"{RELEASE}-worker-storage")["spec"]["template"])[0]
    )
    assert storage["GROWBIN_WORKER__CONCURRENCY"]["value"] == "2"


def test_api_containers_listen_where_probes_and_services_look(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        if deployment["metadata"]["labels"]["growbin.app/tier"] != "api":
            continue
        env = env_of(containers(deployment["spec"]["template"])[0])
        assert env["GROWBIN_API__HOST"]["value"] == "0.0.0.0"
        assert env["GROWBIN_API__PORT"]["value"] == "8000"


def test_api_grace_period_outlasts_graceful_shutdown(rendered: Rendered) -> None:
    values = values_of(rendered.values_set)
    config = rendered.get("ConfigMap", RELEASE)["data"]
    shutdown = int(config["GROWBIN_API__GRACEFUL_SHUTDOWN_SECONDS"])
    assert shutdown >= 300, "event streams last up to 300 s"
    for deployment in rendered.of_kind("Deployment"):
        if deployment["metadata"]["labels"]["growbin.app/tier"] != "api":
            continue
        pod = deployment["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == values["apiTerminationGracePeriodSeconds"]
        pause = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
        assert pod["terminationGracePeriodSeconds"] > pause + shutdown
