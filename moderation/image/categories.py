"""Which classifier labels count towards which image category: the one reviewed ImageNet table and the NSFW table.

A category's score is the probability mass of the labels mapped to it, so an image the classifier splits between
"rifle" (0.3) and "assault rifle, assault gun" (0.3) scores 0.6 for weapons.

Limits, honestly: ImageNet-1k is an object-recognition dataset, not a moderation one.
- It can see weapons (firearms, cannon, missiles, tanks, warplanes), drug paraphernalia (syringes, pill bottles),
  alcohol (bottles and glasses) and swimwear/underwear (our `suggestive`).
- It has no class for nudity, sexual activity, blood, injury or fighting: `sexual` needs the optional NSFW model,
  and `violence` rests on a single class (guillotine), i.e. it is effectively not assessed.
- It sees objects, not intent: a rocket launch scores as "missile", a museum tank as a weapon, a wine bottle on a
  dinner table as alcohol; knives and drugs other than syringes and pill bottles are invisible (ImageNet has no
  knife, cannabis or cigarette class), and a beach photo scores `suggestive`. Tune thresholds for your platform.
Left out on purpose: military vehicles with no obvious armament (half track, aircraft carrier, submarine), armour
(bulletproof vest, chain mail, shield), tools that can hurt (hatchet, cleaver, chain saw), "bow" (mostly sport
archery), "miniskirt" and "eggnog" (mostly harmless).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, Mapping

#: ImageNet-1k classes per image category, spelled exactly as in google/vit-base-patch16-224's `id2label`.
IMAGENET_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "sexual": (),
    "violence": ("guillotine",),
    "weapons": (
        "assault rifle, assault gun",
        "revolver, six-gun, six-shooter",
        "rifle",
        "holster",
        "scabbard",
        "cannon",
        "missile",
        "projectile, missile",
        "tank, army tank, armored combat vehicle, armoured combat vehicle",
        "warplane, military plane",
    ),
    "drugs": ("syringe", "pill bottle"),
    "suggestive": (
        "bikini, two-piece",
        "brassiere, bra, bandeau",
        "maillot",
        "maillot, tank suit",
        "swimming trunks, bathing trunks",
    ),
    "alcohol": ("beer bottle", "beer glass", "wine bottle", "red wine", "whiskey jug", "cocktail shaker"),
})

#: Labels of hub NSFW classifiers: Falconsai/nsfw_image_detection ("normal", "nsfw") and the five-class
#: GantMan-style models ("drawings", "hentai", "neutral", "porn", "sexy"). Labels not listed count for nothing.
NSFW_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "sexual": ("nsfw", "porn", "hentai"),
    "suggestive": ("sexy",),
})


def synonyms(label: str) -> list[str]:
    """A label's comma-separated names, normalised: "Assault_Rifle, assault gun" -> ["assault rifle", "assault gun"]."""
    return [name.strip().lower().replace("_", " ") for name in label.split(",") if name.strip()]


def map_labels(labels: Iterable[str], table: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """label -> category for each of a model's labels that `table` covers, matched on any of its synonyms.

    Matching synonyms rather than whole strings lets the table work for checkpoints that spell ImageNet labels
    differently ("assault rifle", "assault_rifle", "assault rifle, assault gun").
    """
    category_of = {
        name: category for category, entries in table.items() for entry in entries for name in synonyms(entry)
    }
    mapped = {}
    for label in labels:
        category = next((category_of[name] for name in synonyms(label) if name in category_of), None)
        if category is not None:
            mapped[label] = category
    return mapped


def category_scores(probabilities: Mapping[str, float], label_categories: Mapping[str, str],
                    categories: tuple[str, ...]) -> dict[str, float]:
    """Each category's score: the summed probability of the labels mapped to it (0.0 when none is)."""
    scores = dict.fromkeys(categories, 0.0)
    for label, probability in probabilities.items():
        category = label_categories.get(label)
        if category is not None:
            scores[category] = min(1.0, scores[category] + probability)
    return scores
