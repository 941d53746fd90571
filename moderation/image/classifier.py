"""The image classifiers (ImageNet ViT, optional NSFW model) as the transformers pipeline split: preprocess ->
forward -> postprocess, each small enough to test and to time on its own.

Models are loaded on first use through `moderation.hub` (argument, else environment variable, else default; a local
directory works like a hub id) and kept for the life of the process.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification

from ..hub import load_cached, resolve_model_id
from ..taxonomy import IMAGE_CATEGORIES
from .categories import IMAGENET_CLASSES, NSFW_CLASSES, category_scores, map_labels

DEFAULT_IMAGE_MODEL = "google/vit-base-patch16-224"
IMAGE_MODEL_ENV = "MODERATION_IMAGE_MODEL"
NSFW_MODEL_ENV = "MODERATION_NSFW_MODEL"


@dataclass(frozen=True)
class ImageClassifier:
    """A loaded checkpoint plus which of its labels count towards which category."""

    model_id: str
    processor: object
    model: torch.nn.Module
    label_categories: Mapping[str, str]

    @property
    def categories(self) -> frozenset[str]:
        """The categories this checkpoint can score at all (some mapped label exists)."""
        return frozenset(self.label_categories.values())


def load_image_classifier(model: str | None = None) -> ImageClassifier:
    """The ImageNet classifier: `model`, else $MODERATION_IMAGE_MODEL, else google/vit-base-patch16-224."""
    model_id = resolve_model_id(model, IMAGE_MODEL_ENV, DEFAULT_IMAGE_MODEL)
    return load_cached("image classifier", model_id, IMAGE_MODEL_ENV,
                       lambda source: _load(model_id, source, IMAGENET_CLASSES, required=False))


def load_nsfw_classifier(model: str | None = None) -> ImageClassifier | None:
    """The NSFW classifier: `model`, else $MODERATION_NSFW_MODEL, else None (there is no default: it is opt-in)."""
    model_id = resolve_model_id(model, NSFW_MODEL_ENV, "")
    if not model_id:
        return None
    return load_cached("NSFW image classifier", model_id, NSFW_MODEL_ENV,
                       lambda source: _load(model_id, source, NSFW_CLASSES, required=True))


def _load(model_id: str, source: str, table, *, required: bool) -> ImageClassifier:
    processor = AutoImageProcessor.from_pretrained(source)
    model = AutoModelForImageClassification.from_pretrained(source).eval()
    labels = list(model.config.id2label.values())
    label_categories = map_labels(labels, table)
    if required and not label_categories:
        # An NSFW model whose labels we cannot map would silently never flag anything.
        known = sorted(name for names in table.values() for name in names)
        raise ValueError(f"none of its labels {labels[:10]} is one of {known}")
    return ImageClassifier(model_id, processor, model, label_categories)


def preprocess(classifier: ImageClassifier, frames: list[Image.Image]) -> torch.Tensor:
    """Resize and normalise RGB frames into the model's pixel_values batch."""
    return classifier.processor(images=frames, return_tensors="pt")["pixel_values"]


def forward(classifier: ImageClassifier, pixel_values: torch.Tensor) -> torch.Tensor:
    """Logits, one row per frame."""
    with torch.inference_mode():
        return classifier.model(pixel_values=pixel_values).logits


def postprocess(classifier: ImageClassifier, logits: torch.Tensor) -> list[dict[str, float]]:
    """label -> probability per frame (softmax, or sigmoid for multi-label checkpoints).

    Probabilities of repeated label names add up (ImageNet has two "crane" classes: the bird and the machine).
    """
    config = classifier.model.config
    if config.problem_type == "multi_label_classification":
        probabilities = logits.float().sigmoid()
    else:
        probabilities = logits.float().softmax(dim=-1)
    results = []
    for row in probabilities.tolist():
        by_label: dict[str, float] = {}
        for index, probability in enumerate(row):
            label = config.id2label[index]
            by_label[label] = by_label.get(label, 0.0) + probability
        results.append(by_label)
    return results


def classify(classifier: ImageClassifier, frames: list[Image.Image]) -> list[dict[str, float]]:
    """label -> probability for each frame, in one batch."""
    return postprocess(classifier, forward(classifier, preprocess(classifier, frames)))


def score_frames(classifier: ImageClassifier, frames: list[Image.Image]) -> tuple[dict[str, float], dict[str, float]]:
    """(category -> score, label -> probability), each the highest over the frames: one bad frame flags an animation."""
    scores = dict.fromkeys(IMAGE_CATEGORIES, 0.0)
    label_peaks: dict[str, float] = {}
    for probabilities in classify(classifier, frames):
        for category, score in category_scores(probabilities, classifier.label_categories, IMAGE_CATEGORIES).items():
            scores[category] = max(scores[category], score)
        for label, probability in probabilities.items():
            label_peaks[label] = max(label_peaks.get(label, 0.0), probability)
    return scores, label_peaks
