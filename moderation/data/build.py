"""Build moderation/data/texts.csv from the hand-written parts in moderation/data/parts/.

Drops exact duplicates (after normalisation), gives every row a stable id, draws a stratified 80/20 split
(seeded), then moves any test row that is a near-duplicate of a train row (word-trigram Jaccard >= 0.5) into
train, so the test split measures generalisation rather than memory. Prints the figures the datasheet reports.

    python -m moderation.data.build
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from moderation.datasets import LABEL_COLUMNS, near_duplicate_pairs
from moderation.normalize import normalize_text

DATA = Path(__file__).resolve().parent
TEST_SHARE = 0.2
SEED = 20261126
NEAR_DUPLICATE = 0.5


def main() -> None:
    parts = [pd.read_csv(p, dtype={"text": str, "source": str}, keep_default_na=False) for p in sorted((DATA / "parts").glob("*.csv"))]
    frame = pd.concat(parts, ignore_index=True)
    frame["text"] = frame["text"].str.strip()
    frame = frame[frame["text"] != ""]
    key = frame["text"].map(normalize_text)
    exact = int(key.duplicated().sum())
    frame = frame[~key.duplicated()].reset_index(drop=True)
    frame["id"] = frame.groupby("source").cumcount().map("{:04d}".format).radd(frame["source"] + "-")

    rng = np.random.default_rng(SEED)
    primary = frame[LABEL_COLUMNS].idxmax(axis=1).where(frame[LABEL_COLUMNS].any(axis=1), "clean")
    frame["split"] = "train"
    for _, group in frame.groupby([frame["source"], primary]):
        n_test = int(round(len(group) * TEST_SHARE))
        frame.loc[rng.permutation(group.index.to_numpy())[:n_test], "split"] = "test"

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
    print(f"test rows moved to train as near-duplicates (trigram Jaccard >= {NEAR_DUPLICATE}): {len(moved)}; remaining pairs: {len(remaining)}")
    print(frame.groupby("split")[LABEL_COLUMNS].sum().T.assign(total=lambda d: d.sum(axis=1)).to_string())
    print(frame.groupby(["source", "split"]).size().unstack().to_string())


if __name__ == "__main__":
    main()
