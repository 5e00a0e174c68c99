"""The application image (app/Dockerfile) runs every process of the deploy contract.

Slow (a build, then real processes against the test services), so it runs only with
GROWBIN_TEST_IMAGE=1; it is not part of `make test`. GROWBIN_IMAGE=<tag> reuses an image built
earlier; otherwise scripts/build-image.sh (`make image`) builds one from this checkout.

Each process runs the way the chart runs it: the image's own user, read-only root filesystem,
no capabilities, no privilege escalation, a tmpfs /tmp (and the contract's directories), and
exactly the settings its contract entry (app/growbin/core/processes.py) entitles it to, so a
database or service missing from the contract shows up here. Data comes from
scripts/test-services.sh (.cache/test-services.env): fresh databases and a RabbitMQ vhost of
this run, dropped at the end. The containers share the host's network to reach those
loopback-only services, so each listens on a free port: the APIs on 127.0.0.1, the workers'
exporters on every address (prometheus_client's default).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from growbin.core import processes
from growbin.core.settings import StorageSettings

from .conftest import REPO_ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("GROWBIN_TEST_IMAGE") != "1",
        reason="the image test is slow: set GROWBIN_TEST_IMAGE=1",
    ),
]

BUILT_TAG = "growbin/app:image-test"
SERVICES_ENV = REPO_ROOT / ".cache" / "test-services.env"
# What scripts/export-vision-model.sh wrote next to the model it exported for the build.
MODEL_MANIFEST = REPO_ROOT / ".cache" / "vision-model" / "efficientnet-lite0.json"
BUILD_TIMEOUT_S = 900
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
# Not in the final stage: compilers, linkers, the build stage's installers and wheels.
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "cpp", "make", "ld", "as", "pip", "pip3")
BUILD_MODULES = ("pip", "setuptools", "wheel", "ensurepip")
# What `growbin deploy-init` prints for a change (roles/app_systemd/tasks/deploy_init.yml
# reports `changed` on the same pattern).
CHANGED = re.compile(r"^\S+: (applied|loaded)", re.MULTILINE)
# The chart's pod and container securityContext with Docker flags; /tmp is an emptyDir
# (tmpfs, exec, like kubelet's).
RESTRICTED = (
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--tmpfs=/tmp:rw,exec,nosuid,nodev,size=64m,mode=1777",
)
# Where the filesystem image store lives unless GROWBIN_STORAGE__ROOT says otherwise.
OBJECT_STORE_ROOT = StorageSettings.model_fields["root"].default

# The contract as the checkout defines it, in its JSON form (tuples become lists).
CONTRACT: dict[str, Any] = json.loads(json.dumps(processes.contract()))
PROCESSES: dict[str, dict[str, Any]] = CONTRACT["processes"]
API_PROCESSES = [name for name, p in PROCESSES.items() if p["kind"] == "api"]
WORKER_PROCESSES = [name for name, p in PROCESSES.items() if p["kind"] == "worker"]
(INIT_PROCESS,) = [name for name, p in PROCESSES.items() if p["kind"] == "init"]


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args[:2])} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


def run_in_image(image: str, *args: str, entrypoint: str | None = None) -> str:
    """A one-off restricted container without network; its stdout."""
    override = ["--entrypoint", entrypoint] if entrypoint else []
    return docker("run", "--rm", "--network=none", *RESTRICTED, *override, image, *args).stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def image() -> str:
    existing = os.environ.get("GROWBIN_IMAGE")
    if existing:
        docker("image", "inspect", existing)
        return existing
    built = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-image.sh"), BUILT_TAG],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert built.returncode == 0, f"scripts/build-image.sh failed:\n{built.stderr[-4000:]}"
    assert built.stdout.strip().splitlines()[-1] == BUILT_TAG, built.stdout
    return BUILT_TAG


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    return json.loads(docker("image", "inspect", image).stdout)[0]["Config"]


def test_entrypoint_is_the_growbin_command_stopped_by_sigterm(config: dict[str, Any]) -> None:
    assert config["Entrypoint"] == ["growbin"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["User"] == f"{processes.IMAGE_UID}:{processes.IMAGE_UID}"
    assert f"{processes.API_PORT}/tcp" in config["ExposedPorts"]


def test_runs_as_the_contract_uid_without_build_tools(image: str) -> None:
    probe = "; ".join(
        ["id -u", "id -g", *(f"command -v {tool}" for tool in BUILD_TOOLS), "ls -d /wheels"]
    )
    lines = run_in_image(image, "-c", f"{probe}; true", entrypoint="sh").split()
    assert lines[:2] == [str(processes.IMAGE_UID)] * 2
    assert lines[2:] == [], f"build tools in the final stage: {lines[2:]}"
    check = "; ".join(
        f"print({module!r}) if importlib.util.find_spec({module!r}) else None"
        for module in BUILD_MODULES
    )
    found = run_in_image(image, "-c", f"import importlib.util; {check}", entrypoint="python")
    assert found.split() == [], f"installers in the final stage: {found.split()}"


def test_no_program_in_the_image_gains_privileges(image: str) -> None:
    """No set-uid/set-gid file: the base image's sudo, su, mount... are stripped of the bits."""
    found = run_in_image(
        image, "-c", "find / -xdev -type f -perm /6000 2>/dev/null; true", entrypoint="sh"
    )
    assert found.split() == [], f"set-uid/set-gid programs: {found.split()}"


def _differences(image: Any, checkout: Any, path: str = "") -> list[str]:
    if isinstance(image, dict) and isinstance(checkout, dict):
        return [
            difference
            for key in sorted(image.keys() | checkout.keys())
            for difference in _differences(image.get(key), checkout.get(key), f"{path}.{key}")
        ]
    return [] if image == checkout else [f"{path}: image {image!r}, checkout {checkout!r}"]


def test_contract_command_prints_the_checkouts_contract(image: str) -> None:
    differences = _differences(json.loads(run_in_image(image, "contract")), CONTRACT)
    assert not differences, (
        "the image was built from other code than this checkout (rebuild it, or leave "
        "GROWBIN_IMAGE unset):\n" + "\n".join(differences[:20])
    )


def test_contract_files_are_in_the_image_read_only(image: str) -> None:
    files = {f["path"] for p in PROCESSES.values() for f in p["files"]}
    assert processes.OFFLINE_MODEL_PATH in files
    for path in sorted(files):
        stat = run_in_image(image, "-c", f"stat -c '%u %a' {path}", entrypoint="sh").split()
        assert stat == ["0", "644"], f"{path}: owner and mode {stat}, want root's, read-only"


def test_offline_model_is_the_exported_one_and_classifies(image: str) -> None:
    digest = run_in_image(image, processes.OFFLINE_MODEL_PATH, entrypoint="sha256sum").split()[0]
    if MODEL_MANIFEST.is_file():
        assert digest == json.loads(MODEL_MANIFEST.read_text())["sha256"]
    # The worker's own path to the model: the settings' default, no API key -> offline.
    script = (
        "import io; from PIL import Image; from growbin.vision.base import get_classifier\n"
        "jpeg = io.BytesIO(); Image.new('RGB', (300, 200), (200, 120, 40)).save(jpeg, 'JPEG')\n"
        "result = get_classifier().classify(jpeg.getvalue())\n"
        "print(result.classifier, result.category, len(result.candidates))"
    )
    classifier, category, candidates = run_in_image(
        image, "-c", script, entrypoint="python"
    ).split()
    assert classifier == "offline:efficientnet-lite0"
    assert category and int(candidates) >= 1


def test_contract_directories_belong_to_the_image_user(image: str) -> None:
    paths = {d["path"] for p in PROCESSES.values() for d in p["directories"]}
    assert paths
    for path in sorted(paths):
        owner = run_in_image(image, "-c", f"stat -c %u {path}", entrypoint="sh").strip()
        assert owner == str(processes.IMAGE_UID), path


# --- processes against the test services ---------------------------------------------------


def _read_services_env() -> dict[str, str]:
    if not SERVICES_ENV.is_file():
        pytest.fail(f"{SERVICES_ENV} is missing: run scripts/test-services.sh (as root) first")
    values = {}
    for line in SERVICES_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _rabbitmqctl(*args: str) -> None:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"rabbitmqctl {args[0]} (as test-services.sh's user): {result.stderr}")


class Stack:
    """This run's databases, RabbitMQ vhost, keys and containers on the test services.

    A vhost of its own: the app tests' workers consume the same queue names on the shared
    one, and a worker here must not take their tasks (nor they this run's pings).
    """

    def __init__(self, image: str, services: dict[str, str], workdir: Path) -> None:
        from growbin.core.security import generate_private_key_pem, public_key_pem

        self.image = image
        self.services = services
        self.workdir = workdir
        self.id = uuid.uuid4().hex[:8]
        self.database_prefix = f"growbin_image_{self.id}_"
        self.vhost = f"growbin_image_{self.id}"
        self.private_key = generate_private_key_pem()
        self.public_key = public_key_pem(self.private_key)
        self.containers: list[str] = []

    def connect(self, database: str):
        import psycopg

        return psycopg.connect(
            host=self.services["GROWBIN_TEST_PG_HOST"],
            port=int(self.services["GROWBIN_TEST_PG_PORT"]),
            user=self.services["GROWBIN_TEST_PG_USER"],
            password=self.services["GROWBIN_TEST_PASSWORD"],
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def env(self, process: dict[str, Any], **extra: str) -> dict[str, str]:
        """The settings the contract gives `process`, pointed at the test services."""
        services = self.services
        env = {
            # Not development/test: passwords and the JWT public key are enforced.
            "GROWBIN_ENVIRONMENT": "local",
            "GROWBIN_DATABASE__HOST": services["GROWBIN_TEST_PG_HOST"],
            "GROWBIN_DATABASE__PORT": services["GROWBIN_TEST_PG_PORT"],
            "GROWBIN_DATABASE__SSLMODE": "disable",
            # Env files hold one line per variable; the settings unescape "\n" in PEM keys.
            "GROWBIN_AUTH__JWT_PUBLIC_KEY": self.public_key.replace("\n", "\\n"),
        }
        for database in process["databases"]:
            prefix = f"GROWBIN_DATABASE__{database.upper()}__"
            env[prefix + "NAME"] = self.database_prefix + database
            env[prefix + "USER"] = services["GROWBIN_TEST_PG_USER"]
            env[prefix + "PASSWORD"] = services["GROWBIN_TEST_PASSWORD"]
        if process["redis"]:
            env["GROWBIN_REDIS__URL"] = services["GROWBIN_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/2"
        if process["broker"]:
            env["GROWBIN_BROKER__URL"] = (
                services["GROWBIN_TEST_BROKER_URL"].rsplit("/", 1)[0] + "/" + self.vhost
            )
        if process["signs_tokens"]:
            env["GROWBIN_AUTH__JWT_PRIVATE_KEY"] = self.private_key.replace("\n", "\\n")
        for directory in process["directories"]:
            env[directory["setting"]] = directory["value"]
        for file in process["files"]:
            env[file["setting"]] = file["path"]
        env.update(extra)
        return env

    def docker_args(self, process: dict[str, Any], **extra: str) -> list[str]:
        """Flags of a restricted container running `process`; settings via a 0600 env file
        (not argv, where the process list would show the passwords)."""
        env_file = self.workdir / f"{process['name']}-{uuid.uuid4().hex[:6]}.env"
        env_file.touch(mode=0o600)
        env = self.env(process, **extra)
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        args = [*RESTRICTED, "--network=host", f"--env-file={env_file}"]
        # The chart's volumes: the contract's directories (an emptyDir or the node's
        # provisioned hostPath) and the shared image store of object_store processes.
        uid = processes.IMAGE_UID
        mounts = [d["path"] for d in process["directories"]]
        if process["object_store"]:
            mounts.append(OBJECT_STORE_ROOT)
        for path in mounts:
            args.append(f"--tmpfs={path}:rw,noexec,nosuid,nodev,uid={uid},gid={uid},mode=0750")
        return args

    def start(self, process: dict[str, Any], **extra: str) -> str:
        name = f"growbin-image-test-{process['name']}-{self.id}"
        self.containers.append(name)
        docker(
            "run", "-d", "--name", name, *self.docker_args(process, **extra), "--",
            self.image, *process["args"],
        )  # fmt: skip
        return name

    def one_off(self, process: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
        """`growbin ARGS` (default: the process's own) in a one-off container of `process`."""
        return docker(
            "run", "--rm", *self.docker_args(process), "--", self.image, *(args or process["args"]),
            timeout=300, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from growbin.core.domains import DOMAINS

    current = Stack(image, _read_services_env(), tmp_path_factory.mktemp("image-env"))
    user = current.services["GROWBIN_TEST_PG_USER"]
    admin = current.connect("postgres")
    try:
        for domain in DOMAINS:
            admin.execute(f'CREATE DATABASE "{current.database_prefix}{domain}"')
        _rabbitmqctl("add_vhost", current.vhost)
        _rabbitmqctl("set_permissions", "-p", current.vhost, user, ".*", ".*", ".*")
        yield current
    finally:
        for name in current.containers:
            docker("rm", "-f", name, check=False)
        for env_file in current.workdir.glob("*.env"):
            env_file.unlink()
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", current.vhost],
            capture_output=True,
            timeout=120,
            check=False,
        )
        for domain in DOMAINS:
            admin.execute(
                f'DROP DATABASE IF EXISTS "{current.database_prefix}{domain}" WITH (FORCE)'
            )
        admin.close()


def seeded_categories(output: str) -> int:
    loaded = re.search(r"^recycling: loaded: (\d+) categories", output, re.MULTILINE)
    assert loaded, output
    return int(loaded[1])


def count_categories(stack: Stack) -> int:
    from growbin.recycling.models import Category

    with stack.connect(stack.database_prefix + "recycling") as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {Category.__tablename__}").fetchone()
    return count


@pytest.fixture(scope="module")
def initialised(stack: Stack) -> tuple[str, str]:
    """`growbin deploy-init` twice, as two deploys of the same release would run it."""
    first = stack.one_off(PROCESSES[INIT_PROCESS])
    assert first.returncode == 0, first.stdout + first.stderr
    second = stack.one_off(PROCESSES[INIT_PROCESS])
    assert second.returncode == 0, second.stdout + second.stderr
    return first.stdout, second.stdout


def test_deploy_init_migrates_every_database_to_the_checkouts_head(
    stack: Stack, initialised: tuple[str, str]
) -> None:
    from alembic.script import ScriptDirectory
    from growbin.core import migrations

    first, _ = initialised
    domains = migrations.migratable_domains()
    assert domains
    for domain in domains:
        head = ScriptDirectory.from_config(migrations.alembic_config(domain)).get_current_head()
        assert f"{domain}: applied base -> {head}" in first.splitlines(), first
        with stack.connect(stack.database_prefix + domain) as conn:
            (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert version == head, domain


def test_deploy_init_seeds_once_and_then_changes_nothing(
    stack: Stack, initialised: tuple[str, str]
) -> None:
    first, second = initialised
    assert seeded_categories(first) == count_categories(stack) > 0
    assert CHANGED.search(second) is None, f"second deploy-init changed something:\n{second}"
    assert "recycling: already up to date" in second, second


def _state(name: str, wait_for_exit: float = 0) -> dict[str, Any]:
    deadline = time.monotonic() + wait_for_exit
    while True:
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        if not state["Running"] or time.monotonic() >= deadline:
            return state
        time.sleep(0.5)


def _logs(name: str) -> str:
    result = docker("logs", "--tail", "80", name, check=False)
    return result.stdout + result.stderr


def _pid1(name: str) -> tuple[list[str], list[str]]:
    """PID 1's argv and its real/effective/saved/fs uids."""
    cmdline = docker("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
    status = docker("exec", name, "cat", "/proc/1/status").stdout
    (uids,) = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
    return [arg for arg in cmdline if arg], uids


def _stop(name: str) -> tuple[int, float]:
    """`docker stop` (the image's STOPSIGNAL, then SIGKILL after the grace period)."""
    started = time.monotonic()
    docker("stop", "--time", str(STOP_TIMEOUT_S), name, timeout=STOP_TIMEOUT_S + 60)
    seconds = time.monotonic() - started
    return _state(name, wait_for_exit=5)["ExitCode"], seconds


@pytest.fixture(scope="module")
def apis(stack: Stack, initialised: tuple[str, str]) -> dict[str, tuple[str, int]]:
    """Every API process of the contract, started together: process name -> (container, port)."""
    started = {}
    for name in API_PROCESSES:
        port = free_port()
        container = stack.start(
            PROCESSES[name], GROWBIN_API__HOST="127.0.0.1", GROWBIN_API__PORT=str(port)
        )
        started[name] = (container, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = dict(started)
    while waiting and time.monotonic() < deadline:
        for name, (container, port) in list(waiting.items()):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                del waiting[name]
            except httpx.TransportError:
                if not _state(container)["Running"]:
                    pytest.fail(f"{name} exited:\n{_logs(container)}")
        time.sleep(1)
    for name, (container, _) in waiting.items():
        pytest.fail(f"{name} did not answer within {START_TIMEOUT_S} s:\n{_logs(container)}")
    return started


@pytest.mark.parametrize("name", API_PROCESSES)
def test_api_process_answers_health_and_ready(apis: dict[str, tuple[str, int]], name: str) -> None:
    container, port = apis[name]
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok"}
    # Ready: the databases and Redis the contract gives this process all answer.
    ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    expected = {f"database:{d}" for d in PROCESSES[name]["databases"]} | {"redis"}
    assert set(ready.json()["checks"]) == expected
    argv, uids = _pid1(container)
    assert Path(argv[-3]).name == "growbin" and argv[-2:] == PROCESSES[name]["args"], argv
    assert uids == [str(processes.IMAGE_UID)] * 4


def test_recycling_api_serves_the_seeded_knowledge_base(
    initialised: tuple[str, str], apis: dict[str, tuple[str, int]]
) -> None:
    _, port = apis["api-recycling"]
    listed = httpx.get(f"http://127.0.0.1:{port}/api/v1/recycling/categories", timeout=10)
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == seeded_categories(initialised[0])


def test_api_process_stops_cleanly_on_docker_stop(apis: dict[str, tuple[str, int]]) -> None:
    container, _ = apis["api-users"]
    exit_code, seconds = _stop(container)
    assert exit_code == 0, f"exit {exit_code} after {seconds:.0f} s:\n{_logs(container)}"
    assert seconds < STOP_TIMEOUT_S, "SIGTERM did not stop the API: docker had to kill it"


def _ping(container: str, queue: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return docker(
        "exec", container, "growbin", "worker-ping", queue, f"--timeout={timeout:g}",
        timeout=timeout + 60, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def workers(stack: Stack) -> dict[str, tuple[str, int]]:
    """Every worker process of the contract: process name -> (container, metrics port)."""
    started = {}
    for name in WORKER_PROCESSES:
        port = free_port()
        container = stack.start(
            PROCESSES[name],
            GROWBIN_WORKER__METRICS_PORT=str(port),
            GROWBIN_WORKER__CONCURRENCY="1",
        )
        started[name] = (container, port)
    for name, (container, _) in started.items():
        queue = PROCESSES[name]["args"][1]
        deadline = time.monotonic() + START_TIMEOUT_S
        while _ping(container, queue, timeout=5).returncode != 0:
            if not _state(container)["Running"]:
                pytest.fail(f"{name} exited:\n{_logs(container)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} never answered a ping:\n{_logs(container)}")
            time.sleep(2)
    return started


@pytest.mark.parametrize("name", WORKER_PROCESSES)
def test_worker_process_answers_worker_ping(workers: dict[str, tuple[str, int]], name) -> None:
    container, port = workers[name]
    ping = _ping(container, PROCESSES[name]["args"][1])
    assert ping.returncode == 0, ping.stderr
    # The journal lives on the contract's directory and the exporter reports it.
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert re.search(r"^growbin_worker_wal_depth 0(\.0)?$", metrics.text, re.MULTILINE), (
        metrics.text
    )
    (wal,) = PROCESSES[name]["directories"]
    listing = docker("exec", container, "ls", wal["path"]).stdout.split()
    assert Path(wal["value"]).name in listing, listing
    argv, uids = _pid1(container)
    assert Path(argv[-3]).name == "growbin" and argv[-2:] == PROCESSES[name]["args"], argv
    assert uids == [str(processes.IMAGE_UID)] * 4


def test_worker_process_stops_cleanly_on_docker_stop(
    stack: Stack, workers: dict[str, tuple[str, int]]
) -> None:
    name = WORKER_PROCESSES[0]
    container, _ = workers[name]
    # Host network: a one-off container has the worker's hostname, so pings the same name.
    assert docker("exec", container, "hostname").stdout.strip() == socket.gethostname()
    exit_code, seconds = _stop(container)
    assert exit_code == 0, f"exit {exit_code} after {seconds:.0f} s:\n{_logs(container)}"
    assert seconds < STOP_TIMEOUT_S, "SIGTERM did not stop the worker: docker had to kill it"
    # The probe is no formality: with the worker gone (the other queues' still run), it fails.
    queue = PROCESSES[name]["args"][1]
    ping = stack.one_off(PROCESSES[name], "worker-ping", queue, "--timeout=5")
    assert ping.returncode == 1, ping.stdout + ping.stderr
    assert "did not answer a ping" in ping.stderr
