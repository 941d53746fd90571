"""Fairness: the behavioural suite's results for one model, with the unintended-bias AUCs per identity term."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pandas as pd

from ..behaviour import bias_metrics, goal_figures, pass_rates, run_suite
from ..text.registry import resolve_model_name


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


_fairness: dict[str, FairnessReport] = {}
_fairness_lock = threading.Lock()


def evaluate_fairness(model: str = "default") -> FairnessReport:
    """Run the behavioural suite (moderation/behaviour.py) with `model`; cached per process."""
    name = resolve_model_name(model)
    with _fairness_lock:
        if name in _fairness:
            return _fairness[name]
    results = run_suite(name)
    identity = results[results["phenomenon"].isin(["identity_neutral", "identity_positive"])]
    flagged = identity.groupby("term")["flagged"].mean().rename("flagged_share")
    per_term = bias_metrics(results).join(flagged, on="term")
    report = FairnessReport(name, goal_figures(results), pass_rates(results).reset_index(), per_term)
    with _fairness_lock:
        return _fairness.setdefault(name, report)
