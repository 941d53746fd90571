"""The reports' figures, drawn with matplotlib's object API (no pyplot state), so concurrent requests cannot draw
on each other's axes. matplotlib is imported when a figure is drawn, not with this module: the app imports the
evaluation package to build its Metrics tab, and matplotlib was a second of its start-up."""
from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from .fairness import FairnessReport
from .report import FLAGGED_VIEW, EvaluationReport, class_names

#: Confusion-matrix PNGs kept in memory (least recently shown dropped first): a few views of every cached report.
MAX_CACHED_PNGS = 256


def confusion_figure(report: EvaluationReport, view: str = FLAGGED_VIEW) -> Figure:
    """The view's confusion matrix twice: counts, and normalised so that each true class's row sums to 1."""
    counts = report.confusion(view)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    names = class_names(view)
    from matplotlib.figure import Figure

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


@lru_cache(maxsize=MAX_CACHED_PNGS)
def confusion_png(report: EvaluationReport, view: str = FLAGGED_VIEW) -> bytes:
    """`confusion_figure` as PNG bytes, drawn once per (report, view): encoding is most of a figure's cost, so
    switching back to a view already shown is instant. Reports hash by identity, so the key is this very report."""
    return png_bytes(confusion_figure(report, view))


def fairness_figure(report: FairnessReport) -> Figure:
    """Subgroup, BPSN and BNSP AUC per identity term, lowest BPSN first."""
    frame = report.per_term.sort_values("bpsn_auc")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 8), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(frame))
    for offset, column, label in [(-0.27, "subgroup_auc", "subgroup AUC"), (0.0, "bpsn_auc", "BPSN AUC"),
                                  (0.27, "bnsp_auc", "BNSP AUC")]:
        axes.barh(positions + offset, frame[column], height=0.27, label=label)
    axes.set_yticks(positions, labels=frame["term"])
    axes.set_xlim(min(0.5, float(frame[["subgroup_auc", "bpsn_auc", "bnsp_auc"]].min().min())), 1.0)
    axes.set_xlabel("AUC of the hate score (1 = hate always scores above non-hate)")
    axes.set_title(f"{report.model}: unintended bias per identity term (behavioural suite)")
    axes.legend(loc="lower right")
    return figure


def fairness_png(report: FairnessReport) -> bytes:
    return png_bytes(fairness_figure(report))


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
