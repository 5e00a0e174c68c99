"""Redis as the role leaves it, observed from the controller over the node's private address."""

from __future__ import annotations

import hashlib
import socket
import urllib.request
import uuid

import growbin_testinfra as gt
import pytest
import redis

SECRETS = gt.scenario_vars("secrets")
APP_USER = "growbin"
EXPORTER_USER = "redis_exporter"
PORT = 6379


@pytest.fixture(scope="module")
def address(host) -> str:
    return host.interface.default().addresses[0]


def connect(address: str, **credentials: str) -> redis.Redis:
    return redis.Redis(
        host=address, port=PORT, socket_timeout=5, decode_responses=True, **credentials
    )


@pytest.fixture
def app(address):
    client = connect(address, username=APP_USER, password=SECRETS["redis_app_password"])
    yield client
    client.close()


@pytest.fixture
def exporter_login(address):
    client = connect(address, username=EXPORTER_USER, password=SECRETS["redis_exporter_password"])
    yield client
    client.close()


def test_listens_on_the_private_address_and_loopback_only(host, address):
    listening = {str(s) for s in host.socket.get_listening_sockets() if str(s).endswith(":6379")}
    assert listening == {f"tcp://{address}:6379", "tcp://127.0.0.1:6379"}


def test_unauthenticated_ping_is_refused(address):
    # A bare RESP exchange: client libraries negotiate (HELLO) before their first command.
    with socket.create_connection((address, PORT), timeout=5) as connection:
        connection.sendall(b"PING\r\n")
        reply = connection.recv(256)
    assert reply.startswith(b"-NOAUTH"), reply


def test_default_user_cannot_log_in(address):
    with pytest.raises(redis.AuthenticationError):
        connect(address, password=SECRETS["redis_app_password"]).ping()


def test_wrong_password_is_refused(address):
    with pytest.raises(redis.AuthenticationError):
        connect(address, username=APP_USER, password="not-the-password").ping()


def test_app_user_can_set_and_get(host, app):
    key, value = f"molecule:witness:{uuid.uuid4()}", str(uuid.uuid4())
    assert app.set(key, value) is True
    assert app.get(key) == value
    # Kept without a TTL: the next verify, after the scenario restarts Redis, looks for it.
    gt.RestartWitnesses("redis", host).record(
        gt.systemd_invocation_id(host, "redis-server"), key=key, value=value
    )


def test_app_user_can_use_what_the_application_needs(app):
    key = f"molecule:ratelimit:{uuid.uuid4()}"
    with app.pipeline(transaction=True) as pipe:
        pipe.incr(key).expire(key, 60, nx=True).ttl(key)
        count, _, ttl = pipe.execute()
    assert count == 1 and 0 < ttl <= 60
    stream = f"molecule:events:{uuid.uuid4()}"
    app.xadd(stream, {"user_id": "42"})
    app.xgroup_create(stream, "molecule", id="0")
    entries = app.xreadgroup("molecule", "consumer", {stream: ">"}, count=1)
    assert entries[0][1][0][1] == {"user_id": "42"}
    app.delete(key, stream)


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory", "0"),
        ("KEYS", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "LIST"),
        ("MODULE", "LIST"),
        ("MONITOR",),
        ("REPLICAOF", "NO", "ONE"),
        ("BGREWRITEAOF",),
    ],
    ids=lambda command: " ".join(command),
)
def test_app_user_is_refused_dangerous_commands(app, command):
    # DEBUG is refused to everyone (enable-debug-command no) before the ACL is consulted.
    with pytest.raises(redis.ResponseError, match="no permissions|DEBUG command not allowed"):
        app.execute_command(*command)


def test_exporter_user_reads_statistics_but_no_data(exporter_login):
    assert exporter_login.ping() is True
    assert exporter_login.info("server")["redis_version"].startswith("7.")
    with pytest.raises(redis.exceptions.NoPermissionError):
        exporter_login.get("anything")
    with pytest.raises(redis.exceptions.NoPermissionError):
        exporter_login.set("anything", "1")


def test_persistence_and_memory_settings_are_live(host, exporter_login):
    live = exporter_login.config_get("*")
    assert live["appendonly"] == "yes"
    assert live["appendfsync"] == "everysec"
    assert live["maxmemory-policy"] == "volatile-ttl"
    assert live["protected-mode"] == "yes"
    assert live["enable-debug-command"] == "no"
    memtotal_kb = int(host.file("/proc/meminfo").content_string.split()[1])
    assert int(live["maxmemory"]) == (memtotal_kb // 1024 * 50 // 100) * 1024 * 1024
    aof_dir = host.file("/var/lib/redis/appendonlydir")
    assert aof_dir.is_directory and aof_dir.user == "redis"


def test_exporter_reports_redis_up(address):
    with urllib.request.urlopen(f"http://{address}:9121/metrics", timeout=10) as response:
        metrics = dict(
            line.rsplit(" ", 1)
            for line in response.read().decode().splitlines()
            if line and not line.startswith("#")
        )
    assert metrics["redis_up"] == "1"
    assert metrics['redis_exporter_last_scrape_error{err=""}'] == "0"
    assert float(metrics["redis_memory_max_bytes"]) > 0


def test_secrets_are_stored_as_hashes_and_readable_only_by_their_service(host):
    acl = host.file("/etc/redis/users.acl")
    assert (acl.user, acl.group, acl.mode) == ("redis", "redis", 0o640)
    for secret in ("redis_app_password", "redis_exporter_password"):
        assert SECRETS[secret] not in acl.content_string
        assert "#" + hashlib.sha256(SECRETS[secret].encode()).hexdigest() in acl.content_string
    assert "user default off" in acl.content_string
    passwords = host.file("/etc/prometheus-redis-exporter/passwords.json")
    assert (passwords.user, passwords.group, passwords.mode) == ("root", "prometheus", 0o640)
    exporter_args = host.file("/etc/default/prometheus-redis-exporter").content_string
    assert SECRETS["redis_exporter_password"] not in exporter_args


def test_services_are_enabled(host):
    for unit in ("redis-server", "prometheus-redis-exporter"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled


def test_keys_written_before_a_restart_survive_it(host, app):
    current = gt.systemd_invocation_id(host, "redis-server")
    earlier = gt.RestartWitnesses("redis", host).before(current)
    if not earlier:
        pytest.skip("redis-server has not restarted since the first witness key was written")
    for witness in earlier:
        assert app.get(witness["key"]) == witness["value"], witness
