"""Build moderation/data/texts.csv from the hand-written parts in moderation/data/parts/.

Drops exact duplicates (after normalisation), gives every row an id derived from its own text, draws a stratified
80/20 split, then moves any test row that is a near-duplicate of a train row (word-trigram Jaccard >= 0.5) into
train, so the test split measures generalisation rather than memory. Prints the figures the datasheet reports.

A row's id and split depend on its text, not on its position: within each (source, primary label) group the rows
whose seeded digests are lowest form the test share, so adding a part moves only the rows at a group's boundary
and model scores stay comparable from one data version to the next.

    python -m moderation.data.build
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd

from moderation.datasets import LABEL_COLUMNS
from moderation.identity import IDENTITY_TERMS, mentioned_terms
from moderation.normalize import normalize_text

DATA = Path(__file__).resolve().parent
TEST_SHARE = 0.2
SEED = 20261126
NEAR_DUPLICATE = 0.5
_NON_WORD = re.compile(r"[^a-z0-9]+")


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Word n-grams of the normalised text (letters and digits only); short texts give their whole word list."""
    words = [w for w in _NON_WORD.split(normalize_text(text)) if w]
    if len(words) < n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


def near_duplicate_pairs(left: list[str], right: list[str],
                         threshold: float = NEAR_DUPLICATE) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) for pairs whose word-trigram Jaccard similarity is at least `threshold`."""
    right_sets = [shingles(t) for t in right]
    index: dict[str, list[int]] = {}
    for j, grams in enumerate(right_sets):
        for gram in grams:
            index.setdefault(gram, []).append(j)
    pairs = []
    for i, text in enumerate(left):
        grams = shingles(text)
        candidates = {j for gram in grams for j in index.get(gram, ())}
        for j in candidates:
            union = len(grams | right_sets[j])
            score = len(grams & right_sets[j]) / union if union else 0.0
            if score >= threshold:
                pairs.append((i, j, score))
    return pairs


def draw_split(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every row of `frame` (text, source, labels; no duplicates) its id and its split, from its own text."""
    frame = frame.reset_index(drop=True)
    digest = frame["text"].map(lambda text: hashlib.sha256(f"{SEED}:{normalize_text(text)}".encode()).hexdigest())
    frame["id"] = frame["source"] + "-" + digest.str.slice(0, 10)
    primary = frame[LABEL_COLUMNS].idxmax(axis=1).where(frame[LABEL_COLUMNS].any(axis=1), "clean")
    frame["split"] = "train"
    for _, group in digest.groupby([frame["source"], primary]):
        n_test = int(round(len(group) * TEST_SHARE))
        frame.loc[group.sort_values().index[:n_test], "split"] = "test"
    return frame


def apply_adjudications(frame: pd.DataFrame) -> pd.DataFrame:
    """Labels decided after the second, independent labelling (`adjudicated.csv`: text and every label) replace
    the part's labels for the same text."""
    path = DATA / "adjudicated.csv"
    if not path.is_file():
        return frame
    decided = pd.read_csv(path, dtype={"text": str}, keep_default_na=False).set_index("text")[LABEL_COLUMNS]
    hit = frame["text"].isin(decided.index)
    frame.loc[hit, LABEL_COLUMNS] = decided.loc[frame.loc[hit, "text"], LABEL_COLUMNS].to_numpy()
    return frame


def identity_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per identity term: how many texts mention it, and what share of them is hateful (the datasheet's table)."""
    mentions = frame["text"].map(mentioned_terms)
    rows = []
    for term in IDENTITY_TERMS:
        hit = mentions.map(lambda found: term.name in found)
        rows.append({"term": term.name, "kind": term.kind, "texts": int(hit.sum()),
                     "hateful": int(frame.loc[hit, "hate"].sum()),
                     "hateful_share": round(float(frame.loc[hit, "hate"].mean()), 3) if hit.any() else 0.0})
    return pd.DataFrame(rows)


def main() -> None:
    parts = [pd.read_csv(p, dtype={"text": str, "source": str}, keep_default_na=False)
             for p in sorted((DATA / "parts").glob("*.csv"))]
    # Parts written before a category existed (illicit) carry no column for it: 0 there, as they were labelled.
    frame = pd.concat(parts, ignore_index=True).fillna({c: 0 for c in LABEL_COLUMNS})
    frame[LABEL_COLUMNS] = frame[LABEL_COLUMNS].astype(int)
    frame = apply_adjudications(frame)
    frame["text"] = frame["text"].str.strip()
    frame = frame[frame["text"] != ""]
    key = frame["text"].map(normalize_text)
    exact = int(key.duplicated().sum())
    frame = draw_split(frame[~key.duplicated()])

    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    pairs = near_duplicate_pairs(test["text"].tolist(), train["text"].tolist(), NEAR_DUPLICATE)
    moved = sorted({test.index[i] for i, _, _ in pairs})
    frame.loc[moved, "split"] = "train"
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    remaining = near_duplicate_pairs(test["text"].tolist(), train["text"].tolist(), NEAR_DUPLICATE)

    frame = frame[["id", "text", "source", "split", *LABEL_COLUMNS]]
    frame.to_csv(DATA / "texts.csv", index=False)
    clean = ~frame[LABEL_COLUMNS].any(axis=1)
    print(f"rows {len(frame)} (exact duplicates dropped: {exact}); train {len(train)}, test {len(test)}")
    print(f"clean rows {int(clean.sum())} ({clean.mean():.1%})")
    print(f"test rows moved to train as near-duplicates (trigram Jaccard >= {NEAR_DUPLICATE}): {len(moved)}; "
          f"remaining pairs: {len(remaining)}")
    print(frame.groupby("split")[LABEL_COLUMNS].sum().T.assign(total=lambda d: d.sum(axis=1)).to_string())
    print(frame.groupby(["source", "split"]).size().unstack().to_string())
    table = identity_table(frame)
    print(f"hate base rate {frame['hate'].mean():.3f}; per identity term:")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
