"""The behavioural suite (moderation/behaviour.py) for every named model: pass rate per phenomenon, the goal
figures, false-alarm rate per identity term, and the unintended-bias AUCs per term.

    python -m benchmarks.behaviour --models default svm transformer [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import time

from moderation.behaviour import bias_metrics, goal_figures, pass_rates, run_suite
from moderation.hub import ModelUnavailableError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    saved = {}
    for model in args.models:
        started = time.perf_counter()
        try:
            results = run_suite(model)
        except ModelUnavailableError as exc:
            print(f"## {model}: unavailable ({exc})\n")
            continue
        identity = results[results["phenomenon"].isin(["identity_neutral", "identity_positive"])]
        per_term = identity.groupby("term")["flagged"].mean().rename("fpr").to_frame()
        bias = bias_metrics(results).set_index("term").join(per_term)
        print(f"## {model} ({len(results):,} cases, {time.perf_counter() - started:.1f} s)\n")
        print(pass_rates(results).to_string(float_format="%.3f"), "\n")
        goals = goal_figures(results)
        print("\n".join(f"- {name}: {value:.3f}" for name, value in goals.items()), "\n")
        print(bias.sort_values("fpr", ascending=False).to_string(float_format="%.3f"), "\n")
        print(f"mean subgroup AUC {bias['subgroup_auc'].mean():.3f}, BPSN {bias['bpsn_auc'].mean():.3f}, "
              f"BNSP {bias['bnsp_auc'].mean():.3f}\n")
        saved[model] = {"pass_rates": pass_rates(results).reset_index().to_dict("records"), "goals": goals,
                        "per_term": bias.reset_index().to_dict("records")}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(saved, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
