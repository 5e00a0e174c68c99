"""Helpers shared by the testinfra suites of every scenario (on the verifier's PYTHONPATH)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml


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


def scenario_vars(name: str) -> dict:
    """vars/<name>.yml of the running Molecule scenario (e.g. its test secrets)."""
    path = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "vars" / f"{name}.yml"
    return yaml.safe_load(path.read_text())


def systemd_invocation_id(host, unit: str) -> str:
    """The unit's current InvocationID: it changes on every (re)start of the unit."""
    invocation = host.check_output(f"systemctl show --property=InvocationID --value {unit}")
    assert invocation, f"{unit} has never been started"
    return invocation


class RestartWitnesses:
    """Data written to a service, recorded on the controller with the unit's invocation.

    A test records what it wrote; a later verify (after the scenario restarted the service)
    asks for the records of earlier invocations on the same machine and checks the service
    still has them. The records live in Molecule's ephemeral directory.
    """

    def __init__(self, name: str, host) -> None:
        self.path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / f"witnesses-{name}.json"
        # Containers of an earlier run of the scenario had other machine ids.
        self.machine = host.file("/etc/machine-id").content_string.strip()

    def _load(self) -> list[dict]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def record(self, invocation: str, **data: str) -> None:
        records = self._load()
        records.append({"machine": self.machine, "invocation": invocation, **data})
        self.path.write_text(json.dumps(records))

    def before(self, invocation: str) -> list[dict]:
        """This machine's records written while the service ran as another invocation."""
        return [
            record
            for record in self._load()
            if record.get("machine") == self.machine and record["invocation"] != invocation
        ]


@dataclass(frozen=True)
class PlaybookRun:
    """The result of one ansible-playbook run (see run_playbook)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr with every run of whitespace made one space (result formatters
        wrap long messages), for `message in run.output` checks."""
        return " ".join(f"{self.stdout}\n{self.stderr}".split())

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """Per-host counters of the run's PLAY RECAP."""
        return play_recap(self.stdout)

    @property
    def report(self) -> str:
        """The end of the output, for assertion messages."""
        return f"{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-1000:]}"


def run_playbook(
    playbook: str, *args: str, extra_vars: dict | None = None, timeout: int = 600
) -> PlaybookRun:
    """Run one of the scenario's playbooks against its instances (Molecule's env), without
    colours: Molecule forces them on, and play_recap cannot read coloured non-zero counters."""
    command = [
        "ansible-playbook",
        "--inventory",
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / playbook),
        *args,
    ]
    if extra_vars is not None:
        command += ["--extra-vars", json.dumps(extra_vars)]
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "false", "ANSIBLE_NOCOLOR": "true"}
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return PlaybookRun(run.returncode, run.stdout, run.stderr)


def check_converge(*args: str, extra_vars: dict | None = None) -> PlaybookRun:
    """The scenario's converge.yml in check mode, with diffs and -v (so that a secret the role
    failed to hide would show)."""
    return run_playbook("converge.yml", "--check", "--diff", "-v", *args, extra_vars=extra_vars)


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """Per-host counters (ok, changed, failed, ...) of the PLAY RECAP in ansible-playbook output."""
    recap: dict[str, dict[str, int]] = {}
    _, _, tail = output.rpartition("PLAY RECAP")
    for line in tail.splitlines():
        host, sep, counters = line.partition(" : ")
        if sep:
            recap[host.strip()] = {
                key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)
            }
    return recap


def assert_unchanged(run: PlaybookRun) -> None:
    """The run succeeded on every host and neither changed nor failed anything."""
    assert run.returncode == 0, run.report
    assert run.recap, run.report
    for counters in run.recap.values():
        assert counters["changed"] == 0 and counters["failed"] == 0, run.report


def assert_hidden(run: PlaybookRun, values: Iterable[str]) -> None:
    """None of the values (secrets) appears in the run's output; the failure names none."""
    output = run.stdout + run.stderr
    leaked = sum(value in output for value in values)
    assert leaked == 0, f"{leaked} secret value(s) appear in the playbook's output"


def assert_refused(run: PlaybookRun, *messages: str, hidden: Iterable[str] = ()) -> None:
    """The run failed before changing anything, saying each message (e.g. naming the variable
    at fault), and without echoing the hidden values."""
    assert run.returncode != 0, run.report
    for message in messages:
        assert message in run.output, run.report
    assert all(counters["changed"] == 0 for counters in run.recap.values()), run.report
    assert_hidden(run, hidden)


def readme_shell_blocks(readme: Path, section: str) -> list[str]:
    """The ```sh blocks of one `## section` of a README, in order (documented procedures that
    a test runs verbatim)."""
    text = readme.read_text()
    _, found, rest = text.partition(f"\n## {section}\n")
    assert found, f"{readme} has no '## {section}' section"
    body = rest.split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", body, flags=re.MULTILINE | re.DOTALL)
