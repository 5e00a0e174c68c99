"""The built collection tarball works on its own, away from this checkout."""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NODE_IMAGE = os.environ.get("GROWBIN_NODE_IMAGE", "growbin/node:bookworm")
# How a node-image container must run for systemd (shared with Molecule and make up).
NODE_CONTAINER = yaml.safe_load(
    (ROOT / "molecule" / "images" / "node" / "container.yml").read_text()
)

PLAYBOOK = """\
- name: Use growbin.platform from the installed tarball
  hosts: node
  roles:
    - role: growbin.platform.common
      vars:
        common_admin_user: {admin}
        common_admin_ssh_keys:
          - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINbLYJH6UgXv3f49MHMPwC1bsv1bXGhTOaBGOFT/HrVs test
"""


def run(args, cwd, env, check=True):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the tarball and install it into an empty directory; run tools from there."""
    work = tmp_path_factory.mktemp("collection")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(work / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(work / "collections")
    )
    (work / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
    run(["ansible-galaxy", "collection", "build", "--output-path", str(work), str(ROOT)], work, env)
    tarballs = list(work.glob("growbin-platform-*.tar.gz"))
    assert len(tarballs) == 1
    run(
        [
            "ansible-galaxy",
            "collection",
            "install",
            "--no-deps",
            "-p",
            str(work / "collections"),
            str(tarballs[0]),
        ],
        work,
        env,
    )
    return work, env


def test_tarball_is_installed_as_growbin_platform(installed):
    work, env = installed
    out = run(["ansible-galaxy", "collection", "list", "growbin.platform"], work, env).stdout
    assert "growbin.platform" in out and "0.1.0" in out
    collection = work / "collections" / "ansible_collections" / "growbin" / "platform"
    assert (collection / "roles" / "common").is_dir()
    # galaxy.yml declares the license; Galaxy's import wants its text in the tarball too.
    assert "Apache License" in (collection / "LICENSE").read_text()


def test_ansible_doc_shows_the_documented_options(installed):
    work, env = installed
    out = run(["ansible-doc", "-t", "role", "growbin.platform.common"], work, env).stdout
    for option in (
        "common_admin_user",
        "common_admin_ssh_keys",
        "common_timezone",
        "common_sysctls",
    ):
        assert option in out
    assert "Time zone of every node" in out


def _wait_for_boot(container: str, timeout: float = 120) -> None:
    # Right after the container starts, systemd's bus may not be up yet ("Failed to connect
    # to bus") and the command fails at once: ask again until systemd answers (as
    # molecule/shared/create.yml does), or a playbook races the boot.
    deadline = time.monotonic() + timeout
    while True:
        state = subprocess.run(
            ["docker", "exec", container, "systemctl", "is-system-running", "--wait"],
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout.strip()
        if state in ("running", "degraded"):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{container}: systemd did not finish booting ({state!r})")
        time.sleep(1)


@pytest.fixture(scope="module")
def node():
    name = f"growbin-collection-test-{uuid.uuid4().hex[:8]}"
    args = ["docker", "run", "-d", "--name", name, "--hostname", "node", "--cgroupns=host"]
    for volume in NODE_CONTAINER["growbin_node_container_volumes"]:
        args += ["-v", volume]
    for mount in NODE_CONTAINER["growbin_node_container_tmpfs"]:
        args += ["--tmpfs", mount]
    for option in NODE_CONTAINER["growbin_node_container_security_opts"]:
        args += ["--security-opt", option]
    for cap in NODE_CONTAINER["growbin_node_container_capabilities"]:
        args += ["--cap-add", cap]
    subprocess.run([*args, NODE_IMAGE], check=True, capture_output=True, timeout=120)
    try:
        _wait_for_boot(name)
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)


def _inventory(work: Path, container: str) -> Path:
    inventory = work / "hosts.yml"
    inventory.write_text(
        f"all:\n  hosts:\n    node:\n      ansible_connection: community.docker.docker\n      ansible_host: {container}\n"
    )
    return inventory


def test_missing_required_variable_fails_naming_it(installed, node):
    work, env = installed
    playbook = work / "missing.yml"
    playbook.write_text(
        PLAYBOOK.format(admin="opsadmin").replace("        common_admin_user: opsadmin\n", "")
    )
    result = run(
        ["ansible-playbook", "-i", str(_inventory(work, node)), str(playbook)],
        work,
        env,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "common_admin_user" in output, output[-3000:]
    # Argument validation runs before any task touched the node.
    assert run(["docker", "exec", node, "id", "opsadmin"], work, env, check=False).returncode != 0


def test_playbook_uses_the_role_by_fqcn(installed, node):
    work, env = installed
    playbook = work / "site.yml"
    playbook.write_text(PLAYBOOK.format(admin="opsadmin"))
    result = run(["ansible-playbook", "-i", str(_inventory(work, node)), str(playbook)], work, env)
    assert "failed=0" in result.stdout
    assert run(["docker", "exec", node, "id", "-nG", "opsadmin"], work, env).stdout.split() == [
        "opsadmin",
        "growbin-admins",
    ]
