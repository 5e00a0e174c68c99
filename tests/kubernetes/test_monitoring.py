"""Monitoring in the kubernetes runtime (defect 4 of issue 15): Prometheus can discover and scrape
the cluster, has the access it needs, and metrics-server serves the HPAs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kubernetes.conftest import PRODUCTION_INVENTORY, RENDER_TIMEOUT_S, REPO_ROOT, ansible_bin
from tests.kubernetes.tasks import index_of, module_of, role_file, role_tasks

CREDENTIALS_DIR = "/etc/prometheus/kubernetes"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


def promtool() -> str | None:
    candidate = REPO_ROOT / ".cache" / "bin" / "promtool"
    return os.environ.get("PROMTOOL") or (
        str(candidate) if candidate.exists() else shutil.which("promtool")
    )


def render_config(out: Path, runtime: str) -> str:
    command = [ansible_bin("ansible-playbook"), "-i", str(PRODUCTION_INVENTORY)]
    command += [str(REPO_ROOT / "molecule/monitoring/render_prometheus_config.yml")]
    command += ["-e", f"rendered_config_path={out}", "-e", f"prometheus_app_runtime={runtime}"]
    command += ["-e", "ansible_connection=local"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return out.read_text()


@pytest.fixture(scope="module")
def kubernetes_config(tmp_path_factory) -> str:
    return render_config(tmp_path_factory.mktemp("prometheus") / "prometheus.yml", "kubernetes")


@pytest.fixture(scope="module")
def jobs(kubernetes_config) -> dict[str, dict]:
    return {job["job_name"]: job for job in yaml.safe_load(kubernetes_config)["scrape_configs"]}


@pytest.fixture(scope="module")
def rendered_addons(tmp_path_factory) -> Path:
    from tests.kubernetes.conftest import run_playbook

    out_dir = tmp_path_factory.mktemp("addons")
    run_playbook(Path(__file__).parent / "render_addons.yml", out_dir)
    return out_dir


def token_and_ca(sd_or_job: dict) -> tuple[str | None, str | None]:
    return (
        sd_or_job.get("authorization", {}).get("credentials_file"),
        sd_or_job.get("tls_config", {}).get("ca_file"),
    )


def test_every_discovery_authenticates_with_the_token_and_the_cluster_ca(jobs):
    discovering = {name: job for name, job in jobs.items() if "kubernetes_sd_configs" in job}
    assert set(discovering) == {
        "kubernetes_pods",
        "kubernetes_apiservers",
        "kubernetes_kubelets",
        "kubernetes_cadvisor",
    }
    for job in discovering.values():
        [sd] = job["kubernetes_sd_configs"]
        assert sd["api_server"] == "https://10.0.35.231:6443"  # the production master
        assert token_and_ca(sd) == (f"{CREDENTIALS_DIR}/token", f"{CREDENTIALS_DIR}/ca.crt")


def test_pods_are_discovered_by_annotation_and_labelled_by_component(jobs):
    job = jobs["kubernetes_pods"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    keep = job["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["action"] == "keep" and keep["regex"] == "true"
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"__address__", "__metrics_path__", "component", "namespace", "instance"} <= targets


def test_the_api_server_is_scraped_over_verified_tls(jobs):
    job = jobs["kubernetes_apiservers"]
    assert job["scheme"] == "https"
    assert token_and_ca(job) == (f"{CREDENTIALS_DIR}/token", f"{CREDENTIALS_DIR}/ca.crt")
    [sd] = job["kubernetes_sd_configs"]
    assert sd["role"] == "endpointslice" and sd["namespaces"]["names"] == ["default"]
    [keep] = job["relabel_configs"]
    assert keep["action"] == "keep" and keep["regex"] == "kubernetes;https"


@pytest.mark.parametrize(
    ("name", "path"),
    [("kubernetes_kubelets", "/metrics"), ("kubernetes_cadvisor", "/metrics/cadvisor")],
)
def test_every_kubelet_is_scraped_on_10250(jobs, name, path):
    job = jobs[name]
    assert job["scheme"] == "https" and job["metrics_path"] == path
    assert job["kubernetes_sd_configs"][0]["role"] == "node"
    [address] = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
    assert address["source_labels"] == ["__meta_kubernetes_node_address_InternalIP"]
    assert address["replacement"] == "$1:10250"
    assert job["authorization"]["credentials_file"] == f"{CREDENTIALS_DIR}/token"


def test_etcd_is_scraped_on_the_master(jobs):
    [static] = jobs["etcd"]["static_configs"]
    assert static == {"targets": ["10.0.35.231:2381"], "labels": {"instance": "k8s-master"}}


def test_the_credential_files_are_the_ones_the_role_writes():
    tasks = role_tasks("prometheus")
    writes = {
        t["ansible.builtin.copy"]["dest"]: t
        for t in tasks
        if module_of(t) == "ansible.builtin.copy"
        and "kubernetes_dir" in str(t["ansible.builtin.copy"]["dest"])
    }
    assert set(writes) == {
        "{{ __prometheus_kubernetes_dir }}/token",
        "{{ __prometheus_kubernetes_dir }}/ca.crt",
    }
    assert writes["{{ __prometheus_kubernetes_dir }}/token"]["no_log"] is True
    assert (
        role_file("prometheus", "vars/main.yml")["__prometheus_kubernetes_dir"] == CREDENTIALS_DIR
    )


def test_promtool_accepts_both_runtimes_configurations(tmp_path, kubernetes_config):
    """promtool validates what it can parse. The bootstrap's promtool is Debian's 2.42, built
    without Kubernetes discovery: for the kubernetes runtime each kubernetes_sd_configs is
    replaced by an empty static_configs, so the rest of every job (scheme, authorization, TLS,
    relabelling) is still checked by promtool; the discovery blocks are checked above."""
    tool = promtool()
    if tool is None:
        pytest.fail("promtool not found: run `make bootstrap` (installs .cache/bin/promtool)")
    systemd = render_config(tmp_path / "systemd.yml", "systemd")
    (tmp_path / "systemd.yml").write_text(systemd)
    check = subprocess.run(
        [tool, "check", "config", str(tmp_path / "systemd.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    credentials = tmp_path / "kubernetes"
    credentials.mkdir()
    (credentials / "token").write_text("t0ken")
    (credentials / "ca.crt").write_text(CERTIFICATE)
    config = yaml.safe_load(kubernetes_config.replace(CREDENTIALS_DIR, str(credentials)))
    original = tmp_path / "kubernetes.yml"
    original.write_text(yaml.safe_dump(config))
    check = subprocess.run([tool, "check", "config", str(original)], capture_output=True, text=True)
    if check.returncode != 0:
        assert "field kubernetes_sd_configs not found" in check.stdout + check.stderr, check.stdout
        for job in config["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["static_configs"] = [{"targets": []}]
        original.write_text(yaml.safe_dump(config))
        check = subprocess.run(
            [tool, "check", "config", str(original)], capture_output=True, text=True
        )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_kubernetes_runtime_installs_the_pinned_upstream_release(rendered_addons):
    install = json.loads((rendered_addons / "prometheus-install.json").read_text())
    version = install["version"]
    assert install["method"] == "release"  # the production inventory's runtime is kubernetes
    assert install["url"] == (
        f"https://github.com/prometheus/prometheus/releases/download/v{version}/"
        f"prometheus-{version}.linux-amd64.tar.gz"
    )
    # The release's own published checksum list, as prometheus.prometheus reads it.
    assert install["checksum"] == (
        f"sha256:https://github.com/prometheus/prometheus/releases/download/v{version}/sha256sums.txt"
    )
    assert install["promtool"] == "/usr/local/bin/promtool"
    tasks = role_tasks("prometheus")
    download = tasks[index_of(tasks, lambda t: module_of(t) == "ansible.builtin.get_url")]
    assert download["ansible.builtin.get_url"]["url"] == "{{ prometheus_release_url }}"
    assert download["ansible.builtin.get_url"]["checksum"] == "{{ prometheus_release_checksum }}"
    [release] = [
        t for t in role_file("prometheus", "tasks/install.yml") if "install_release" in str(t)
    ]
    assert release["when"] == "prometheus_install_method == 'release'"
    assert download in role_file("prometheus", "tasks/install_release.yml")


def test_the_systemd_runtime_keeps_the_distribution_package():
    defaults = role_file("prometheus", "defaults/main.yml")
    assert defaults["prometheus_package"] == "prometheus"
    rule = defaults["prometheus_install_method"]
    assert "'release' if" in rule and "== 'kubernetes' else 'package'" in rule


def test_prometheus_access_grants_discovery_and_metrics(rendered_addons):
    docs = {
        doc["kind"]: doc
        for doc in yaml.safe_load_all((rendered_addons / "prometheus-access.yaml").read_text())
    }
    assert set(docs) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret"}
    granted = {
        resource: set(rule["verbs"])
        for rule in docs["ClusterRole"]["rules"]
        for resource in rule.get("resources", [])
    }
    for resource in ("nodes", "nodes/metrics", "services", "endpoints", "pods", "endpointslices"):
        assert granted[resource] >= {"get", "list", "watch"}, resource
    assert {"nonResourceURLs": ["/metrics"], "verbs": ["get"]} in docs["ClusterRole"]["rules"]
    account = docs["ServiceAccount"]["metadata"]
    assert docs["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    assert docs["ClusterRoleBinding"]["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    secret = docs["Secret"]
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert (
        secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == account["name"]
    )


def test_token_and_ca_reach_prometheus_inputs_without_being_logged():
    tasks = role_tasks("prometheus_kubernetes_access")
    read = tasks[index_of(tasks, lambda t: module_of(t) == "kubernetes.core.k8s_info")]
    assert read["no_log"] is True
    hand = tasks[index_of(tasks, lambda t: module_of(t) == "ansible.builtin.set_fact")]
    assert hand["no_log"] is True and hand["delegate_facts"] is True
    assert hand["loop"] == "{{ prometheus_kubernetes_access_monitoring_hosts }}"
    outputs = {"prometheus_kubernetes_access_token", "prometheus_kubernetes_access_ca_cert"}
    assert set(hand["ansible.builtin.set_fact"]) == outputs
    # The playbook feeds them to the prometheus role's inputs.
    [role] = [
        r
        for play in plays("monitoring.yml")
        for r in play.get("roles", [])
        if r["role"] == "growbin.platform.prometheus"
    ]
    inputs = role_file("prometheus", "defaults/main.yml")
    assert {"prometheus_kubernetes_bearer_token", "prometheus_kubernetes_ca_cert"} <= set(inputs)
    assert role["vars"]["prometheus_kubernetes_bearer_token"].startswith(
        "{{ prometheus_kubernetes_access_token"
    )
    assert role["vars"]["prometheus_kubernetes_ca_cert"].startswith(
        "{{ prometheus_kubernetes_access_ca_cert"
    )


def plays(playbook: str) -> list[dict]:
    return yaml.safe_load((REPO_ROOT / "playbooks" / playbook).read_text())


def test_monitoring_stage_gives_prometheus_its_access_first():
    names = [
        (play["hosts"], [r["role"] for r in play.get("roles", [])])
        for play in plays("monitoring.yml")
    ]
    access = names.index(
        ("masters[0]:&runtime_kubernetes", ["growbin.platform.prometheus_kubernetes_access"])
    )
    prometheus = next(
        i for i, (_, roles) in enumerate(names) if "growbin.platform.prometheus" in roles
    )
    grouping = next(i for i, play in enumerate(plays("monitoring.yml")) if "group_by" in str(play))
    assert grouping < access < prometheus


def test_metrics_server_is_pinned_and_installed_for_the_hpas(tmp_path):
    tasks = role_tasks("metrics_server")
    download = tasks[index_of(tasks, lambda t: module_of(t) == "ansible.builtin.get_url")]
    assert (
        download["ansible.builtin.get_url"]["checksum"] == "{{ metrics_server_manifest_checksum }}"
    )
    check = tasks[index_of(tasks, lambda t: t.get("name") == "Check the pinned manifest")]
    assert "^sha256:[0-9a-f]{64}$" in check["ansible.builtin.assert"]["that"]
    api = tasks[index_of(tasks, lambda t: module_of(t) == "kubernetes.core.k8s_info")]
    assert api["kubernetes.core.k8s_info"]["name"] == "v1beta1.metrics.k8s.io"
    # The stage before the application installs it.
    roles = [r["role"] for play in plays("kubernetes.yml") for r in play.get("roles", [])]
    assert roles.index("growbin.platform.metrics_server") > roles.index("growbin.platform.calico")
    pins = yaml.safe_load((PRODUCTION_INVENTORY / "group_vars/all/kubernetes.yml").read_text())
    assert (
        pins["metrics_server_version"]
        == role_file("metrics_server", "defaults/main.yml")["metrics_server_version"]
    )
    assert "metrics_server_manifest_checksum" in pins


def test_metrics_server_container_gets_the_extra_args(tmp_path):
    """The role's own expression (its apply task's vars), evaluated by Ansible on a manifest
    shaped like the release's: the Deployment's container keeps its args and gains the extra."""
    manifest = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "metrics-server"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "metrics-server", "namespace": "kube-system"},
            "spec": {
                "template": {
                    "spec": {
                        "serviceAccountName": "metrics-server",
                        "containers": [{"name": "metrics-server", "args": ["--cert-dir=/tmp"]}],
                    }
                }
            },
        },
    ]
    (tmp_path / "components.yaml").write_text(yaml.safe_dump_all(manifest))
    [apply] = [t for t in role_tasks("metrics_server") if module_of(t) == "kubernetes.core.k8s"]
    expression = {k: v for k, v in apply["vars"].items() if k != "ansible_python_interpreter"}
    (tmp_path / "vars.yml").write_text(yaml.safe_dump(expression))
    playbook = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                **role_file("metrics_server", "defaults/main.yml"),
                "__metrics_server_manifest_content": {
                    "content": f"{{{{ lookup('file', '{tmp_path}/components.yaml') | b64encode }}}}"
                },
            },
            "tasks": [
                {"ansible.builtin.include_vars": {"file": str(tmp_path / "vars.yml")}},
                {
                    "ansible.builtin.copy": {
                        "content": "{{ __metrics_server_documents | to_json }}",
                        "dest": str(tmp_path / "out.json"),
                        "mode": "0600",
                    }
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    command = [
        ansible_bin("ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        str(tmp_path / "play.yml"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:]
    documents = json.loads((tmp_path / "out.json").read_text())
    assert [d["kind"] for d in documents] == ["ServiceAccount", "Deployment"]
    pod = documents[1]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "metrics-server"
    assert pod["containers"] == [
        {"name": "metrics-server", "args": ["--cert-dir=/tmp", "--kubelet-insecure-tls"]}
    ]
    # On the control plane: only masters (and monitoring) may reach the kubelets' 10250.
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert pod["tolerations"] == [
        {
            "key": "node-role.kubernetes.io/control-plane",
            "operator": "Exists",
            "effect": "NoSchedule",
        }
    ]
    matrix = yaml.safe_load((REPO_ROOT / "inventories" / "flow_matrix.yml").read_text())
    kubelet_sources = {
        source
        for flow in matrix["growbin_flow_matrix"]
        if flow["port"] == 10250 and flow["to"] == "k8s_cluster"
        for source in flow["from"]
    }
    assert "masters" in kubelet_sources
