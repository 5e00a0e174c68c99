#!/usr/bin/env bash
# Builds the application image (app/Dockerfile) from the same wheels the systemd runtime
# installs, plus the offline vision model, so both runtimes run the same code and versions.
#   scripts/build-image.sh [TAG]          default growbin/app:<version>
# BASE_IMAGE (default growbin/node:bookworm, the local node base) must provide python3.11.
# Prints the image reference; pushing is the operator's step (see README, "Production image").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
version=$(python3 -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
tag=${1:-growbin/app:$version}
base=${BASE_IMAGE:-growbin/node:bookworm}
context=.cache/image
model=.cache/vision-model/efficientnet-lite0.onnx

[ -f "$model" ] || bash scripts/export-vision-model.sh >&2
rm -rf "$context" && mkdir -p "$context/wheels"
# Wheels the platform converge built are reused; anything missing comes from the index.
find_links=()
for dir in .cache/wheelhouse/deps-*/; do
  [ -d "$dir" ] && find_links+=(--find-links "$dir")
done
# setuptools packs build/lib's copy of a module unless the source is newer: after the clock
# went back, that was stale code. The build directory goes first (as in app_systemd).
rm -rf build
python -m pip wheel --quiet "${find_links[@]}" --wheel-dir "$context/wheels" . "async-timeout>=4.0.3" >&2
cp "$model" "$context/"
docker build --quiet -f app/Dockerfile --build-arg "BASE_IMAGE=$base" -t "$tag" "$context" >&2
echo "$tag"
