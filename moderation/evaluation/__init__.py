"""How good is a text model? One package, one room per job:

- `public`: the public datasets (evaluation only): `evaluate_public` reports, and any tool scored through
  `evaluate_predictor` with the SemEval span metric (the benchmarks' path);
- `bundled`: a bundled dataset's test split or a labelled CSV of your own, and the bounded report cache;
- `report`: `EvaluationReport`, its classification tables and confusion matrices, per category or flagged vs clean;
- `reading`: the numbers in plain words, what the averages mean, and the grid-search record in words;
- `figures`: matplotlib figures (object API, no pyplot state) and their PNGs;
- `fairness`: the behavioural suite's bias report.

Used by the app's Metrics tab, `python -m moderation evaluate` and the benchmarks; usable from a notebook.
"""
from __future__ import annotations

from .bundled import MAX_CSV_ROWS, LabelledTexts, evaluate_bundled, evaluate_labelled_csv, read_labelled_csv
from .fairness import FairnessReport, evaluate_fairness
from .figures import confusion_figure, confusion_png, fairness_figure, fairness_png
from .public import (
                     PUBLIC,
                     TOXIC_CATEGORIES,
                     Predictions,
                     Predictor,
                     evaluate_dataset,
                     evaluate_flagging,
                     evaluate_predictor,
                     evaluate_public,
                     run_public_evaluation,
                     span_f1,
                     toxic_offsets,
                     verdict_predictions,
)
from .reading import AVERAGES_READING, grid_search_summary, grid_search_table, plain_reading, training_record
from .report import FLAGGED_VIEW, REPORT_COLUMNS, EvaluationReport, classification_table

__all__ = [
    "AVERAGES_READING", "FLAGGED_VIEW", "MAX_CSV_ROWS", "PUBLIC", "REPORT_COLUMNS", "TOXIC_CATEGORIES",
    "EvaluationReport", "FairnessReport", "LabelledTexts", "Predictions", "Predictor",
    "classification_table", "confusion_figure", "confusion_png", "evaluate_bundled", "evaluate_dataset",
    "evaluate_fairness", "evaluate_flagging", "evaluate_labelled_csv", "evaluate_predictor", "evaluate_public",
    "fairness_figure", "fairness_png", "grid_search_summary", "grid_search_table", "plain_reading",
    "read_labelled_csv", "run_public_evaluation", "span_f1", "toxic_offsets", "training_record",
    "verdict_predictions",
]
