"""What a user interface needs around the API, without any UI toolkit: verdicts formatted for display, form inputs
turned into API arguments, and file-shaped jobs (a CSV to moderate, an image to add to the blocklist).

`app.py` (Gradio) stays a thin layer of widgets over these functions, and the same behaviour can be tested, or
reused by another front end, without starting a web server. Nothing here imports gradio, torch or transformers.
"""
from __future__ import annotations

import csv
import ctypes
import ctypes.util
import io
import os
import re
import tempfile
from itertools import groupby
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pandas as pd
from PIL import Image

from .taxonomy import IMAGE_CATEGORY_DESCRIPTIONS, TEXT_CATEGORIES, TEXT_CATEGORY_DESCRIPTIONS, resolve_thresholds

#: Longest text taken from one form field or API argument; the page's text boxes stop at the same length, but API
#: callers are not bound by the page.
MAX_TEXT_CHARS = 100_000
#: Most rows the batch tab moderates in one upload (about a minute of work on two CPU cores).
MAX_BATCH_ROWS = 100_000
#: Rows scored per step of a batch: large enough to be fast, small enough for a lively progress bar.
BATCH_CHUNK = 500
#: Longest base64 data URL payload accepted for an image (about 1.5 MB of image; larger ones go as uploads).
MAX_DATA_URL_CHARS = 2_000_000
#: Column names tried, in order, when a CSV's text column is not chosen.
TEXT_COLUMN_NAMES = ("text", "comment", "message", "content", "body", "tweet")
#: glibc's mallopt() parameter number for the arena cap (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX=2 would, unless the environment already chooses a value.

    Why: glibc gives threads their own arenas and keeps their freed memory, so a Gradio server's resident memory
    climbed about 12 KiB per request over 10,000 requests; with two arenas it levels off (benchmarks/load_test.py,
    README "Reliability"). Returns whether the cap was set (never on other C libraries).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt(_M_ARENA_MAX, count) == 1
    except (OSError, AttributeError):  # no libc by that name, or a C library without mallopt (macOS, musl)
        return False


def remove_old_files(folder: str | Path, older_than_seconds: float) -> int:
    """Delete files under `folder` last modified more than `older_than_seconds` ago (and folders left empty);
    returns how many files went. Run at start for uploads a killed server left behind."""
    import time

    folder, removed, cutoff = Path(folder), 0, time.time() - older_than_seconds
    if not folder.is_dir():
        return 0
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            pass
    return removed


def clean_text(text: str | None, *, limit: int = MAX_TEXT_CHARS) -> str:
    """A form field's or API argument's text made safe to process and to send back (None is empty).

    JSON carries lone surrogates ("\\ud800") that UTF-8 cannot encode, so a verdict echoing one could not be sent
    back; they become U+FFFD. Text over `limit` characters raises ValueError, so an API caller cannot make the
    server work through megabytes the page would never send; anything but a str (or None) raises TypeError rather
    than being moderated as its printed form.
    """
    if text is None:
        return ""
    if not isinstance(text, str):  # an API caller sent a number or a list where text belongs
        raise TypeError(f"Expected text, got {type(text).__name__}.")
    if len(text) > limit:
        raise ValueError(f"The text is {len(text):,} characters long; the limit here is {limit:,}. For longer "
                         f"texts use the package or `python -m moderation text --file`.")
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def whole_number(value, name: str) -> int:
    """A form's number that must be whole (a slider's token count, a seed): 60.0 is 60, 2.7 is an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or int(value) != value:
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    return int(value)


def parse_terms(text: str | None) -> list[str] | None:
    """Terms typed one per line or separated by commas, after `clean_text`; None when there are none (the API's
    "no list")."""
    terms = [term.strip() for term in re.split(r"[,\n]", clean_text(text)) if term.strip()]
    return terms or None


def verdict_markdown(flagged: bool, categories: Iterable[str], *, subject: str = "Text",
                     descriptions: Mapping[str, str] = TEXT_CATEGORY_DESCRIPTIONS) -> str:
    """One clear line: allowed, or flagged and for what (with what each category means)."""
    categories = list(categories)
    if not flagged:
        return f"### {subject} allowed"
    reasons = "; ".join(f"**{c}** ({descriptions[c]})" if c in descriptions else f"**{c}**" for c in categories)
    return f"### {subject} flagged: {reasons}"


def highlight_segments(text: str, spans: Iterable,
                       order: tuple[str, ...] = TEXT_CATEGORIES) -> list[tuple[str, str | None]]:
    """Split `text` into (segment, category or None) pieces for a highlighted-text widget.

    Spans of different categories may overlap; each character takes the most severe category covering it, so the
    pieces never overlap and always join back into `text`.
    """
    rank = {category: i for i, category in enumerate(order)}
    labels: list[str | None] = [None] * len(text)
    for span in spans:
        for i in range(max(span.start, 0), min(span.end, len(text))):
            if labels[i] is None or rank.get(span.label, len(rank)) < rank.get(labels[i], len(rank)):
                labels[i] = span.label
    segments = []
    for label, run in groupby(range(len(text)), key=labels.__getitem__):
        indices = list(run)
        segments.append((text[indices[0]:indices[-1] + 1], label))
    return segments


def tuned_thresholds(model: str = "default") -> dict[str, float]:
    """The per-category thresholds recorded for `model` in the model card (read without loading the model)."""
    from .text.model_card import model_record
    from .text.registry import resolve_model_name

    recorded = model_record(resolve_model_name(model)).get("thresholds", {})
    return resolve_thresholds(None, recorded, TEXT_CATEGORIES)


def confusion_image(report, view: str) -> Image.Image:
    """An evaluation report's confusion matrix for `view` as an image (drawn once per view, then cached)."""
    from .evaluation.figures import confusion_png  # here, not at import: the HTTP APIs import this module, light

    return png_image(confusion_png(report, view))


def png_image(png: bytes) -> Image.Image:
    """PNG bytes (a figure drawn by `moderation.evaluation.figures`) as an image an image widget can show."""
    return Image.open(io.BytesIO(png))


# --- Batch: a file of texts in, the same rows with scores out ----------------------------------------------------


def read_text_table(path: str | Path) -> pd.DataFrame:
    """A CSV (every column kept, as text) or a TXT file (one text per line, column `text`), read by the same rules
    as `python -m moderation batch`, so no row is lost or shifted:

    - bytes that are not UTF-8 are read as Windows-1252 ("caf\xe9" is "café" in the app and the CLI alike);
    - a CSV row with more fields than the header keeps its place, marked `invalid_record` (pandas used the first
      column as an index and shifted every other one); a blank TXT line is a row without text (`missing_text`);
    - an input column named like one the job adds (`flagged`, `score_<category>`, `categories`, `outcome`, as in
      a file this app scored before) is kept as `input_<name>`, so our columns never overwrite the input's.
    The reader's own verdicts go in an `outcome` column. More than MAX_BATCH_ROWS rows, none, or a binary file (NUL
    bytes: an image or a spreadsheet renamed .csv) raises ValueError.
    """
    from .batch import ADDED_COLUMNS, INVALID_RECORD, decode_text

    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if b"\x00" in data[:65536]:  # an image, a spreadsheet, an archive: no text file holds NUL bytes
        raise ValueError(f"{path.name} is not a text file (it holds binary data); upload a CSV with a header row, "
                         f"or a TXT file with one text per line.")
    text = decode_text(data).removeprefix("\ufeff")
    if path.suffix.lower() == ".txt":
        lines = text.splitlines()
        if len(lines) > MAX_BATCH_ROWS:
            raise ValueError(f"{path.name} has more than {MAX_BATCH_ROWS:,} rows; split it, or use "
                             f"`python -m moderation batch` for files of any size.")
        frame = pd.DataFrame({"text": lines, "outcome": [None] * len(lines)}, dtype=object)
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader, [])
            rows = [fields for _, fields in zip(range(MAX_BATCH_ROWS + 1), reader) if fields]
        except csv.Error as exc:
            raise ValueError(f"Could not read {path.name} as CSV: {exc}.") from None
        if len(rows) > MAX_BATCH_ROWS:
            raise ValueError(f"{path.name} has more than {MAX_BATCH_ROWS:,} rows; split it, or use "
                             f"`python -m moderation batch` for files of any size.")
        if not header or not any(h.strip() for h in header):
            raise ValueError(f"{path.name} has no header row: the first line must name the columns.")
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise ValueError(f"{path.name} names a column twice: {', '.join(twice)}.")
        names = []
        for i, name in enumerate(header):
            name = name or f"column_{i + 1}"
            while name in ADDED_COLUMNS or name in names or (name != header[i] and name in header):
                name = f"input_{name}"  # a file scored before has `flagged`...; scored twice, `input_flagged` too
            names.append(name)
        width = len(names)
        frame = pd.DataFrame([fields[:width] + [""] * (width - len(fields)) for fields in rows], columns=names,
                             dtype=object)
        frame["outcome"] = [INVALID_RECORD if len(fields) > width else None for fields in rows]
    if frame.empty:
        raise ValueError(f"{path.name} has no rows to moderate.")
    return frame


def input_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a user can choose as the text column (not the reader's `outcome`)."""
    return [c for c in frame.columns if c != "outcome"]


def guess_text_column(frame: pd.DataFrame) -> str:
    """The column that most likely holds the texts: a conventional name, else the longest on average."""
    columns = input_columns(frame)
    by_name = {str(c).strip().lower(): c for c in columns}
    for name in TEXT_COLUMN_NAMES:
        if name in by_name:
            return by_name[name]
    return max(columns, key=lambda c: frame[c].astype(str).str.len().mean())


def moderate_table(frame: pd.DataFrame, column: str, model: str = "default",
                   on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """`frame` with the batch job's columns added (`score_<category>`, `flagged`, `categories`, `outcome`), same rows.

    Scored in chunks of BATCH_CHUNK by `moderation.batch.score_frame` so `on_progress(done, total)` can report.
    """
    from .batch import score_frame

    if column not in input_columns(frame):
        raise ValueError(f"No column {column!r}; the file has: {', '.join(map(str, input_columns(frame)))}.")
    chunks = []
    for start in range(0, len(frame), BATCH_CHUNK):
        chunks.append(score_frame(frame.iloc[start:start + BATCH_CHUNK], column, model=model))
        if on_progress:
            on_progress(min(start + BATCH_CHUNK, len(frame)), len(frame))
    return pd.concat(chunks)


def verdict_first(scored: pd.DataFrame, column: str) -> pd.DataFrame:
    """A scored table for reading on screen: verdict, categories and outcome, then the text, then the rest."""
    first = ["flagged", "categories", "outcome", column]
    return scored[first + [c for c in scored.columns if c not in first]]


def batch_summary(scored: pd.DataFrame, column: str) -> str:
    """One line on a scored table: how many rows were flagged, allowed, or not scored and why (every row counts)."""
    flagged, allowed = int((scored["flagged"] == True).sum()), int((scored["flagged"] == False).sum())  # noqa: E712
    unscored = scored.loc[scored["outcome"] != "scored", "outcome"].value_counts()
    reasons = ", ".join(f"{count} {outcome}" for outcome, count in unscored.items())
    return (f"{len(scored)} rows from column `{column}`: {flagged} flagged, {allowed} allowed"
            + (f", not scored: {reasons}." if reasons else "."))


def write_csv(frame: pd.DataFrame, stem: str, folder: str | Path | None = None) -> str:
    """Write `frame` to a new temporary folder (inside `folder` when given) as `<stem>.csv`; return the path.

    A web app passes its own cache folder, so its scheduled clean-up deletes the file too.
    """
    path = Path(tempfile.mkdtemp(prefix="moderation-", dir=folder)) / f"{stem}.csv"
    # CRLF rows (RFC 4180): a field holding a bare CR is then quoted, so it cannot start a row of its own.
    spreadsheet_safe(frame).to_csv(path, index=False, lineterminator="\r\n")
    return str(path)


#: A cell a spreadsheet would read as a formula starts with one of these (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell that a spreadsheet would run as a formula ("=HYPERLINK(...)", "+cmd|...",
    "@SUM(...)", "-2+3") prefixed with a single quote, as OWASP advises; numbers and other text are unchanged."""
    def escape(value):
        return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value

    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(escape)
    safe.columns = [escape(str(c)) for c in safe.columns]
    return safe


# --- Image -------------------------------------------------------------------------------------------------------


def plain_markdown(text: str) -> str:
    """`text` shown literally inside Markdown, as a code span: no link, image, HTML or formatting a visitor typed
    (a note like "![t](http://.../track.png)" would otherwise make every other visitor's browser fetch it)."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


def shown_model_name(model_id: str | None) -> str:
    """A model id as a page may show it: a hub id as is, a local checkpoint by its folder name only (the server's
    paths are not the visitor's business)."""
    if not model_id:
        return ""
    path = Path(model_id)
    return f"local checkpoint {path.name}" if path.is_absolute() or path.exists() else model_id


_QUOTED_PATH = re.compile(r"""(['"])((?:/|~/)[^'"]*)\1""")


def without_server_paths(message: str) -> str:
    """A message for the page with each quoted absolute path (a local checkpoint's, in a load error) replaced by
    `shown_model_name`: the server's folders are not the visitor's business."""
    return _QUOTED_PATH.sub(lambda match: shown_model_name(match.group(2)), message)


def received_upload(path, folders) -> str:
    """`path` if it names a file inside one of `folders` (where the web framework stores what it received), else
    ValueError with one message that says nothing about the server's files (whether a path exists, its size)."""
    refused = ValueError("Only images uploaded with this request can be checked; upload the image again.")
    if not isinstance(path, str) or not path:
        raise refused
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(Path(folder).resolve()) for folder in folders) or not resolved.is_file():
        raise refused
    return str(resolved)


def assessed_scores(verdict) -> dict[str, float]:
    """The image categories some model could see, with their scores: one nobody assesses is not a 0% (safe) bar,
    it is listed as not assessed in the notes."""
    return {c: s for c, s in verdict.scores.items() if c not in verdict.not_assessed}


def image_summary(verdict) -> tuple[str, str]:
    """(verdict line, blocklist and coverage notes) for an ImageVerdict, as Markdown."""
    reasons = list(verdict.categories) + (["known image"] if verdict.matched_blocklist else [])
    descriptions = {**IMAGE_CATEGORY_DESCRIPTIONS, "known image": "matches the known-image blocklist"}
    headline = verdict_markdown(verdict.flagged, reasons, subject="Image", descriptions=descriptions)
    match = verdict.matched_blocklist
    notes = [
        f"Matches a known image: hash `{match.entry.hash}`, {match.distance} of 64 bits apart"
        + (f", note: {plain_markdown(match.entry.note)}" if match.entry.note else "") + "."
        if match else "No match in the known-image blocklist."
    ]
    if verdict.not_assessed:
        notes.append(f"Not assessed (no model configured that can see them): {', '.join(verdict.not_assessed)}. "
                     f"Set MODERATION_NSFW_MODEL to an NSFW classifier to cover them.")
    if verdict.model:
        notes.append(f"Model: `{shown_model_name(verdict.model)}`"
                     + (f", NSFW model: `{shown_model_name(verdict.nsfw_model)}`" if verdict.nsfw_model else "")
                     + f"; frames checked: {verdict.frames_checked}.")
    else:
        notes.append("The image classifier could not be loaded, so only the known-image blocklist was checked.")
    return headline, "\n\n".join(notes)


def add_image_to_blocklist(image, note: str = "") -> str:
    """Mark an image as known-bad; returns a sentence for the user."""
    from .image import add_to_blocklist, list_blocklist

    entry = add_to_blocklist(image, note=note.strip())
    return f"Added to the known-image blocklist as `{entry.hash}` ({len(list_blocklist())} image(s) listed)."


def remove_image_from_blocklist(image) -> str:
    """Unmark the listed image closest to `image` (within the matching distance); returns a sentence for the user."""
    from .image import load_frames, match_blocklist, remove_from_blocklist

    match = match_blocklist(load_frames(image))
    if match is None:
        return "This image is not in the known-image blocklist; nothing removed."
    remove_from_blocklist(match.entry.hash)
    return f"Removed `{match.entry.hash}` from the known-image blocklist."


# --- Generation --------------------------------------------------------------------------------------------------


def generation_summary(result, *, final: bool = True) -> tuple[list[tuple[str, str | None]], str, str]:
    """(highlighted prompt + continuation, prompt verdict line, output verdict line) for a GenerationResult.

    `final=False` marks a partial result of a stream, so the reader knows more text may follow.
    """
    prompt_verdict, output_verdict = result.prompt_verdict, result.output_verdict
    segments = highlight_segments(result.prompt, prompt_verdict.spans)
    if output_verdict is not None:
        segments += highlight_segments(result.text, output_verdict.spans)
    prompt_line = verdict_markdown(prompt_verdict.flagged, prompt_verdict.categories, subject="Prompt")
    if result.refused:
        output_line = "### Refused: the prompt was flagged, so nothing was generated (policy `refuse`)."
    elif output_verdict is None:
        output_line = "Generating…"
    else:
        output_line = verdict_markdown(output_verdict.flagged, output_verdict.categories, subject="Output")
        if output_verdict.flagged:
            output_line += " (offending words redacted)"
        if not final:
            output_line += " so far, still generating…"
    return segments, prompt_line, output_line


#: How far below the default's test macro-F1 a model must score for its verdicts to carry a warning.
WEAK_MODEL_MARGIN = 0.1


def model_status(model: str, truncated: bool = False) -> str:
    """The line under a text verdict: which model judged, and a warning when it is clearly weaker than the default
    (the decision tree of the source material scores 0.42 test macro-F1 against 0.82, and said nothing about it)."""
    from .text.model_card import default_model_name, model_record

    record, default = model_record(model), default_model_name()
    status = f"Model `{model}`" + (" (long text: the model read its beginning)" if truncated else "")
    score, best = record.get("test_f1_macro"), model_record(default).get("test_f1_macro")
    if score is not None and best is not None and best - score > WEAK_MODEL_MARGIN:
        kind = "a teaching baseline, weak on purpose" if record.get("teaching_baseline") else "a teaching model"
        status += (f". **Weaker than the default**: {kind} (test macro-F1 {score:.2f}, against {best:.2f} for "
                   f"`{default}`); choose `default` for real verdicts.")
    return status


def model_choices(names: Iterable[str], unavailable: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, value) pairs for a model menu: a model that cannot be loaded here says so in its label."""
    return [(f"{name} (unavailable here)" if name in unavailable else name, name) for name in names]


def unavailable_notice(what: str, unavailable: Mapping[str, str], env_vars: Mapping[str, str]) -> str:
    """A few lines saying which of `what` cannot be loaded here, why, and which variable points at a local copy."""
    if not unavailable:
        return ""
    lines = [f"**Unavailable here** ({what}); everything else in the app works."]
    for name, reason in unavailable.items():
        hint = (f" Set `{env_vars[name]}` to a `save_pretrained()` directory to use a local copy."
                if name in env_vars else "")
        lines.append(f"- `{name}`: {reason}.{hint}")
    return "\n".join(lines)


def model_availability() -> dict[str, str]:
    """Notices for the Text, Image and Generation tabs ('' where everything can be loaded), found without loading
    any model (`hub.why_unavailable`); a local checkpoint is named by its folder only, as in verdicts."""
    from .generation_options import DEFAULT_MODEL, MODEL_ENV_VAR
    from .hub import resolve_model_id, why_unavailable
    from .image.classifier import DEFAULT_IMAGE_MODEL, IMAGE_MODEL_ENV
    from .text.registry import unavailable_models
    from .text.transformer import BERT_ENV, TOXIC_BERT_ENV, TRANSFORMER_ENV, configured_model_ids

    def shown(reason: str, model_id: str) -> str:
        return without_server_paths(reason).replace(model_id, shown_model_name(model_id))

    ids = configured_model_ids()
    text = {name: shown(reason, ids[name]) for name, reason in unavailable_models().items()}
    notices = {"text": unavailable_notice("text models", text, {
        "transformer": TRANSFORMER_ENV, "bert-base-uncased": BERT_ENV, "toxic-bert": TOXIC_BERT_ENV})}
    for tab, env_var, default in (("image", IMAGE_MODEL_ENV, DEFAULT_IMAGE_MODEL),
                                  ("generation", MODEL_ENV_VAR, DEFAULT_MODEL)):
        model_id = resolve_model_id(None, env_var, default)
        reason = why_unavailable(model_id)
        name = shown_model_name(model_id)
        notices[tab] = (unavailable_notice(f"{tab} model", {name: shown(reason, model_id)}, {name: env_var})
                        if reason else "")
    return notices
