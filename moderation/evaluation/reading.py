"""The numbers in plain words: a confusion matrix read aloud, what the report's averages mean, and what the grid
search recorded for a model (a table and a paragraph)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..text import classical
from ..text.model_card import model_record
from ..text.registry import get_text_model, resolve_model_name


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "undefined"


def plain_reading(matrix: np.ndarray, negative: str, positive: str, threshold: float | None = None) -> str:
    """Accuracy, precision, recall, F1 and support explained with the counts behind them."""
    (tn, fp), (fn, tp) = np.asarray(matrix, dtype=int).tolist()
    total, predicted, actual = tn + fp + fn + tp, tp + fp, tp + fn
    lines = [
        f"- **Accuracy:** the model was right about {tn + tp} of {total} texts, {_share(tn + tp, total)}. "
        f"Careful: {tn + fp} of them are {negative}, so always answering \"{negative}\" would already score "
        f"{_share(tn + fp, total)}: judge accuracy against that baseline, not against zero.",
    ]
    if predicted:
        lines.append(f"- **Precision:** it called {predicted} texts {positive}; {tp} of them really were, "
                     f"{_share(tp, predicted)}. The other {fp} are false alarms.")
    else:
        lines.append(f"- **Precision:** it called no text {positive}, so precision is undefined (shown as 0).")
    if actual:
        lines.append(f"- **Recall:** of the {actual} texts that really are {positive}, it caught {tp}, "
                     f"{_share(tp, actual)}; it missed {fn}.")
    else:
        lines.append(f"- **Recall:** no text here is really {positive}, so recall is undefined (shown as 0).")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    lines += [
        f"- **F1 = {f1:.3f}:** the harmonic mean of precision and recall, high only when both are.",
        f"- **Support** is how many true examples each class has: {actual} {positive}, {tn + fp} {negative}.",
    ]
    if threshold is not None:
        lines.append(f"- A text counts as {positive} when its score is at least **{threshold:.2f}**, a threshold "
                     f"tuned on our training data; raising it trades recall for precision.")
    return "\n".join(lines)


AVERAGES_READING = (
    "**Macro average** gives every class the same weight, so a rare category counts as much as a common one; "
    "**weighted average** weights each class by its support; **micro average** pools every decision; "
    "**samples average** (per-category table only) scores each text's set of categories against its true set and "
    "averages over texts. In the per-category table, accuracy is exact match: every category right for a text at once."
)
#: Said instead of a per-category report when the labels say only flagged or not.
NO_CATEGORIES_READING = ("There is no per-category report: these labels say only whether a text should be flagged "
                         "(a 0/1 `label` column), not in which category, so only the flagged-vs-clean report applies.")


# --- GridSearchCV record ------------------------------------------------------------------------------------------


def training_record(model: str = "default") -> dict:
    """What training recorded for `model`: the model card for the classical models; the model's own record for the
    transformer family, whose heads are trained (and their grid searched) on first use."""
    name = resolve_model_name(model)
    record = model_record(name)
    if not record and name not in classical.SPECS:
        record = get_text_model(name).record
    return record or {}


def grid_search_table(model: str = "default") -> pd.DataFrame:
    """Every parameter combination GridSearchCV tried for `model` (from the model card), best first."""
    record = training_record(model)
    rows = [{**result["params"], **{k: v for k, v in result.items() if k != "params"}}
            for result in record.get("cv_results", [])]
    if not rows:
        return pd.DataFrame()
    scores = ["mean_f1_macro", "std_f1_macro", "mean_fit_seconds"]
    table = pd.DataFrame(rows).sort_values("mean_f1_macro", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table[[c for c in table.columns if c not in scores] + [c for c in scores if c in table.columns]]


def grid_search_summary(model: str = "default") -> str:
    """Best parameters and scores of `model`'s grid search, in plain words (Markdown)."""
    name = resolve_model_name(model)
    record = training_record(model)
    if not record.get("cv_results"):
        if name not in classical.SPECS:
            return (f"**{record.get('title', name)}** has no grid search: it is a published classifier whose "
                    f"thresholds were tuned on our training split.")
        return (f"No GridSearchCV record for **{name}** in the model card yet: run "
                f"`python -m moderation train {name}` to search its grid and record the results.")
    best = ", ".join(f"`{k.split('__')[-1]}={v}`" for k, v in record["best_params"].items())
    return (
        f"**{record.get('title', name)}.** GridSearchCV tried {len(record['cv_results'])} parameter combination(s), "
        f"each scored by macro-F1 averaged over {classical.CV_FOLDS} cross-validation folds of the training split. "
        f"Best: {best} with mean CV macro-F1 **{record['cv_best_f1_macro']:.3f}**; on the held-out test split the "
        f"chosen model scores **{record['test_f1_macro']:.3f}**. A test score close to the CV score means the "
        f"search did not just fit noise in the training data."
    )
