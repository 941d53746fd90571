"""The text verdict: plain dataclasses that serialise to JSON, shared by the API, the CLI, the app and generation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Span:
    """`text[start:end]` of the ORIGINAL text is the part that drove `label`; `score` is how strongly (0..1)."""

    start: int
    end: int
    label: str
    score: float
    source: str = "lexicon"  # "lexicon", "model" (occlusion of the model's input) or "blocklist"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TextVerdict:
    """Scores for every category, the flagged ones (most severe first) and the spans that explain them."""

    text: str
    flagged: bool
    scores: dict[str, float]
    categories: list[str]
    spans: list[Span] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    model: str = ""
    truncated: bool = False

    def to_dict(self) -> dict:
        data = asdict(self)
        data["spans"] = [dict(s, text=self.text[s["start"]:s["end"]]) for s in data["spans"]]
        return data
