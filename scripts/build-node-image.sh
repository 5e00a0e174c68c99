#!/usr/bin/env bash
# Build the local node image (Debian 12 + systemd + python3 + the host's CA certificates).
# Cached: the debootstrap rootfs is built once; the node layer is rebuilt only when its
# inputs change (Docker's layer cache), so a second run takes seconds.
set -euo pipefail

ROOTFS_IMAGE=growbin/bookworm-rootfs:latest
NODE_IMAGE=${GROWBIN_NODE_IMAGE:-growbin/node:bookworm}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CONTEXT="$HERE/molecule/images/node"

# Everything Ansible needs on a managed node, and what the roles expect a fresh
# Debian cloud image to have (systemd, sudo, iproute2, procps, gnupg).
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,sudo,iproute2,procps,gnupg,curl,less,kmod

if ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "node image: debootstrap bookworm (once)"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$work/rootfs" >"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log"; exit 1; }
  # The mirror debootstrap used is the host's; the image keeps the default sources.
  tar -C "$work/rootfs" -c . | docker import - "$ROOTFS_IMAGE" >/dev/null
fi

mkdir -p "$CONTEXT/ca-certificates"
find "$CONTEXT/ca-certificates" -name '*.crt' -delete
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$CONTEXT/ca-certificates/"
fi
docker build -q --build-arg ROOTFS_IMAGE="$ROOTFS_IMAGE" -t "$NODE_IMAGE" "$CONTEXT" >/dev/null
echo "node image: $NODE_IMAGE ready"
