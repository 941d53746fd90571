"""`moderate_image`: decode safely, check the known-image blocklist, classify every sampled frame, apply thresholds."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ..taxonomy import DEFAULT_IMAGE_THRESHOLDS, IMAGE_CATEGORIES, resolve_thresholds
from .blocklist import BlocklistMatch, match_blocklist
from .decode import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, ImageInput, load_frames

#: How many of the classifier's labels a verdict reports.
TOP_K_LABELS = 5


@dataclass(frozen=True)
class ImageVerdict:
    """The outcome for one image.

    `scores` holds every image category, `thresholds` the cut-offs applied to them, `categories` the flagged ones,
    most severe first. `matched_blocklist` is the known image it matched, if any, which flags it on its own.
    `labels` are the ImageNet classifier's top labels (for an animation, each label's highest probability over the
    checked frames).
    `not_assessed` lists categories that no configured model can see (`sexual` unless an NSFW model is set), whose
    score of 0.0 therefore means "unknown", not "clean". `nsfw_model` is None when the NSFW model is off.
    """

    flagged: bool
    scores: dict[str, float]
    categories: list[str]
    labels: list[tuple[str, float]]
    matched_blocklist: BlocklistMatch | None
    thresholds: dict[str, float]
    model: str
    nsfw_model: str | None
    not_assessed: list[str]
    frames_checked: int

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return {
            "flagged": self.flagged,
            "scores": dict(self.scores),
            "categories": list(self.categories),
            "labels": [{"label": label, "probability": probability} for label, probability in self.labels],
            "matched_blocklist": self.matched_blocklist.to_dict() if self.matched_blocklist else None,
            "thresholds": dict(self.thresholds),
            "model": self.model,
            "nsfw_model": self.nsfw_model,
            "not_assessed": list(self.not_assessed),
            "frames_checked": self.frames_checked,
        }


def moderate_image(
    image: ImageInput,
    *,
    model: str | None = None,
    nsfw_model: str | None = None,
    thresholds: float | Mapping[str, float] | None = None,
    blocklist: str | os.PathLike | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> ImageVerdict:
    """Moderate one image: a PIL image, a path, or the raw bytes of a JPEG/PNG/GIF/WebP/BMP/TIFF file.

    `model` / `nsfw_model` are hub ids or local directories (else $MODERATION_IMAGE_MODEL, default
    google/vit-base-patch16-224, and $MODERATION_NSFW_MODEL, default off). `thresholds` overrides the taxonomy's
    defaults (one float for all, or per category). `blocklist` is the known-image list's path (else
    $MODERATION_IMAGE_BLOCKLIST, else the user cache); a match flags the image whatever the scores.
    Raises ValueError for input that is not a usable image within `max_bytes` / `max_pixels`, and
    `ModelUnavailableError` when a configured model cannot be loaded.
    """
    applied = resolve_thresholds(thresholds, DEFAULT_IMAGE_THRESHOLDS, IMAGE_CATEGORIES)
    frames = load_frames(image, max_bytes=max_bytes, max_pixels=max_pixels)
    matched = match_blocklist(frames, path=blocklist)

    # torch and transformers load on first use, after a bad upload has already been turned away.
    from ..hub import ModelUnavailableError
    from . import classifier

    try:
        imagenet = classifier.load_image_classifier(model)
    except ModelUnavailableError:
        if matched is None:
            raise
        # The known-image check needs no classifier: a listed image is flagged whether or not one can be loaded.
        return ImageVerdict(flagged=True, scores={c: 0.0 for c in IMAGE_CATEGORIES}, categories=[], labels=[],
                            matched_blocklist=matched, thresholds=applied, model="", nsfw_model=None,
                            not_assessed=list(IMAGE_CATEGORIES), frames_checked=len(frames))
    nsfw = classifier.load_nsfw_classifier(nsfw_model)
    scores, label_peaks = classifier.score_frames(imagenet, frames)
    assessed = imagenet.categories
    if nsfw is not None:
        nsfw_scores, _ = classifier.score_frames(nsfw, frames)
        scores = {category: max(score, nsfw_scores[category]) for category, score in scores.items()}
        assessed |= nsfw.categories

    # IMAGE_CATEGORIES is most severe first. A category no model can see scores 0.0 meaning "unknown": it is
    # reported in not_assessed and never flagged, even with a threshold of 0.
    flagged_categories = [c for c in IMAGE_CATEGORIES if c in assessed and scores[c] >= applied[c]]
    return ImageVerdict(
        flagged=bool(flagged_categories) or matched is not None,
        scores=scores,
        categories=flagged_categories,
        labels=sorted(label_peaks.items(), key=lambda item: item[1], reverse=True)[:TOP_K_LABELS],
        matched_blocklist=matched,
        thresholds=applied,
        model=imagenet.model_id,
        nsfw_model=nsfw.model_id if nsfw else None,
        not_assessed=[c for c in IMAGE_CATEGORIES if c not in assessed],
        frames_checked=len(frames),
    )
