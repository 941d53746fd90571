"""Running BERT-family checkpoints fast on a CPU: text embeddings (mean pooling) and sequence-classifier scores.

The transformers pipeline split, each step small enough to test and to time on its own:
preprocess (tokenise each text once, long texts cut into windows) -> forward (windows in length-sorted batches,
each padded only to its own longest window, under `torch.inference_mode`) -> postprocess (per text: the mean
over all its tokens for embeddings, the highest window for classifier scores).

Why this shape: tweets are ~30 tokens, so padding every batch to 128 spends most of the time on [PAD]; sorting
by length before batching removes that waste without changing an output value (4.6x the naive loop's texts/s,
benchmarks/transformer_speed.py). bfloat16 weights are 7x slower on CPUs without native bf16 (AVX2 only), so
weights stay float32. Windows (rather than truncation) let a long post be judged on all of its text, not only
its first 256 tokens.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from ..hub import load_cached

#: Tokens per window, [CLS] and [SEP] included: the length all-MiniLM-L6-v2 was trained on.
WINDOW_TOKENS = 256
#: Windows per forward pass: on 2 cores 32 and 128 measured no faster (benchmarks/transformer_speed.py).
BATCH_SIZE = 64


@dataclass(frozen=True)
class Checkpoint:
    """A tokenizer and a model in eval mode; `fingerprint` changes whenever the weights or the vocabulary do."""

    model_id: str
    tokenizer: object
    model: torch.nn.Module
    fingerprint: str
    classifier: bool = False  # a sequence-classification head (logits) rather than a bare encoder (token vectors)


@dataclass(frozen=True)
class Windows:
    """Token ids of every window, and which text each window belongs to."""

    input_ids: list[list[int]]
    owner: np.ndarray
    n_texts: int


def _fingerprint(model: torch.nn.Module, tokenizer) -> str:
    """A digest of every weight and of the tokenizer: cached heads are reused only for exactly this checkpoint."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    return digest.hexdigest()[:16]


def read_checkpoint(source: str, *, classifier: bool = False, dtype: torch.dtype = torch.float32) -> Checkpoint:
    """Load `source` (hub id or directory) with the Auto classes, uncached; `load_checkpoint` is the cached path."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    model_class = AutoModelForSequenceClassification if classifier else AutoModel
    model = model_class.from_pretrained(source, dtype=dtype).eval()
    return Checkpoint(source, tokenizer, model, _fingerprint(model, tokenizer), classifier)


def load_checkpoint(kind: str, model_id: str, env_var: str, *, classifier: bool = False) -> Checkpoint:
    """`read_checkpoint` once per process, with `ModelUnavailableError` naming `env_var` when loading fails."""
    return load_cached(kind, model_id, env_var, lambda source: read_checkpoint(source, classifier=classifier))


def preprocess(checkpoint: Checkpoint, texts: list[str]) -> Windows:
    """Tokenise every text once; a text longer than a window (WINDOW_TOKENS, or less if the model's positions end
    sooner) becomes several windows."""
    window = min(WINDOW_TOKENS, checkpoint.model.config.max_position_embeddings)
    encoded = checkpoint.tokenizer(texts, truncation=True, max_length=window, return_overflowing_tokens=True,
                                   return_attention_mask=False, return_token_type_ids=False)
    return Windows(encoded["input_ids"], np.asarray(encoded["overflow_to_sample_mapping"], dtype=int), len(texts))


def _token_sums(output, mask: torch.Tensor) -> torch.Tensor:
    """Sum of each window's token vectors (padding excluded): the numerator of mean pooling."""
    hidden = output.last_hidden_state.float()  # sum in float32 even when the weights are bfloat16
    return (hidden * mask.unsqueeze(-1)).sum(dim=1)


def _logits(output, mask: torch.Tensor) -> torch.Tensor:
    return output.logits


def forward(checkpoint: Checkpoint, windows: Windows, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """One float32 row per window (token sums for an encoder, logits for a classifier), in the windows' order."""
    reduce: Callable = _logits if checkpoint.classifier else _token_sums
    lengths = np.array([len(ids) for ids in windows.input_ids])
    order = np.argsort(lengths, kind="stable")
    pad_id = checkpoint.tokenizer.pad_token_id or 0
    rows: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = int(lengths[batch].max())
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, index in enumerate(batch):
                input_ids[row, :lengths[index]] = torch.tensor(windows.input_ids[index])
                mask[row, :lengths[index]] = 1
            values = reduce(checkpoint.model(input_ids=input_ids, attention_mask=mask), mask).float().numpy()
            if rows is None:
                rows = np.zeros((len(order), values.shape[1]), dtype=np.float32)
            rows[batch] = values
    return rows


def mean_pool(windows: Windows, token_sums: np.ndarray) -> np.ndarray:
    """Per text: the mean over all its tokens (across windows), L2-normalised like sentence-transformers does."""
    totals = np.zeros((windows.n_texts, token_sums.shape[1]), dtype=np.float64)
    np.add.at(totals, windows.owner, token_sums)
    counts = np.bincount(windows.owner, weights=[len(ids) for ids in windows.input_ids], minlength=windows.n_texts)
    means = totals / counts[:, None]
    return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def label_probabilities(checkpoint: Checkpoint, windows: Windows, logits: np.ndarray) -> np.ndarray:
    """Per text and label: the highest window's probability (one toxic paragraph flags a long post)."""
    if checkpoint.model.config.problem_type == "single_label_classification":
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    else:  # multi-label checkpoints (unitary/toxic-bert) and those that do not say: independent sigmoids
        probabilities = 1.0 / (1.0 + np.exp(-logits))
    best = np.zeros((windows.n_texts, logits.shape[1]), dtype=np.float64)
    np.maximum.at(best, windows.owner, probabilities)
    return best


def _run(checkpoint: Checkpoint, texts, postprocess: Callable, width: int, batch_size: int) -> np.ndarray:
    """Preprocess -> forward -> postprocess over the distinct texts only, then spread back to every input."""
    texts = [str(t) for t in texts]
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return np.zeros((0, width), dtype=np.float32)
    windows = preprocess(checkpoint, distinct)
    values = postprocess(windows, forward(checkpoint, windows, batch_size))
    position = {text: i for i, text in enumerate(distinct)}
    return values[[position[t] for t in texts]]


def embed(checkpoint: Checkpoint, texts, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(n, hidden_size) unit-length mean-pooled embeddings, one row per text, in input order."""
    return _run(checkpoint, texts, mean_pool, checkpoint.model.config.hidden_size, batch_size)


def classify(checkpoint: Checkpoint, texts, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(n, num_labels) probabilities in `id2label` order, one row per text, in input order."""
    return _run(checkpoint, texts, lambda w, logits: label_probabilities(checkpoint, w, logits),
                checkpoint.model.config.num_labels, batch_size)


def library_versions() -> str:
    """What a cached head depends on besides the checkpoint: the libraries that turn text into vectors."""
    return f"torch{torch.__version__}-transformers{transformers.__version__}"
