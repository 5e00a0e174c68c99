"""The deploy contract: every process the application runs, described once.

Both runtimes deploy from this description. ``growbin contract`` prints it; the Ansible role
``app_settings`` carries a generated copy (``roles/app_settings/vars/contract.yml``, checked
against this module by tests/unit/test_deploy_contract.py) and turns the inventory into each
process's settings; ``app_systemd`` writes them as env files and systemd units, ``growbin_app``
as Helm values and a Secret. A process is started by ``growbin <args>`` in both runtimes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from growbin.core.domains import DOMAINS

# Where the image and the systemd install keep the offline vision model (read-only).
OFFLINE_MODEL_PATH = "/opt/growbin/models/efficientnet-lite0.onnx"
# The workers' journal directory: it must outlive the process (and the pod).
WAL_DIRECTORY = "/var/lib/growbin/wal"
WAL_FILE = f"{WAL_DIRECTORY}/worker.sqlite3"
# The image's service account; the systemd runtime's user gets the same uid by default, so a
# directory both write (the filesystem image store, a worker journal) has one owner.
IMAGE_UID = 10001
API_PORT = 8000
# Multipart framing (boundaries, part headers) a photo upload carries beyond the image itself.
# A proxy in front of the scan API lets GROWBIN_SCANS__MAX_UPLOAD_BYTES plus this through, so
# an oversized photo reaches the API and gets its JSON error, not the proxy's HTML page.
UPLOAD_REQUEST_OVERHEAD_BYTES = 16 * 1024
WORKER_METRICS_PORT = 9808


@dataclass(frozen=True)
class Directory:
    """A writable directory that must persist across restarts of the process."""

    path: str
    # The setting that points the process into it, and its value.
    setting: str
    value: str


@dataclass(frozen=True)
class File:
    """A read-only file the process needs at a fixed path."""

    path: str
    setting: str
    # What provides it: the image build and the systemd install both put it there.
    description: str


@dataclass(frozen=True)
class Process:
    name: str
    kind: Literal["api", "worker", "init"]
    # Arguments of the `growbin` command.
    args: tuple[str, ...]
    # Domain databases whose credentials the process receives.
    databases: tuple[str, ...]
    redis: bool
    broker: bool
    # Receives the JWT signing key (only the auth API issues tokens).
    signs_tokens: bool = False
    # Receives the LLM API key (classification and chat completions).
    llm: bool = False
    # TCP ports the process listens on: name -> port.
    ports: dict[str, int] = field(default_factory=dict)
    directories: tuple[Directory, ...] = ()
    files: tuple[File, ...] = ()
    # Reads or writes scan images: with the filesystem backend (GROWBIN_STORAGE__ROOT) these
    # processes' nodes must share that directory.
    object_store: bool = False


def _api(domain: str, *, databases: tuple[str, ...], **extra: Any) -> Process:
    return Process(
        name=f"api-{domain}",
        kind="api",
        args=("api", domain),
        databases=databases,
        redis=True,
        broker=extra.pop("broker", False),
        ports={"http": API_PORT},
        **extra,
    )


_WORKER_PORTS = {"metrics": WORKER_METRICS_PORT}
# Every worker journals its outcomes before acknowledging a task (growbin.worker.journal).
_WAL = Directory(path=WAL_DIRECTORY, setting="GROWBIN_WORKER__WAL_PATH", value=WAL_FILE)
_MODEL = File(
    path=OFFLINE_MODEL_PATH,
    setting="GROWBIN_LLM__OFFLINE_MODEL_PATH",
    description="offline vision model (scripts/export-vision-model.sh)",
)

PROCESSES: dict[str, Process] = {
    process.name: process
    for process in (
        _api("auth", databases=("auth",), signs_tokens=True),
        _api("users", databases=("users",)),
        # The scan API publishes scan tasks: the one API that speaks AMQP.
        _api("scans", databases=("scans",), broker=True, object_store=True),
        _api("recycling", databases=("recycling",)),
        _api("locations", databases=("locations",)),
        # Chat grounds its answers in the knowledge base and the user's own scans.
        _api("chat", databases=("chat", "recycling", "scans"), llm=True),
        Process(
            name="worker-storage",
            kind="worker",
            args=("worker", "storage"),
            databases=("scans",),
            redis=True,
            broker=True,
            ports=_WORKER_PORTS,
            directories=(_WAL,),
            object_store=True,
        ),
        Process(
            name="worker-ai",
            kind="worker",
            args=("worker", "ai"),
            databases=("scans",),
            redis=True,
            broker=True,
            llm=True,
            ports=_WORKER_PORTS,
            directories=(_WAL,),
            files=(_MODEL,),
            object_store=True,
        ),
        # Migrations and seed data; idempotent, run before new code starts.
        Process(
            name="deploy-init",
            kind="init",
            args=("deploy-init",),
            databases=DOMAINS,
            # Loading the knowledge base invalidates the search cache.
            redis=True,
            broker=False,
        ),
    )
}

API_DOMAINS: tuple[str, ...] = tuple(p.args[1] for p in PROCESSES.values() if p.kind == "api")
WORKER_QUEUES: tuple[str, ...] = tuple(p.args[1] for p in PROCESSES.values() if p.kind == "worker")


def api_process(domain: str) -> Process:
    return PROCESSES[f"api-{domain}"]


def worker_process(queue: str) -> Process:
    return PROCESSES[f"worker-{queue}"]


def contract() -> dict[str, Any]:
    """The contract as plain data (what ``growbin contract`` prints)."""
    return {
        "image_uid": IMAGE_UID,
        "upload_request_overhead_bytes": UPLOAD_REQUEST_OVERHEAD_BYTES,
        "processes": {name: asdict(process) for name, process in PROCESSES.items()},
    }
