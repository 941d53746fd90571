"""The cascade's trade-off: share of texts sent to `finetuned`, macro-F1 and texts/s (spans on), per band width.

One run, two parts:
1. Band choice, on our own data only: the validation slice of the TRAIN split (the rows `finetuned` held out for
   its thresholds). The classical first stage is refitted without those rows (its recorded parameters and
   thresholds), so its probabilities there are out-of-sample like they will be on new text. The band chosen is the
   one with the best validation macro-F1 among those that send at most `--max-sent` of the validation texts on
   (the narrower on a tie). The budget is set beforehand, not fitted: the cascade exists to keep close to the
   classical model's speed, and with a fine-tuned model better than the classical one the widest band always wins
   on quality alone (every text sent on is the fine-tuned model).
2. Our test split, for every band and for each stage alone: share sent on, macro-F1 (model probabilities and
   thresholds, as the model card scores every model) and texts/s of `moderate_text` with spans on, in this process.

    python -m benchmarks.cascade [--bands 0.02 0.05 0.1 0.2 0.3] [--max-sent 0.05] [--write-card]

`--write-card` records the chosen band and both tables under "cascade" in moderation/data/model_card.json.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from moderation import moderate_text
from moderation.datasets import load_texts
from moderation.identity import with_counterfactuals
from moderation.text import registry
from moderation.text.cache import training_data
from moderation.text.cascade import CascadeModel
from moderation.text.classical import SPECS, fit_model
from moderation.text.finetuned import is_validation, macro_f1
from moderation.text.model_card import read_model_card, write_model_card

BANDS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
#: The share of texts the cascade may send to the fine-tuned model (on the validation slice), fixed beforehand:
#: at 5% the second stage costs about as much as the first (a fine-tuned pass is ~25x a classical one).
MAX_SENT = 0.05


def validation_first_stage(name: str):
    """(first stage refitted without the validation slice, validation frame, validation labels)."""
    X, y = training_data("train")
    ids = with_counterfactuals(load_texts("train"))["id"]  # the same rows, in the same order, as training_data
    held_out = is_validation(ids.str.removesuffix("~swap"))
    original = ~ids.str.endswith("~swap").to_numpy()
    record = read_model_card()["models"][name]
    refit = fit_model(SPECS[name], record["best_params"], X[~held_out], y[~held_out], record["thresholds"])
    rows = held_out & original
    return refit, X[rows].reset_index(drop=True), y[rows]


def cascade_scores(cascade: CascadeModel, first_proba: np.ndarray, second_proba: np.ndarray):
    """(share sent on, cascade probabilities) from both stages' probabilities on the same texts."""
    sent = cascade.uncertain(first_proba)
    proba = np.where(sent[:, None], cascade.to_first_scale(second_proba), first_proba)
    return float(sent.mean()), proba


def texts_per_second(model_name: str, texts: list[str]) -> float:
    moderate_text(texts[:20], model=model_name)  # warm-up
    started = time.perf_counter()
    moderate_text(texts, model=model_name)
    return len(texts) / (time.perf_counter() - started)


def choose_band(validation: dict[float, dict], max_sent: float) -> float:
    """The band with the best validation macro-F1 among those sending at most `max_sent` on (the narrowest on a
    tie); the narrowest band when none is within the budget."""
    affordable = [b for b in sorted(validation) if validation[b]["sent_on"] <= max_sent] or [min(validation)]
    return max(affordable, key=lambda b: validation[b]["f1_macro"])  # max keeps the first (narrowest) of a tie


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bands", nargs="+", type=float, default=list(BANDS))
    parser.add_argument("--max-sent", type=float, default=MAX_SENT,
                        help="largest share of validation texts the chosen band may send to finetuned")
    parser.add_argument("--write-card", action="store_true", help="record the chosen band in the model card")
    args = parser.parse_args(argv)

    first_name = registry.default_model_name()
    first, second = registry.get_text_model(first_name), registry.get_text_model("finetuned")

    refit, X_val, y_val = validation_first_stage(first_name)
    val_first, val_second = refit.predict_proba(X_val), second.predict_proba(X_val)
    second_val_f1 = macro_f1(y_val, val_second, second.thresholds)[0]
    print(f"validation slice of the train split: {len(y_val)} texts; {first_name} (refitted without them) "
          f"macro-F1 {macro_f1(y_val, val_first, first.thresholds)[0]:.4f}, finetuned {second_val_f1:.4f}")
    print(f"\n{'band':>6} {'sent on':>8} {'val macro-F1':>13}")
    validation = {}
    for band in args.bands:
        share, proba = cascade_scores(CascadeModel("cascade", refit, second, band), val_first, val_second)
        validation[band] = {"sent_on": round(share, 4), "f1_macro": macro_f1(y_val, proba, first.thresholds)[0]}
        print(f"{band:>6} {share:>8.1%} {validation[band]['f1_macro']:>13.4f}")
    chosen = choose_band(validation, args.max_sent)
    print(f"chosen band: {chosen} (best validation macro-F1 sending at most {args.max_sent:.0%} on)")

    X_test, y_test = training_data("test")
    test_texts = load_texts("test")["text"].tolist()
    test_first, test_second = first.predict_proba(X_test), second.predict_proba(X_test)
    rows = {first_name: (0.0, macro_f1(y_test, test_first, first.thresholds)[0],
                         texts_per_second(first_name, test_texts)),
            "finetuned": (1.0, macro_f1(y_test, test_second, second.thresholds)[0],
                          texts_per_second("finetuned", test_texts))}
    for band in args.bands:
        name = f"cascade-band{band}"
        registry.EXTRA_MODELS[name] = lambda band=band: CascadeModel("cascade", first, second, band)
        share, proba = cascade_scores(CascadeModel("cascade", first, second, band), test_first, test_second)
        rows[name] = (share, macro_f1(y_test, proba, first.thresholds)[0], texts_per_second(name, test_texts))
    finetuned_f1, finetuned_speed = rows["finetuned"][1], rows["finetuned"][2]
    print(f"\nour test split ({len(test_texts)} texts), moderate_text with spans on, this process:")
    print(f"{'model':<20} {'sent on':>8} {'macro-F1':>9} {'of finetuned':>13} {'texts/s':>8} {'x finetuned':>12}")
    for name, (share, f1, speed) in rows.items():
        print(f"{name:<20} {share:>8.1%} {f1:>9.4f} {f1 / finetuned_f1:>13.1%} {speed:>8.1f} "
              f"{speed / finetuned_speed:>12.1f}")

    if args.write_card:
        card = read_model_card()
        card["models"]["cascade"] = {
            "title": f"Cascade: {first_name} for every text, finetuned for the uncertain ones",
            "first": first_name, "second": "finetuned", "band": chosen,
            "band_rule": f"best macro-F1 on the train validation slice ({len(y_val)} texts, {first_name} refitted "
                         f"without them) among bands sending at most {args.max_sent:.0%} of them on, narrower on a "
                         f"tie",
            "validation": {str(b): v for b, v in validation.items()},
            "test": {name: {"sent_on": round(s, 4), "f1_macro": f, "texts_per_s_spans_on": round(v, 1)}
                     for name, (s, f, v) in rows.items()},
            "test_f1_macro": rows[f"cascade-band{chosen}"][1],
            "thresholds": first.thresholds,  # the scale the cascade's verdicts use (the app's sliders start there)
        }
        write_model_card(card)
        print(f"model card: cascade band {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
