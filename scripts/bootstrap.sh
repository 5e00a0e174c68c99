#!/usr/bin/env bash
# Prepare this machine to run and test Growbin: the Python venv with the dev tools, a
# running Docker engine (Debian's docker.io), the in-tree collection link, the local
# node image, the helm binary and the offline vision model. Every step is skipped when
# already done, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}

step() { printf '\n== bootstrap: %s\n' "$*"; }

apt_install() {
  if [ -z "${__apt_updated:-}" ]; then apt-get update -qq; __apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step "python venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
stamp="$VENV/.growbin-requirements"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[dev]"
  echo "$want" >"$stamp"
else
  echo "up to date"
fi

step "docker engine"
if ! command -v dockerd >/dev/null; then
  apt_install docker.io
fi
if ! docker info >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup dockerd >/var/log/growbin-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/growbin-dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi
docker version --format 'engine {{.Server.Version}}'

step "collection link"
# growbin.platform resolves from this checkout (ansible.cfg: collections_path=./collections).
mkdir -p collections/ansible_collections/growbin
ln -sfn ../../.. collections/ansible_collections/growbin/platform
echo "collections/ansible_collections/growbin/platform -> $ROOT"

step "node image"
command -v debootstrap >/dev/null || apt_install debootstrap
bash scripts/build-node-image.sh

step "helm"
bash scripts/install-helm.sh

step "promtool"
# The alert-rule tests need Prometheus' promtool; take it out of Debian's package rather
# than installing (and starting) a Prometheus server on this machine.
if [ ! -x .cache/bin/promtool ]; then
  work=$(mktemp -d)
  (cd "$work" && apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; })
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p .cache/bin && cp "$work/root/usr/bin/promtool" .cache/bin/promtool
  rm -rf "$work"
fi
.cache/bin/promtool --version 2>&1 | head -1

step "offline vision model"
# worker-ai's classifier when no OpenAI key is configured (make up ships it to the node).
bash scripts/export-vision-model.sh
