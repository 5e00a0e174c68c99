"""systemd on the platform's node containers, for the fault drills."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import growbin_testinfra as gt
from growbin_client import REPO, User

CONTAINER_PREFIX = "growbin-"
DOCKER_EXEC_SECONDS = 120.0
VENV_BIN = REPO / ".venv" / "bin"
SITE_SECONDS = 1800


def run_site(log: Path, *args: str, **extra_vars: str) -> dict[str, dict[str, int]]:
    """`ansible-playbook -i inventories/local site.yml ARGS` as an operator runs it on the local
    platform; asserts it succeeded and returns its recap (host -> counters). Output goes to log.
    """
    command = [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        str(REPO / "inventories" / "local"),
        str(REPO / "site.yml"),
        *args,
    ]
    for name, value in extra_vars.items():
        command += ["-e", f"{name}={value}"]
    # The project's own Ansible configuration, not the one Molecule's verifier runs under.
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
    with log.open("w") as out:
        finished = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=SITE_SECONDS,
            check=False,
        )
    output = log.read_text()
    assert finished.returncode == 0, (
        f"site.yml {' '.join(args)} failed (rc {finished.returncode}), log {log}:\n{output[-4000:]}"
    )
    return gt.play_recap(output)


class Nodes:
    """systemd on the platform's node containers, driven through `docker exec`."""

    def systemctl(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", f"{CONTAINER_PREFIX}{node}", "systemctl", *args],
            capture_output=True,
            text=True,
            timeout=DOCKER_EXEC_SECONDS,
            check=False,
        )

    def is_active(self, node: str, unit: str) -> bool:
        return self.systemctl(node, "is-active", "--quiet", unit).returncode == 0

    def start(self, node: str, unit: str, within: float = 60.0) -> None:
        started = self.systemctl(node, "start", unit)
        assert started.returncode == 0, f"start {unit} on {node}: {started.stderr}"
        deadline = time.monotonic() + within
        while not self.is_active(node, unit):
            assert time.monotonic() < deadline, f"{unit} on {node} is not active again"
            time.sleep(0.5)

    def stop(self, node: str, unit: str) -> None:
        stopped = self.systemctl(node, "stop", unit)
        assert stopped.returncode == 0, f"stop {unit} on {node}: {stopped.stderr}"
        assert not self.is_active(node, unit), f"{unit} on {node} still runs after stop"

    def restart(self, node: str, unit: str) -> None:
        restarted = self.systemctl(node, "restart", unit)
        assert restarted.returncode == 0, f"restart {unit} on {node}: {restarted.stderr}"

    @contextmanager
    def stopped(self, node: str, unit: str, user: User) -> Iterator[None]:
        """The unit is stopped inside the block; afterwards it runs and the platform serves.

        The restart sits in ``finally`` so a failing assertion inside a drill never leaves
        the shared platform broken for the tests after it.
        """
        try:
            self.stop(node, unit)
            yield
        finally:
            self.start(node, unit)
            user.wait_until_serving()
