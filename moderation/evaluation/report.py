"""EvaluationReport: a model's predictions next to the truth for one dataset, seen per category (multi-label report)
or as one yes/no question, "flagged vs clean"; its confusion matrices and classification tables."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from .reading import AVERAGES_READING, NO_CATEGORIES_READING, plain_reading

#: The view that asks one question of every text: should it be flagged at all?
FLAGGED_VIEW = "flagged vs clean"
REPORT_COLUMNS = ["class", "precision", "recall", "f1-score", "support"]


def class_names(view: str) -> tuple[str, str]:
    """(negative, positive) class names of a view, as the tables, readings and figures call them."""
    return ("clean", "flagged") if view == FLAGGED_VIEW else (f"not {view}", view)


@dataclass(frozen=True, eq=False)
class EvaluationReport:
    """A model's predictions next to the truth for one dataset.

    `y_true` / `y_pred` are (n, len(categories)) 0/1 matrices for the categories the data labels (none when it only
    says flagged or not); `flagged_true` / `flagged_pred` are the per-text yes/no view. Compared and hashed by
    identity (`eq=False`): arrays have no single truth value, and caches key on the report itself.
    """

    dataset: str
    model: str
    categories: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    flagged_true: np.ndarray
    flagged_pred: np.ndarray
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.flagged_true.size)

    @property
    def views(self) -> list[str]:
        """Every yes/no question this report can answer: flagged vs clean, then each labelled category."""
        return [FLAGGED_VIEW, *self.categories]

    def binary(self, view: str = FLAGGED_VIEW) -> tuple[np.ndarray, np.ndarray]:
        """(truth, prediction) as 0/1 vectors for one view."""
        if view == FLAGGED_VIEW:
            return self.flagged_true.astype(int), self.flagged_pred.astype(int)
        if view not in self.categories:
            raise ValueError(f"unknown view {view!r}; this report has: {', '.join(self.views)}")
        k = self.categories.index(view)
        return self.y_true[:, k], self.y_pred[:, k]

    def confusion(self, view: str = FLAGGED_VIEW) -> np.ndarray:
        """2x2 counts [[true negatives, false positives], [false negatives, true positives]]."""
        truth, predicted = self.binary(view)
        return confusion_matrix(truth, predicted, labels=[0, 1])

    def category_table(self) -> pd.DataFrame:
        """Per-category precision, recall, F1 and support, with exact-match accuracy and the averages."""
        if not self.categories:
            return pd.DataFrame(columns=REPORT_COLUMNS)
        accuracy = accuracy_score(self.y_true, self.y_pred)  # multi-label: every category right at once
        return classification_table(self.y_true, self.y_pred, list(self.categories), accuracy)

    def flagged_table(self) -> pd.DataFrame:
        """The binary report: precision, recall, F1 and support for clean and flagged, accuracy and averages."""
        truth, predicted = self.binary(FLAGGED_VIEW)
        return classification_table(truth, predicted, ["clean", "flagged"], accuracy_score(truth, predicted))

    def reading(self, view: str = FLAGGED_VIEW) -> str:
        """The numbers of one view in plain words, then what the report's averages mean (Markdown)."""
        header = f"**{self.model}** on **{self.dataset}**, {self.size} texts. Reading the **{view}** view:"
        bullets = plain_reading(self.confusion(view), *class_names(view), threshold=self.thresholds.get(view))
        averages = AVERAGES_READING if self.categories else f"{NO_CATEGORIES_READING}\n\n{AVERAGES_READING}"
        return f"{header}\n\n{bullets}\n\n{averages}"

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "size": self.size,
            "categories": list(self.categories),
            "category_report": self.category_table().to_dict(orient="records"),
            "flagged_report": self.flagged_table().to_dict(orient="records"),
            "confusion": {view: self.confusion(view).tolist() for view in self.views},
            "thresholds": dict(self.thresholds),
        }


def classification_table(y_true, y_pred, target_names: list[str], accuracy: float) -> pd.DataFrame:
    """sklearn's classification report as a table: one row per class, then accuracy and the averages.

    The accuracy row has only an F1-column value (as sklearn's text report prints it) and the whole support.
    """
    labels = [0, 1] if np.ndim(y_true) == 1 else None  # binary: report both classes even if one never occurs
    if np.ndim(y_true) == 2 and np.shape(y_true)[1] == 1:  # one category: sklearn reads one column as two classes
        y_true, y_pred, labels = np.asarray(y_true)[:, 0], np.asarray(y_pred)[:, 0], [1]
    report = classification_report(y_true, y_pred, labels=labels, target_names=target_names, output_dict=True,
                                   zero_division=0)
    report.pop("accuracy", None)
    rows = [
        [name, values["precision"], values["recall"], values["f1-score"], int(values["support"])]
        for name, values in report.items()
    ]
    rows.insert(len(target_names), ["accuracy", np.nan, np.nan, accuracy, len(y_true)])
    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    return table.round({"precision": 3, "recall": 3, "f1-score": 3})
