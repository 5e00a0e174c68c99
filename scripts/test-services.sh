#!/usr/bin/env bash
# Start the data services the application tests talk to: PostgreSQL 15 + PostGIS 3, Redis 7
# and RabbitMQ, all on loopback, all password-protected with a password generated on the first
# run. Written for a fresh Debian 12 machine where we are root and systemd is not PID 1, so the
# daemons are started directly. Idempotent: a second run (or a run while they already serve)
# only checks them and rewrites nothing but what is missing.
#
# The connection details are written to .cache/test-services.env (mode 0600); the tests read it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENV_FILE="$ROOT/.cache/test-services.env"
PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
REDIS_PORT=6379
REDIS_PIDFILE=/run/redis-test.pid
AMQP_PORT=5672
TEST_USER=growbin_test
RABBIT_VHOST=growbin

log() { printf 'test-services: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "test-services: must run as root (it installs and starts system daemons)" >&2
  exit 1
fi

install_packages() {
  local missing=()
  local pkg
  for pkg in "postgresql-$PG_VERSION" "postgresql-$PG_VERSION-postgis-3" redis-server \
    rabbitmq-server; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    # policy-rc.d 101 stops the packages' maintainer scripts from starting daemons with their
    # default (unauthenticated, possibly all-interfaces) configuration; we start them below.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
}

load_or_create_password() {
  mkdir -p "$(dirname "$ENV_FILE")"
  if [[ -s $ENV_FILE ]] && grep -q '^GROWBIN_TEST_PASSWORD=' "$ENV_FILE"; then
    TEST_PASSWORD=$(sed -n 's/^GROWBIN_TEST_PASSWORD=//p' "$ENV_FILE")
  else
    # Hex keeps the password safe inside URLs and shell files without quoting.
    TEST_PASSWORD=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  fi
}

start_postgresql() {
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$PG_VERSION $PG_CLUSTER"; then
    log "creating PostgreSQL $PG_VERSION cluster $PG_CLUSTER"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >/dev/null
  fi
  local conf="/etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf"
  local want="listen_addresses = 'localhost'"
  if ! grep -qx "$want" "$conf"; then
    sed -i '/^listen_addresses/d' "$conf"
    echo "$want" >>"$conf"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop 2>/dev/null || true
  fi
  if ! pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; then
    log "starting PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
  fi
  # The test role creates one database per domain and the postgis/pg_trgm extensions in them,
  # which needs superuser; it can only log in over loopback with the generated password.
  su postgres -c "psql -q -p $PG_PORT -v ON_ERROR_STOP=1" <<SQL
SELECT 'CREATE ROLE $TEST_USER LOGIN SUPERUSER' WHERE NOT EXISTS
  (SELECT FROM pg_roles WHERE rolname = '$TEST_USER')\\gexec
ALTER ROLE $TEST_USER WITH PASSWORD '$TEST_PASSWORD';
SQL
}

redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning "$@"; }

start_redis() {
  if redis_cli -a "$TEST_PASSWORD" ping 2>/dev/null | grep -q PONG; then
    return
  fi
  if redis_cli ping 2>/dev/null | grep -q PONG; then
    log "Redis already runs without a password; setting the test password"
    redis_cli config set requirepass "$TEST_PASSWORD" >/dev/null
    return
  fi
  if redis_cli ping 2>&1 | grep -q NOAUTH; then
    # Ours, started with a password from an env file that has since been removed: restart it
    # with the current one. Someone else's Redis is left alone.
    if [[ -s $REDIS_PIDFILE ]] && kill -0 "$(cat "$REDIS_PIDFILE")" 2>/dev/null; then
      log "restarting the test Redis with the current password"
      kill "$(cat "$REDIS_PIDFILE")"
      for _ in $(seq 50); do redis_cli ping >/dev/null 2>&1 || break; sleep 0.1; done
    else
      echo "test-services: a Redis we did not start holds 127.0.0.1:$REDIS_PORT" >&2
      exit 1
    fi
  fi
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p /var/lib/redis-test
  # The password goes through stdin, not argv, so it does not show in the process list.
  printf 'bind 127.0.0.1\nport %s\nrequirepass %s\ndaemonize yes\npidfile %s\ndir /var/lib/redis-test\nsave ""\nappendonly no\nlogfile /var/log/redis-test.log\n' \
    "$REDIS_PORT" "$TEST_PASSWORD" "$REDIS_PIDFILE" | redis-server -
  for _ in $(seq 50); do
    redis_cli -a "$TEST_PASSWORD" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  echo "test-services: Redis did not answer; see /var/log/redis-test.log" >&2
  exit 1
}

start_rabbitmq() {
  # AMQP, epmd and the Erlang distribution port (25672) all bound to loopback.
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    log "starting RabbitMQ on 127.0.0.1:$AMQP_PORT"
    rabbitmq-server -detached
    # -detached returns before the node registers with epmd; poll until it answers, then wait
    # for the boot to finish.
    local tries=0
    until rabbitmqctl -q status >/dev/null 2>&1; do
      ((++tries > 120)) && { echo "test-services: RabbitMQ did not start" >&2; exit 1; }
      sleep 1
    done
    rabbitmqctl -q --timeout 120 await_startup
  fi
  if ! rabbitmqctl -q list_vhosts | grep -qx "$RABBIT_VHOST"; then
    rabbitmqctl -q add_vhost "$RABBIT_VHOST"
  fi
  if rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$TEST_USER"; then
    rabbitmqctl -q change_password "$TEST_USER" "$TEST_PASSWORD"
  else
    rabbitmqctl -q add_user "$TEST_USER" "$TEST_PASSWORD"
  fi
  rabbitmqctl -q set_permissions -p "$RABBIT_VHOST" "$TEST_USER" '.*' '.*' '.*'
}

write_env_file() {
  umask 077
  cat >"$ENV_FILE.tmp" <<ENV
GROWBIN_TEST_PASSWORD=$TEST_PASSWORD
GROWBIN_TEST_PG_HOST=127.0.0.1
GROWBIN_TEST_PG_PORT=$PG_PORT
GROWBIN_TEST_PG_USER=$TEST_USER
GROWBIN_TEST_REDIS_URL=redis://:$TEST_PASSWORD@127.0.0.1:$REDIS_PORT/0
GROWBIN_TEST_BROKER_URL=amqp://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$AMQP_PORT/$RABBIT_VHOST
ENV
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

install_packages
load_or_create_password
# Written before starting anything so a failure half-way still leaves the password the
# already-configured services use.
write_env_file
start_postgresql
start_redis
start_rabbitmq

log "PostgreSQL $PG_VERSION + PostGIS: postgresql://$TEST_USER@127.0.0.1:$PG_PORT"
log "Redis: redis://127.0.0.1:$REDIS_PORT/0 ($(redis_cli -a "$TEST_PASSWORD" info server | sed -n 's/^redis_version:\(.*\)\r$/\1/p'))"
log "RabbitMQ: amqp://$TEST_USER@127.0.0.1:$AMQP_PORT/$RABBIT_VHOST"
log "connection details (password included): $ENV_FILE"
