"""How good is a text model? Confusion matrices, classification reports, figures and a plain-language reading.

Used by the app's Metrics tab (and usable from a notebook or the CLI): evaluate a model on a bundled dataset's test
split or on a labelled CSV of your own, then look at it per category (multi-label report) or as one yes/no
question, "flagged vs clean". Reports are cached per (data, model), so switching back to one already computed is
instant; the figures are drawn with matplotlib's object API (no pyplot state), so concurrent requests cannot draw
on each other's axes.
"""
from __future__ import annotations

import hashlib
import io
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from . import datasets
from .datasets import BUNDLED, load_texts
from .taxonomy import TEXT_CATEGORIES
from .text import classical, default_model_name, moderate_text
from .text.registry import DEFAULT, get_text_model, predict_labels, training_data

#: The view that asks one question of every text: should it be flagged at all?
FLAGGED_VIEW = "flagged vs clean"
#: Most rows read from an uploaded CSV: enough for a real test set, bounded for a shared demo.
MAX_CSV_ROWS = 20_000
#: `label` values that mean "nothing wrong with this text".
CLEAN_LABELS = frozenset({"", "0", "clean", "none", "ok", "ham", "neither", "false"})
REPORT_COLUMNS = ["class", "precision", "recall", "f1-score", "support"]
#: Reports kept in memory (oldest dropped first), so a stream of CSV uploads cannot grow the process without bound.
MAX_CACHED_REPORTS = 64

_cache: dict[tuple, "EvaluationReport"] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class EvaluationReport:
    """A model's predictions next to the truth for one dataset.

    `y_true` / `y_pred` are (n, len(categories)) 0/1 matrices for the categories the data labels (none when it only
    says flagged or not); `flagged_true` / `flagged_pred` are the per-text yes/no view.
    """

    dataset: str
    model: str
    categories: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    flagged_true: np.ndarray
    flagged_pred: np.ndarray
    thresholds: dict[str, float] = field(default_factory=dict)
    _pngs: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

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
        bullets = plain_reading(self.confusion(view), *_class_names(view), threshold=self.thresholds.get(view))
        averages = AVERAGES_READING if self.categories else f"{NO_CATEGORIES_READING}\n\n{AVERAGES_READING}"
        return f"{header}\n\n{bullets}\n\n{averages}"

    def confusion_png(self, view: str = FLAGGED_VIEW) -> bytes:
        """`confusion_figure` as PNG bytes, drawn once per view: encoding is most of a figure's cost, so switching
        back to a view already shown is instant."""
        if view not in self._pngs:
            buffer = io.BytesIO()
            confusion_figure(self, view).savefig(buffer, format="png")
            self._pngs[view] = buffer.getvalue()
        return self._pngs[view]

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


def _class_names(view: str) -> tuple[str, str]:
    return ("clean", "flagged") if view == FLAGGED_VIEW else (f"not {view}", view)


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


def confusion_figure(report: EvaluationReport, view: str = FLAGGED_VIEW) -> Figure:
    """The view's confusion matrix twice: counts, and normalised so that each true class's row sums to 1."""
    counts = report.confusion(view)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    names = _class_names(view)
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    figure.suptitle(f"{report.model} on {report.dataset}: {view}")
    panels = [(counts, counts / max(counts.max(), 1), "counts", "{:d}"),
              (normalised, normalised, "normalised by true class", "{:.2f}")]
    for axes, (values, shades, title, fmt) in zip(figure.subplots(1, 2), panels):
        axes.imshow(shades, cmap="Blues", vmin=0, vmax=1)
        axes.set_title(title)
        axes.set_xticks([0, 1], labels=[f"predicted\n{n}" for n in names])
        axes.set_yticks([0, 1], labels=[f"true\n{n}" for n in names])
        for (i, j), value in np.ndenumerate(values):
            axes.text(j, i, fmt.format(value), ha="center", va="center", fontsize=13,
                      color="white" if shades[i, j] > 0.6 else "black")
    return figure


# --- Evaluating ---------------------------------------------------------------------------------------------------


def _cached(key: tuple, compute) -> EvaluationReport:
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    report = compute()  # outside the lock: a slow evaluation must not block cache hits for other reports
    with _cache_lock:
        report = _cache.setdefault(key, report)
        while len(_cache) > MAX_CACHED_REPORTS:
            del _cache[next(iter(_cache))]
        return report


def resolve_model_name(model: str | None) -> str:
    """The registry name behind `model`: "default" (or nothing) becomes the model card's default."""
    return default_model_name() if model in (DEFAULT, None, "") else model


def evaluate_bundled(dataset: str = "texts", model: str = "default") -> EvaluationReport:
    """Score `model` on the test split of a bundled dataset (see `datasets.BUNDLED`); cached per process."""
    if dataset not in BUNDLED:
        raise ValueError(f"unknown bundled dataset {dataset!r}; available: {', '.join(BUNDLED)}")
    name = resolve_model_name(model)
    return _cached(("bundled", dataset, name), lambda: _evaluate_bundled(dataset, name))


def _evaluate_bundled(dataset: str, model: str) -> EvaluationReport:
    text_model = get_text_model(model)
    X, y = training_data("test")
    keep = load_texts("test")["id"].isin(set(BUNDLED[dataset]("test")["id"])).to_numpy()
    predicted = predict_labels(text_model, X[keep])
    return EvaluationReport(
        dataset=f"{dataset} (test split)", model=model, categories=TEXT_CATEGORIES, y_true=y[keep], y_pred=predicted,
        flagged_true=y[keep].any(axis=1), flagged_pred=predicted.any(axis=1), thresholds=dict(text_model.thresholds),
    )


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with their truth: per-category 0/1 columns (`categories`), and whether each should be flagged."""

    texts: list[str]
    categories: tuple[str, ...]
    labels: np.ndarray  # (n, len(categories))
    flagged: np.ndarray  # (n,) bool


def read_labelled_csv(source: str | Path | bytes) -> LabelledTexts:
    """Parse a labelled CSV: a `text` column plus 0/1 columns named after categories, or a `label` column.

    `label` may hold 0/1 (flagged or not) or category names separated by `,`, `;` or `|` ("clean", "none", "ham" or
    empty for clean texts; a list of names is taken as exhaustive, so every category is evaluated).
    Raises ValueError with a message fit for the user when the file does not fit this shape.
    """
    payload = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    try:
        frame = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False, encoding="utf-8",
                            encoding_errors="replace", nrows=MAX_CSV_ROWS + 1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"Could not read the CSV: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if len(frame) > MAX_CSV_ROWS:
        raise ValueError(f"The CSV has more than {MAX_CSV_ROWS:,} rows; evaluate a sample of it.")
    if "text" not in frame.columns:
        raise ValueError(f"The CSV needs a 'text' column; it has: {', '.join(frame.columns) or 'no columns'}.")
    frame = frame[frame["text"].str.strip() != ""]
    if frame.empty:
        raise ValueError("The CSV has no rows with text.")
    texts = frame["text"].tolist()
    categories = tuple(c for c in TEXT_CATEGORIES if c in frame.columns)
    if categories:
        labels = np.column_stack([_binary_column(frame[c], c) for c in categories])
        return LabelledTexts(texts, categories, labels, labels.any(axis=1))
    if "label" not in frame.columns:
        raise ValueError(f"The CSV needs 0/1 columns named after categories ({', '.join(TEXT_CATEGORIES)}) "
                         f"or a 'label' column.")
    values = frame["label"].str.strip().str.lower()
    if values.isin(["0", "1"]).all():
        flagged = _binary_column(frame["label"], "label").astype(bool)
        return LabelledTexts(texts, (), np.zeros((len(texts), 0), dtype=int), flagged)
    names = values.map(lambda v: {n.strip() for n in re.split(r"[,;|]", v)} - CLEAN_LABELS)
    unknown = sorted(set().union(*names) - set(TEXT_CATEGORIES))
    if unknown:
        raise ValueError(f"Unknown label(s) {', '.join(map(repr, unknown[:5]))}; use category names "
                         f"({', '.join(TEXT_CATEGORIES)}), 'clean', or 0/1.")
    labels = np.array([[int(c in row) for c in TEXT_CATEGORIES] for row in names], dtype=int)
    return LabelledTexts(texts, TEXT_CATEGORIES, labels, labels.any(axis=1))


def _binary_column(column: pd.Series, name: str) -> np.ndarray:
    values = column.str.strip()
    bad = sorted(set(values) - {"0", "1"})
    if bad:
        raise ValueError(f"Column {name!r} must hold 0 or 1; found {', '.join(map(repr, bad[:5]))}.")
    return values.astype(int).to_numpy()


def evaluate_labelled_csv(source: str | Path | bytes, model: str = "default",
                          name: str = "your CSV") -> EvaluationReport:
    """Score `model` on a labelled CSV (see `read_labelled_csv`) through `moderate_text`; cached by file content."""
    payload = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    model = resolve_model_name(model)
    key = ("csv", hashlib.sha256(payload).hexdigest(), model)
    return _cached(key, lambda: _evaluate_labelled(read_labelled_csv(payload), model, name))


def _evaluate_labelled(data: LabelledTexts, model: str, name: str,
                       flagged_by: tuple[str, ...] | None = None) -> EvaluationReport:
    """`flagged_by`: the categories whose flags count as "flagged"; by default the labelled ones (a bare flagged/clean
    label is about every category)."""
    verdicts = moderate_text(data.texts, model=model, explain_spans=False)
    flagged_by = set(flagged_by or data.categories or TEXT_CATEGORIES)
    predicted = np.array([[int(c in v.categories) for c in data.categories] for v in verdicts],
                         dtype=int).reshape(len(verdicts), len(data.categories))
    return EvaluationReport(
        dataset=name, model=model, categories=data.categories, y_true=data.labels, y_pred=predicted,
        flagged_true=data.flagged, flagged_pred=np.array([bool(flagged_by & set(v.categories)) for v in verdicts]),
        thresholds=dict(verdicts[0].thresholds),
    )


# --- Public datasets (evaluation only) ----------------------------------------------------------------------------


def _davidson() -> LabelledTexts:
    frame = datasets.fetch_davidson()
    hate = (frame["label"] == 0).to_numpy(dtype=int)[:, None]
    return LabelledTexts(frame["text"].tolist(), ("hate",), hate, frame["flagged"].to_numpy(dtype=bool))


def _sms_spam() -> LabelledTexts:
    frame = datasets.fetch_sms_spam()
    spam = frame["spam"].to_numpy(dtype=bool)
    return LabelledTexts(frame["text"].tolist(), ("spam",), spam.astype(int)[:, None], spam)


def _toxic_spans() -> LabelledTexts:
    frame = datasets.fetch_toxic_spans("test")
    return LabelledTexts(frame["text"].tolist(), (), np.zeros((len(frame), 0), dtype=int),
                         frame["spans"].map(bool).to_numpy(dtype=bool))


#: Public datasets the Metrics tab and `python -m moderation evaluate --dataset` report on, with the truth each gives
#: (the conventions of `moderation.evaluation`): Davidson flagged = hate or offensive, and its hate class as `hate`;
#: SMS spam as `spam` (a legitimate message flagged for anything is a false alarm); Toxic Spans test posts with any
#: toxic span as flagged. A flag in any category counts as flagged, as a user of the verdict would read it.
PUBLIC = {"davidson": _davidson, "sms_spam": _sms_spam, "toxic_spans": _toxic_spans}


def evaluate_public(dataset: str, model: str = "default", limit: int | None = None) -> EvaluationReport:
    """Score `model` on a public dataset (see `PUBLIC`), fetched with its checksum checked or read from
    MODERATION_DATA_MIRROR (`datasets.DatasetUnavailableError` when neither works); `limit` takes the first rows for
    a quick look. Cached per process."""
    if dataset not in PUBLIC:
        raise ValueError(f"unknown public dataset {dataset!r}; available: {', '.join(PUBLIC)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of rows, got {limit}")
    name = resolve_model_name(model)

    def compute():
        data = PUBLIC[dataset]()
        if limit is not None:
            data = LabelledTexts(data.texts[:limit], data.categories, data.labels[:limit], data.flagged[:limit])
        title = f"{dataset} (public, {len(data.texts):,} texts{'' if limit is None else ', first rows only'})"
        return _evaluate_labelled(data, name, title, flagged_by=TEXT_CATEGORIES)

    return _cached(("public", dataset, name, limit), compute)


def evaluate_dataset(dataset: str, model: str = "default") -> EvaluationReport:
    """A bundled dataset's test split or a whole public dataset, by name (the Metrics tab's one dropdown)."""
    return evaluate_public(dataset, model) if dataset in PUBLIC else evaluate_bundled(dataset, model)


# --- GridSearchCV record ------------------------------------------------------------------------------------------


def training_record(model: str = "default") -> dict:
    """What training recorded for `model`: the model card for the classical models; the model's own record for the
    transformer family, whose heads are trained (and their grid searched) on first use."""
    name = resolve_model_name(model)
    record = classical.read_model_card().get("models", {}).get(name)
    if record is None and name not in classical.SPECS:
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


# --- Fairness: the behavioural suite and unintended-bias AUCs ------------------------------------------------------


@dataclass(frozen=True)
class FairnessReport:
    """The behavioural suite's results for one model: goal figures, pass rates and per-term bias metrics."""

    model: str
    goals: dict[str, float]
    pass_rates: pd.DataFrame
    per_term: pd.DataFrame  # term, flagged share of neutral/positive statements, subgroup / BPSN / BNSP AUC

    def reading(self) -> str:
        g = self.goals
        worst = self.per_term.sort_values("bpsn_auc").iloc[0]
        return (f"On {int(self.pass_rates['cases'].sum()):,} behavioural cases written for this project: "
                f"{g['identity statements flagged']:.1%} of neutral or positive statements about a group are "
                f"flagged (spread between groups {g['per-term FPR spread']:.1%}), {g['hateful caught']:.1%} of "
                f"hateful ones are caught, {g['harmful requests flagged']:.1%} of harmful requests and "
                f"{g['safe look-alikes flagged']:.1%} of their safe look-alikes are flagged. Lowest BPSN AUC: "
                f"**{worst['term']}** ({worst['bpsn_auc']:.3f}): below 1, some harmless statements about that group "
                f"score above hateful ones about others. AUCs are over the hate score.")

    def figure_png(self) -> bytes:
        frame = self.per_term.sort_values("bpsn_auc")
        figure = Figure(figsize=(9, 8), layout="constrained")
        axes = figure.subplots()
        positions = np.arange(len(frame))
        for offset, column, label in [(-0.27, "subgroup_auc", "subgroup AUC"), (0.0, "bpsn_auc", "BPSN AUC"),
                                      (0.27, "bnsp_auc", "BNSP AUC")]:
            axes.barh(positions + offset, frame[column], height=0.27, label=label)
        axes.set_yticks(positions, labels=frame["term"])
        axes.set_xlim(min(0.5, float(frame[["subgroup_auc", "bpsn_auc", "bnsp_auc"]].min().min())), 1.0)
        axes.set_xlabel("AUC of the hate score (1 = hate always scores above non-hate)")
        axes.set_title(f"{self.model}: unintended bias per identity term (behavioural suite)")
        axes.legend(loc="lower right")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()


_fairness: dict[str, FairnessReport] = {}


def evaluate_fairness(model: str = "default") -> FairnessReport:
    """Run the behavioural suite (moderation/behaviour.py) with `model`; cached per process."""
    from .behaviour import bias_metrics, goal_figures, pass_rates, run_suite

    name = resolve_model_name(model)
    with _cache_lock:
        if name in _fairness:
            return _fairness[name]
    results = run_suite(name)
    identity = results[results["phenomenon"].isin(["identity_neutral", "identity_positive"])]
    flagged = identity.groupby("term")["flagged"].mean().rename("flagged_share")
    per_term = bias_metrics(results).join(flagged, on="term")
    report = FairnessReport(name, goal_figures(results), pass_rates(results).reset_index(), per_term)
    with _cache_lock:
        return _fairness.setdefault(name, report)
