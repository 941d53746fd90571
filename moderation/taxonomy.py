"""The one taxonomy every modality shares: category names, descriptions, severity order and default thresholds.

Everything else (text models, image mapping, generation guard, UI) reads its categories from here, so a
category is added or renamed in exactly one place.
"""
from __future__ import annotations

from functools import lru_cache
from numbers import Real
from types import MappingProxyType

#: Text categories, most severe first (the order `Verdict.categories` uses).
TEXT_CATEGORIES: tuple[str, ...] = (
    "self_harm",
    "violence",
    "hate",
    "illicit",
    "sexual",
    "harassment",
    "spam",
    "profanity",
)

TEXT_CATEGORY_DESCRIPTIONS = MappingProxyType({
    "harassment": "insults, bullying, demeaning a person",
    "hate": "attacks on people for a protected trait",
    "violence": "threats, incitement, praise of violence, asking how to hurt someone",
    "illicit": "asking for or offering illegal drugs or weapons, theft, fraud, hacking and other crimes",
    "sexual": "sexual content, solicitation",
    "self_harm": "intent, encouragement or instructions for self-harm",
    "profanity": "obscene or vulgar language",
    "spam": "scams, phishing, unsolicited ads",
})

#: The text categories that count as toxicity (the Toxic Spans task, Perspective's TOXICITY), most severe first:
#: every one but spam and requests for crime, which are harmful without being toxic.
TOXIC_CATEGORIES: tuple[str, ...] = tuple(c for c in TEXT_CATEGORIES if c not in {"spam", "illicit"})

#: Image categories, most severe first.
IMAGE_CATEGORIES: tuple[str, ...] = (
    "sexual",
    "violence",
    "weapons",
    "drugs",
    "suggestive",
    "alcohol",
)

IMAGE_CATEGORY_DESCRIPTIONS = MappingProxyType({
    "sexual": "nudity or sexual activity",
    "violence": "blood, injury, fighting",
    "weapons": "guns, knives, military hardware",
    "drugs": "syringes, pills, drug paraphernalia",
    "suggestive": "revealing clothing, swimwear, underwear",
    "alcohol": "alcoholic drinks and bottles",
})

#: Fallback threshold for a category the trained model has no tuned value for.
DEFAULT_THRESHOLD = 0.5

DEFAULT_IMAGE_THRESHOLDS = MappingProxyType({
    "sexual": 0.5,
    "violence": 0.4,
    "weapons": 0.3,
    "drugs": 0.3,
    "suggestive": 0.4,
    "alcohol": 0.4,
})


@lru_cache(maxsize=8)
def _ranks(order: tuple[str, ...]) -> dict[str, int]:
    return {name: i for i, name in enumerate(order)}


def severity_sorted(categories, order: tuple[str, ...] = TEXT_CATEGORIES) -> list[str]:
    """Sort category names most severe first, following the taxonomy's order."""
    rank = _ranks(tuple(order))
    return sorted(categories, key=lambda c: rank.get(c, len(rank)))


def resolve_thresholds(overrides, defaults, categories: tuple[str, ...]) -> dict[str, float]:
    """Merge caller overrides (a float for all categories, or a partial mapping) over the defaults.

    Raises ValueError on an unknown category or a value outside [0, 1], so a typo never silently
    disables a category.
    """
    merged = {c: float(defaults.get(c, DEFAULT_THRESHOLD)) for c in categories}
    if overrides is None:
        return merged
    if isinstance(overrides, bool):
        raise ValueError(f"thresholds must be a number in [0, 1] or a mapping category -> number, got {overrides!r}")
    if isinstance(overrides, Real):
        overrides = {c: overrides for c in categories}
    for name, value in dict(overrides).items():
        if name not in merged:
            raise ValueError(f"unknown category {name!r}; expected one of {', '.join(categories)}")
        if isinstance(value, bool) or not isinstance(value, Real):  # True is not a threshold of 1.0
            raise ValueError(f"threshold for {name!r} must be a number in [0, 1], got {value!r}")
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold for {name!r} must be in [0, 1], got {value}")
        merged[name] = value
    return merged
