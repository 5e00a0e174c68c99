"""systemd on the platform's node containers, for the fault drills."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from growbin_client import User

CONTAINER_PREFIX = "growbin-"
DOCKER_EXEC_SECONDS = 120.0


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
