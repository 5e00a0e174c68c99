"""Helpers shared by the testinfra suites of every scenario (on the verifier's PYTHONPATH)."""

from __future__ import annotations


def in_container(host) -> bool:
    """True when the node is a container, where kernel-wide settings cannot be applied."""
    return host.run("systemd-detect-virt --container --quiet").rc == 0


def sshd_effective(host) -> dict[str, str]:
    """sshd's effective configuration, as `sshd -T` resolves it (lower-case keys)."""
    out = host.check_output("sshd -T -C user=nobody,host=localhost,addr=127.0.0.1")
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, value)
    return settings


def sysctl_file_settings(host, path: str) -> dict[str, str]:
    """key = value pairs of a sysctl.d file."""
    settings = {}
    for line in host.file(path).content_string.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings
