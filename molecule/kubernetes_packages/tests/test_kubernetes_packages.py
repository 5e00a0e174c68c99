"""kubernetes_packages in both modes, observed on the converged nodes."""

import pytest

REPOSITORY_NODE = "packages-repository"
OFFLINE_NODE = "packages-offline"


@pytest.fixture
def repository_node(host):
    if host.backend.get_hostname() != REPOSITORY_NODE:
        pytest.skip("repository-mode node only")
    return host


@pytest.fixture
def offline_node(host):
    if host.backend.get_hostname() != OFFLINE_NODE:
        pytest.skip("offline-mode node only")
    return host


def test_repository_source_is_the_pinned_minor(repository_node):
    source = repository_node.file("/etc/apt/sources.list.d/kubernetes.sources")
    fields = dict(
        line.split(": ", 1) for line in source.content_string.splitlines() if ": " in line
    )
    assert fields["URIs"] == "https://pkgs.k8s.io/core:/stable:/v1.28/deb/"
    assert fields["Suites"] == "/"
    assert fields["Signed-By"] == "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
    assert source.mode == 0o644


def test_keyring_is_an_openpgp_key_apt_can_read(repository_node):
    keyring = repository_node.file("/etc/apt/keyrings/kubernetes-apt-keyring.asc")
    assert keyring.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # apt's own parser accepts the source: the entry shows up in its policy listing.
    policy = repository_node.run("apt-cache policy")
    assert policy.rc == 0, policy.stderr


def test_preferences_pin_exactly_the_release(repository_node):
    pref = repository_node.file("/etc/apt/preferences.d/kubernetes.pref").content_string
    assert "Package: kubelet kubeadm kubectl\n" in pref
    assert "Pin: version 1.28.15-*\n" in pref
    assert "Pin-Priority: 1001" in pref


def test_offline_binaries_installed_and_run(offline_node):
    for name in ("kubelet", "kubeadm", "kubectl"):
        binary = offline_node.file(f"/usr/local/bin/{name}")
        assert binary.mode == 0o755 and binary.user == "root"
        assert offline_node.check_output(f"/usr/local/bin/{name}") == f"{name} v1.35.0"


def test_offline_kubelet_unit_is_enabled_with_the_kubeadm_dropin(offline_node):
    assert offline_node.service("kubelet").is_enabled
    exec_start = offline_node.check_output("systemctl show -p ExecStart --value kubelet")
    assert "/usr/local/bin/kubelet" in exec_start and "KUBELET_KUBEADM_ARGS" in exec_start
    dropins = offline_node.check_output("systemctl show -p DropInPaths --value kubelet")
    assert "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" in dropins


def test_offline_mode_writes_no_repository(offline_node):
    assert not offline_node.file("/etc/apt/sources.list.d/kubernetes.sources").exists


def test_helm_from_the_staged_archive_runs(offline_node):
    helm = offline_node.file("/usr/local/bin/helm")
    assert helm.mode == 0o755 and helm.user == "root"
    assert (
        offline_node.check_output("/usr/local/bin/helm version --template '{{ .Version }}'")
        == "v3.17.3"
    )
