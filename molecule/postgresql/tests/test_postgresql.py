"""PostgreSQL as the role leaves it, observed from the controller over the node's private address
and, for what only the node can see, from inside it."""

from __future__ import annotations

import ipaddress
import os
import shlex
import time
import urllib.request
import uuid
from pathlib import Path

import growbin_testinfra as gt
import psycopg
import pytest

PASSWORDS: dict[str, str] = gt.scenario_vars("secrets")["postgresql_domain_passwords"]
DOMAINS = ["auth", "users", "scans", "recycling", "locations", "chat"]
EXTENSIONS = {"recycling": {"pg_trgm"}, "locations": {"postgis"}}
PORT = 5432
UNIT = "postgresql@15-main"
BACKUP_UNIT = "growbin-postgresql-backup"
BACKUP_DIR = "/var/backups/postgresql"
EXPORTER_USER = "postgres_exporter"
# The scenario's overrides (converge.yml); the other memory settings are derived from the RAM.
WORK_MEM_MB = 8
POD_CIDR = "10.244.0.0/16"
README = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "roles" / "postgresql" / "README.md"


def database(domain: str) -> str:
    return f"growbin_{domain}"


@pytest.fixture(scope="module")
def address(host) -> str:
    return host.interface.default().addresses[0]


def connect(address: str, user: str, dbname: str, password: str | None) -> psycopg.Connection:
    """A TCP connection from the controller that only succeeds through SCRAM authentication."""
    options = {"require_auth": "scram-sha-256"} if password is not None else {}
    return psycopg.connect(
        host=address,
        port=PORT,
        user=user,
        dbname=dbname,
        password=password,
        # No ~/.pgpass or PG* variables of the controller may supply a password.
        passfile=os.devnull,
        connect_timeout=5,
        autocommit=True,
        **options,
    )


def owner(address: str, domain: str) -> psycopg.Connection:
    return connect(address, database(domain), database(domain), PASSWORDS[domain])


def psql(host, sql: str, dbname: str = "postgres") -> str:
    """Run SQL as the postgres superuser over the node's local socket (peer authentication)."""
    command = (
        f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {dbname} -c {shlex.quote(sql)}"
    )
    return host.check_output(command)


def loopback_login(host, user: str, dbname: str, password: str):
    """A password login over 127.0.0.1 from inside the node (the rule `host all all 127.0.0.1/32`)."""
    conninfo = f"host=127.0.0.1 port={PORT} user={user} dbname={dbname}"
    return host.run(
        f"PGPASSWORD={shlex.quote(password)} psql -XAtq {shlex.quote(conninfo)} -c 'SELECT 1'"
    )


def test_listens_on_the_private_address_and_loopback_only(host, address):
    listening = {str(s) for s in host.socket.get_listening_sockets() if str(s).endswith(f":{PORT}")}
    assert listening == {f"tcp://{address}:{PORT}", f"tcp://127.0.0.1:{PORT}"}


def test_server_is_postgresql_15_with_postgis_3(host):
    assert psql(host, "SHOW server_version").startswith("15.")
    assert psql(
        host, "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
    ).startswith("3.")


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_owner_uses_its_own_database(address, domain):
    with owner(address, domain) as conn:
        who = conn.execute("SELECT current_user, current_database()").fetchone()
        assert who == (database(domain), database(domain))
        table = f"probe_{uuid.uuid4().hex[:12]}"
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'written by the owner')")
        assert conn.execute(f"SELECT note FROM {table}").fetchone() == ("written by the owner",)
        conn.execute(f"DROP TABLE {table}")
        # An owner, not a superuser: it cannot create roles or databases either.
        flags = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert flags == (False, False, False)


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_role_cannot_open_another_domains_database(host, address, domain):
    other = DOMAINS[(DOMAINS.index(domain) + 1) % len(DOMAINS)]
    # Over the network the authentication rules have no line for this pair...
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        connect(address, database(domain), database(other), PASSWORDS[domain])
    # ...and from the node itself, where any database may be named, CONNECT is not granted.
    for dbname in (database(other), "postgres"):
        refused = loopback_login(host, database(domain), dbname, PASSWORDS[domain])
        assert refused.rc != 0
        assert f'permission denied for database "{dbname}"' in refused.stderr
    assert loopback_login(host, database(domain), database(domain), PASSWORDS[domain]).rc == 0


def test_tcp_connections_without_the_password_are_refused(address):
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        connect(address, database("scans"), database("scans"), None)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(address, database("scans"), database("scans"), "not-the-password-at-all")
    # The superuser has no network login at all.
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        connect(address, "postgres", "postgres", PASSWORDS["scans"])


def node_network(host) -> ipaddress.IPv4Network:
    """The network of the node's default interface (the scenario's growbin_node_subnet)."""
    fields = host.check_output("ip -4 -o address show scope global").split()
    return ipaddress.ip_interface(fields[fields.index("inet") + 1]).network


def test_authentication_is_scram_or_local_peer_from_inventory_networks(host):
    rules = [
        line.split("|")
        for line in psql(
            host,
            "SELECT type, array_to_string(database, ','), array_to_string(user_name, ','),"
            " coalesce(address, ''), coalesce(netmask, ''), auth_method FROM pg_hba_file_rules",
        ).splitlines()
    ]
    assert rules
    methods = {(kind, method) for kind, *_, method in rules}
    assert methods <= {("local", "peer"), ("local", "scram-sha-256"), ("host", "scram-sha-256")}
    assert {user for _, _, user, *_, method in rules if method == "peer"} == {
        "postgres",
        EXPORTER_USER,
    }
    networks = {
        ipaddress.ip_network(f"{addr}/{mask}")
        for kind, _, _, addr, mask, _ in rules
        if kind == "host"
    }
    assert networks == {
        ipaddress.ip_network("127.0.0.1/32"),
        node_network(host),
        ipaddress.ip_network(POD_CIDR),
    }
    remote_pairs = {
        (db, user) for kind, db, user, addr, *_ in rules if kind == "host" and addr != "127.0.0.1"
    }
    assert remote_pairs == {(database(domain), database(domain)) for domain in DOMAINS}
    assert psql(host, "SHOW password_encryption") == "scram-sha-256"
    not_scram = psql(
        host,
        "SELECT rolname FROM pg_authid WHERE rolpassword IS NOT NULL"
        " AND rolpassword NOT LIKE 'SCRAM-SHA-256$%'",
    )
    assert not_scram == ""


@pytest.mark.parametrize("domain", DOMAINS)
def test_extensions_exist_where_declared(address, domain):
    with owner(address, domain) as conn:
        installed = {name for (name,) in conn.execute("SELECT extname FROM pg_extension")}
        assert installed - {"plpgsql"} == EXTENSIONS.get(domain, set())
        if "postgis" in installed:
            # Seoul City Hall to Gwanghwamun, in metres on the spheroid.
            distance = conn.execute(
                "SELECT ST_Distance(ST_GeogFromText('POINT(126.9780 37.5665)'),"
                " ST_GeogFromText('POINT(126.9769 37.5759)'))"
            ).fetchone()[0]
            assert 1000 < distance < 1100
        if "pg_trgm" in installed:
            similarity = conn.execute("SELECT similarity('페트병', '페트 병')").fetchone()[0]
            assert 0 < similarity < 1


def test_memory_settings_follow_the_host_ram_and_the_overrides(host):
    ram_mb = int(host.file("/proc/meminfo").content_string.split()[1]) // 1024

    def setting_mb(name: str) -> int:
        return int(psql(host, f"SELECT pg_size_bytes(current_setting('{name}')) / 1048576"))

    assert setting_mb("shared_buffers") == ram_mb // 4
    assert setting_mb("effective_cache_size") == ram_mb * 3 // 4
    assert setting_mb("maintenance_work_mem") == min(ram_mb // 16, 2048)
    assert setting_mb("work_mem") == WORK_MEM_MB
    # postgresql_settings, one of each value type.
    assert psql(host, "SHOW log_min_duration_statement") == "250ms"
    assert psql(host, "SHOW idle_in_transaction_session_timeout") == "1min"
    assert psql(host, "SHOW log_lock_waits") == "on"
    assert psql(host, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL") == "0"


def test_services_are_enabled(host):
    for unit in (UNIT, "prometheus-postgres-exporter", f"{BACKUP_UNIT}.timer"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit


def test_backup_dumps_every_database_and_the_readme_restore_brings_the_rows_back(host, address):
    rows = 137
    marker = uuid.uuid4().hex
    with owner(address, "scans") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS backup_probe (id serial PRIMARY KEY, marker text)")
        conn.execute(
            "INSERT INTO backup_probe (marker) SELECT %s FROM generate_series(1, %s)",
            (marker, rows),
        )
        expected = conn.execute("SELECT count(*) FROM backup_probe").fetchone()[0]
    # A dump past the retention and a recent one that is not.
    expired = f"{BACKUP_DIR}/growbin_scans/growbin_scans-20000101T000000Z.dump"
    recent = f"{BACKUP_DIR}/growbin_scans/growbin_scans-20990101T000000Z.dump"
    host.check_output(f"install -d -o postgres -g postgres -m 0700 {BACKUP_DIR}/growbin_scans")
    host.check_output(f"runuser -u postgres -- touch -d '8 days ago' {expired}")
    host.check_output(f"runuser -u postgres -- touch -d '6 days ago' {recent}")

    run = host.run(f"systemctl start {BACKUP_UNIT}.service")
    assert run.rc == 0, host.run(f"journalctl -u {BACKUP_UNIT} --no-pager -n 30").stdout
    assert host.check_output(f"systemctl show -P Result {BACKUP_UNIT}.service") == "success"

    assert not host.file(expired).exists
    assert host.file(recent).exists
    host.check_output(f"rm {recent}")
    backup_dir = host.file(BACKUP_DIR)
    assert (backup_dir.user, backup_dir.mode) == ("postgres", 0o700)
    for dbname in [database(domain) for domain in DOMAINS] + ["postgres"]:
        latest = host.file(f"{BACKUP_DIR}/{dbname}/latest.dump")
        assert latest.is_symlink and latest.linked_to.startswith(f"{BACKUP_DIR}/{dbname}/{dbname}-")
        assert (latest.user, latest.mode) == ("postgres", 0o600)
        listing = host.check_output(f"pg_restore --list {BACKUP_DIR}/{dbname}/latest.dump")
        assert f"dbname: {dbname}" in listing
    globals_sql = host.file(f"{BACKUP_DIR}/globals-latest.sql")
    assert globals_sql.mode == 0o600 and "CREATE ROLE growbin_scans;" in globals_sql.content_string

    restore, swap = gt.readme_shell_blocks(README, "Restore a database")
    assert "db=growbin_scans\n" in restore and "db=growbin_scans\n" in swap
    ran = host.run("bash -euo pipefail -c " + shlex.quote(restore))
    assert ran.rc == 0, ran.stderr
    restored = f"SELECT count(*), count(*) FILTER (WHERE marker = '{marker}') FROM backup_probe"
    assert psql(host, restored, "growbin_scans_restored") == f"{expected}|{rows}"

    ran = host.run("bash -euo pipefail -c " + shlex.quote(swap))
    assert ran.rc == 0, ran.stderr
    psql(host, "DROP DATABASE growbin_scans_replaced")
    # The restored database is now the domain's, with the same rows and the same isolation.
    with owner(address, "scans") as conn:
        count = conn.execute("SELECT count(*) FROM backup_probe WHERE marker = %s", (marker,))
        assert count.fetchone()[0] == rows
    refused = loopback_login(host, database("auth"), database("scans"), PASSWORDS["auth"])
    assert 'permission denied for database "growbin_scans"' in refused.stderr


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}:9187/metrics", timeout=10) as response:
        return response.read().decode()


def test_exporter_reports_the_server_up_from_the_private_address(host, address):
    # The exporter keeps one connection open; the first scrape after a server restart finds it
    # broken, reports pg_up 0 and reconnects, so a few scrapes are allowed, as Prometheus does.
    for _ in range(10):
        metrics = scrape(address)
        if "\npg_up 1\n" in metrics:
            break
        time.sleep(1)
    assert "\npg_up 1\n" in metrics
    assert 'pg_stat_database_numbackends{datid="' in metrics
    assert 'datname="growbin_locations"' in metrics
    listening = {str(s) for s in host.socket.get_listening_sockets() if str(s).endswith(":9187")}
    assert listening == {f"tcp://{address}:9187"}


def test_exporter_login_is_least_privilege(host):
    attributes = psql(
        host,
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolpassword IS NULL,"
        " array_to_string(ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b"
        " ON b.oid = m.roleid WHERE m.member = a.oid), ',')"
        f" FROM pg_authid a WHERE rolname = '{EXPORTER_USER}'",
    )
    assert attributes == "f|f|f|t|pg_monitor"
    as_exporter = f"runuser -u prometheus -- psql -XAtqw 'host=/var/run/postgresql user={EXPORTER_USER} dbname={{}}' -c {{}}"
    assert host.check_output(as_exporter.format("postgres", "'SELECT 1'")) == "1"
    denied = host.run(as_exporter.format("postgres", "'CREATE TABLE exporter_was_here ()'"))
    assert denied.rc != 0 and "permission denied" in denied.stderr
    # Elsewhere only password rules apply, and the exporter's login has no password.
    refused = host.run(as_exporter.format("growbin_scans", "'SELECT 1'"))
    assert refused.rc != 0 and "no password supplied" in refused.stderr
    # No other OS account gets the exporter's login.
    refused = host.run(
        f"runuser -u nobody -- psql -XAtqw 'host=/var/run/postgresql user={EXPORTER_USER} dbname=postgres' -c 'SELECT 1'"
    )
    assert refused.rc != 0 and "Peer authentication failed" in refused.stderr


def test_rows_written_before_a_restart_survive_it(host, address):
    witnesses = gt.RestartWitnesses("postgresql", host)
    token = uuid.uuid4().hex
    with owner(address, "chat") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS restart_witness (token text PRIMARY KEY)")
        conn.execute("INSERT INTO restart_witness VALUES (%s)", (token,))
        current = gt.systemd_invocation_id(host, UNIT)
        witnesses.record(current, token=token)
        earlier = witnesses.before(current)
        if not earlier:
            pytest.skip(f"{UNIT} has not restarted since the first witness row was written")
        for witness in earlier:
            found = conn.execute(
                "SELECT 1 FROM restart_witness WHERE token = %s", (witness["token"],)
            )
            assert found.fetchone() == (1,), witness
