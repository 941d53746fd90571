"""The moderation lab in a browser: Text, Image, Generation and Metrics tabs over the `moderation` package.

Every handler converts widget values, calls `moderation`, and formats the result; the logic lives in the package
(formatting helpers in `moderation.app_support`, reports in `moderation.evaluation`). Nothing loads a model or touches
the network at import time: models load on first use, once per process.

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT to change)
    python app.py --share    # also ask Gradio for a public link (or MODERATION_SHARE=1)

Model ids come from the server's environment (MODERATION_IMAGE_MODEL, MODERATION_NSFW_MODEL,
MODERATION_GENERATION_MODEL), never from the page, so visitors cannot make the server fetch or read anything.
MODERATION_BLOCKLIST_EDITING=0 turns off adding and removing known images (do so on a public Space).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import signal
import threading
from functools import partial
from pathlib import Path

import gradio as gr
import pandas as pd
from starlette.middleware import Middleware

import moderation
from moderation import app_support as support
from moderation import evaluation, serving, settings
from moderation.compat import server as compat_api
from moderation.datasets import BUNDLED, DatasetUnavailableError
from moderation.generation_options import MAX_NEW_TOKENS_CAP, MAX_TEMPERATURE, POLICIES
from moderation.image import BlocklistError, censored_preview, remove_stale_writes
from moderation.taxonomy import IMAGE_CATEGORIES, TEXT_CATEGORIES
from moderation.text import available_models
from moderation.text.registry import first_use_note, get_text_model, unavailable_models

EXAMPLES = Path(__file__).resolve().parent / "examples"
#: One colour per text category for highlighted spans (Okabe-Ito, readable by colour-blind users).
SPAN_COLOURS = {"self_harm": "#D55E00", "violence": "#CC79A7", "hate": "#E69F00", "illicit": "#999999",
                "sexual": "#0072B2", "harassment": "#F0E442", "spam": "#56B4E9", "profanity": "#009E73"}
#: Uploads are bounded for a public demo (the image decoder has its own, tighter pixel and byte limits).
MAX_FILE_SIZE = "20mb"
#: Requests that start work (queue joins, REST calls) per client per minute; 0 turns the limit off.
RATE_LIMIT_ENV = "MODERATION_RATE_LIMIT"
#: Sessions whose state the server keeps (the oldest go first), and the total size of uploads kept at once.
MAX_SESSIONS_ENV, MAX_SESSIONS = "MODERATION_MAX_SESSIONS", 1000
UPLOAD_BUDGET_ENV = "MODERATION_UPLOAD_BUDGET_MB"
#: Generations that may wait for the one generation worker; later ones get 503 until the queue drains.
GENERATION_QUEUE_SIZE = 8
#: Gradio deletes uploads and outputs older than an hour, every hour (and all of them when the server stops).
DELETE_CACHE = (3600, 3600)
#: Adding and removing known images: on by default only when the server listens on loopback (strangers cannot
#: reach it); 1 turns it on anywhere, 0 off everywhere.
BLOCKLIST_EDITING_ENV = "MODERATION_BLOCKLIST_EDITING"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

logger = logging.getLogger(__name__)


def _example_texts() -> list[tuple[str, str]]:
    """(text, expected verdict) for each example in examples/texts.csv (a test checks the default model agrees)."""
    path = EXAMPLES / "texts.csv"
    if not path.is_file():
        return []
    table = support.read_text_table(path)
    return list(zip(table["text"], table["expected"]))


#: What a handler turns into a message in the page: bad input, and a text model that cannot be loaded here.
_USER_ERRORS = (ValueError, TypeError, moderation.ModelUnavailableError, DatasetUnavailableError)


def _user_error(exc: Exception) -> gr.Error:
    """Bad input becomes a message in the page, never a traceback.

    A broken blocklist file is the server's fault, not the visitor's: its message names a server path, so that
    goes to the server log and the page gets a path-free sentence.
    """
    if isinstance(exc, BlocklistError):
        logger.error("Image blocklist unusable", exc_info=exc)
        return gr.Error("The server's known-image blocklist is damaged, so images cannot be checked against it. "
                        "The details are in the server log.", print_exception=False)
    if isinstance(exc, DatasetUnavailableError):  # its message may name the server's mirror folder
        logger.warning("Public dataset unavailable: %s", exc)
        return gr.Error("This public dataset cannot be read here: the server could not download it (is the internet "
                        "reachable from it?) and has no local copy (MODERATION_DATA_MIRROR). The details are in the "
                        "server log.", print_exception=False)
    if isinstance(exc, moderation.ModelUnavailableError):  # a local checkpoint is named by its folder only
        return gr.Error(support.without_server_paths(str(exc)), print_exception=False)
    return gr.Error(str(exc), print_exception=False)


# --- Text --------------------------------------------------------------------------------------------------------


def on_moderate_text(text, model="default", blocklist="", allowlist="", self_harm=None, violence=None, hate=None,
                     illicit=None, sexual=None, harassment=None, spam=None, profanity=None, progress=gr.Progress()):
    """Moderate one text with the sliders' thresholds, one per category and named after it, so API callers can
    pass e.g. `harassment=0.8` (the sliders start at, and move to, the chosen model's tuned values; a threshold not
    given is the tuned one)."""
    given = dict(self_harm=self_harm, violence=violence, hate=hate, illicit=illicit, sexual=sexual,
                 harassment=harassment, spam=spam, profanity=profanity)
    thresholds = {c: given[c] for c in TEXT_CATEGORIES if given[c] is not None}
    progress(0, desc=first_use_note(model) or f"Running {model}")
    try:
        verdict = moderation.moderate_text(
            support.clean_text(text), model=model, blocklist=support.parse_terms(blocklist),
            allowlist=support.parse_terms(allowlist), thresholds=thresholds or None,
        )
    except _USER_ERRORS as exc:
        raise _user_error(exc) from None
    status = support.model_status(verdict.model, verdict.truncated)
    return (support.verdict_markdown(verdict.flagged, verdict.categories), verdict.scores,
            support.highlight_segments(verdict.text, verdict.spans), verdict.to_dict(), status)


def on_model_change(model):
    """Move the sliders to the thresholds tuned for the chosen model."""
    tuned = support.tuned_thresholds(model)
    return [gr.Slider(value=tuned[c]) for c in TEXT_CATEGORIES]


def on_upload(path):
    """A new upload: its columns to choose from, and the previous file's result cleared. A file that cannot be read
    is said once, in the summary, not also as an error badge."""
    cleared = (EMPTY_BATCH, None)
    if not path:
        return gr.Dropdown(choices=[], value=None), *cleared, ""
    try:
        frame = support.read_text_table(path)
    except ValueError as exc:
        return gr.Dropdown(choices=[], value=None), *cleared, f"**{Path(path).name} cannot be read:** {exc}"
    return (gr.Dropdown(choices=support.input_columns(frame), value=support.guess_text_column(frame)), *cleared,
            f"{Path(path).name}: {len(frame):,} rows. Choose the text column, then press Moderate file.")


def on_moderate_batch(path, column=None, model="default", progress=gr.Progress()):
    """Moderate every row of a CSV/TXT upload; returns a preview table, the scored CSV and a summary line."""
    if not path:
        raise gr.Error("Upload a CSV or TXT file first.", print_exception=False)
    try:
        frame = support.read_text_table(path)
        column = support.clean_text(column) or support.guess_text_column(frame)
        scored = support.moderate_table(
            frame, column, model, on_progress=lambda done, total: progress(done / total, desc=f"{done}/{total} rows"))
    except _USER_ERRORS as exc:
        raise _user_error(exc) from None
    # Written into Gradio's cache folder, so DELETE_CACHE removes it with the uploads.
    download = support.write_csv(scored, f"moderated-{Path(path).stem}", folder=gr.utils.get_upload_folder())
    return support.verdict_first(scored, column).head(1000), download, support.batch_summary(scored, column)


# --- Image -------------------------------------------------------------------------------------------------------


def _image_input(payload: dict | None) -> str | bytes | None:
    """The image an event received unprocessed: a file Gradio received as an upload, or a base64 data URL's bytes.

    The image events skip gr.Image's preprocessing (preprocess=False), which opens every upload with PIL, any
    format it knows, so a file that is not an image (a .txt renamed .png, random bytes) failed inside Gradio with
    its generic error. Undecoded, it reaches `moderation`'s decoder (format allow-list, size limits), which
    refuses it with a clear message. Skipping preprocessing also skips Gradio's check that a path is one of its
    uploads, so that check is made here: a payload naming any other file on the server is refused.
    """
    if not payload:
        return None
    if not isinstance(payload, dict):
        raise gr.Error("Send the image as an upload or a data URL.", print_exception=False)
    url = payload.get("url") or ""
    if not url.startswith("data:"):
        try:
            return support.received_upload(payload.get("path"), [gr.utils.get_upload_folder()])
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    encoded = url.partition(",")[2]
    if len(encoded) > support.MAX_DATA_URL_CHARS:
        raise gr.Error(f"The image's data URL is over {support.MAX_DATA_URL_CHARS:,} characters; upload the file "
                       f"instead.", print_exception=False)
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise gr.Error("The image's data URL is not valid base64.", print_exception=False) from None


def on_moderate_image(image, progress=gr.Progress()):
    """Verdict, category scores, top classifier labels, censored preview (when flagged), notes and raw JSON."""
    image = _image_input(image)
    if image is None:
        raise gr.Error("Upload an image or take one with the webcam first.", print_exception=False)
    progress(0, desc="Classifying (the image model loads on first use, once)")
    try:
        verdict = moderation.moderate_image(image)
    except moderation.ModelUnavailableError as exc:
        message = support.without_server_paths(str(exc))
        return "### Image model unavailable", None, None, None, message, {"error": message}
    except ValueError as exc:
        raise _user_error(exc) from None
    headline, notes = support.image_summary(verdict)
    preview = censored_preview(image) if verdict.flagged else None
    return headline, support.assessed_scores(verdict), dict(verdict.labels), preview, notes, verdict.to_dict()


def blocklist_editing_allowed() -> bool:
    """Explicitly chosen with MODERATION_BLOCKLIST_EDITING, else only on a server that listens on loopback."""
    return settings.flag(BLOCKLIST_EDITING_ENV, (demo.server_name or "127.0.0.1") in LOOPBACK_NAMES)


def _check_blocklist_editing() -> None:
    if not blocklist_editing_allowed():
        raise gr.Error(f"Editing the known-image blocklist is turned off on this server (it is on by default only "
                       f"when the server listens on loopback; {BLOCKLIST_EDITING_ENV}=1 turns it on).",
                       print_exception=False)


def on_blocklist_add(image, note=""):
    _check_blocklist_editing()
    image = _image_input(image)
    if image is None:
        raise gr.Error("Upload the image to add first.", print_exception=False)
    try:
        return support.add_image_to_blocklist(image, support.clean_text(note))
    except ValueError as exc:
        raise _user_error(exc) from None


def on_blocklist_remove(image):
    _check_blocklist_editing()
    image = _image_input(image)
    if image is None:
        raise gr.Error("Upload the image to remove first.", print_exception=False)
    try:
        return support.remove_image_from_blocklist(image)
    except ValueError as exc:
        raise _user_error(exc) from None


# --- Generation --------------------------------------------------------------------------------------------------


def on_generate(prompt, max_new_tokens=60, temperature=0.8, top_p=0.95, seed=-1, policy="refuse", blocklist=""):
    """Stream a guarded continuation: highlighted text, prompt and output verdicts, suppressions, raw JSON.

    A negative seed (the default) draws a random one; any other seed makes the result reproducible.
    """
    yield [], "", "Working… (the generation model loads on first use, once)", 0, None
    try:
        seed = None if seed is None or seed < 0 else support.whole_number(seed, "The seed")
        stream = moderation.stream_moderated(
            support.clean_text(prompt), max_new_tokens=support.whole_number(max_new_tokens, "Max new tokens"),
            temperature=float(temperature), top_p=float(top_p), seed=seed, policy=policy,
            blocklist=support.parse_terms(blocklist),
        )
        result = None
        for result in stream:
            yield *support.generation_summary(result, final=False), result.suppressed, result.to_dict()
        yield *support.generation_summary(result), result.suppressed, result.to_dict()
    except moderation.ModelUnavailableError as exc:
        message = support.without_server_paths(str(exc))
        yield [], "", f"### Generation model unavailable\n\n{message}", 0, {"error": message}
    except (ValueError, TypeError) as exc:
        raise _user_error(exc) from None


# --- Metrics -----------------------------------------------------------------------------------------------------


def _no_rows(*columns: str) -> pd.DataFrame:
    """An empty table with its real headers (an empty Dataframe showed placeholder headers "1 2 3")."""
    return pd.DataFrame(columns=list(columns))


#: What each report table holds before (and while) a report is computed.
EMPTY_REPORT = _no_rows(*evaluation.REPORT_COLUMNS)
EMPTY_GRID = _no_rows("rank", "mean_f1_macro", "std_f1_macro", "mean_fit_seconds")
EMPTY_BATCH = _no_rows("flagged", "categories", "outcome")


def _report_outputs(report, view, model):
    view = view if view in report.views else evaluation.FLAGGED_VIEW
    return (report, gr.Dropdown(choices=report.views, value=view), report.reading(view),
            support.confusion_image(report, view), report.category_table(), report.flagged_table(),
            evaluation.grid_search_summary(model), evaluation.grid_search_table(model))


def on_clear_report():
    """Before an evaluation: the last report goes, so a failed run never leaves it under the new choice's name."""
    return None, gr.skip(), "", None, EMPTY_REPORT, EMPTY_REPORT, "", EMPTY_GRID


def on_evaluate(dataset="texts", model="default", view=evaluation.FLAGGED_VIEW, progress=gr.Progress()):
    """Evaluate a model on a bundled dataset's test split or a public dataset (cached: switching back is instant)."""
    progress(0, desc=f"Evaluating {model} on {dataset} (first time only; a model loads on first use)")
    try:
        report = evaluation.evaluate_dataset(dataset, model)
    except _USER_ERRORS as exc:
        raise _user_error(exc) from None
    return _report_outputs(report, view, model)


def on_evaluate_csv(path, model="default", view=evaluation.FLAGGED_VIEW, progress=gr.Progress()):
    """Evaluate a model on your own labelled CSV."""
    if not path:
        raise gr.Error("Upload a labelled CSV first.", print_exception=False)
    progress(0, desc=f"Evaluating {model} on {Path(path).name}")
    try:
        report = evaluation.evaluate_labelled_csv(path, model, name=Path(path).name)
    except _USER_ERRORS as exc:
        raise _user_error(exc) from None
    return _report_outputs(report, view, model)


def on_evaluate_fairness(model="default", progress=gr.Progress()):
    """The behavioural suite and per-term unintended-bias AUCs for a model (cached: instant the second time)."""
    progress(0, desc=f"Running the 2,001-case behavioural suite with {model}")
    try:
        report = evaluation.evaluate_fairness(model)
    except _USER_ERRORS as exc:
        raise _user_error(exc) from None
    return report.reading(), support.png_image(evaluation.fairness_png(report)), report.per_term, report.pass_rates


def on_view_change(report, view):
    if report is None:
        return "", None
    return report.reading(view), support.confusion_image(report, view)


def on_page_load(menus: int):
    """On every page load (no model is loaded for it): which models cannot be loaded here and why, in each tab,
    and marked in the `menus` text model menus, so nobody clicks into a failure to find out."""
    notices = support.model_availability()
    choices = support.model_choices(available_models(), unavailable_models())
    return (notices["text"], notices["image"], notices["generation"],
            *(gr.Dropdown(choices=choices) for _ in range(menus)))


# --- Layout ------------------------------------------------------------------------------------------------------


def _textbox(label: str, **options) -> gr.Textbox:
    """A free-text field that stops at the server's limit (API callers meet `support.clean_text` instead) and
    refuses a number, list or object where text belongs: Gradio's own Textbox turns 12345 into "12345" and it was
    moderated. (Set on the instance: a Textbox subclass would make Gradio write an app.pyi beside this file.)"""
    box = gr.Textbox("", label=label, max_length=support.MAX_TEXT_CHARS, **options)

    def preprocess(payload):
        if payload is not None and not isinstance(payload, str):
            raise gr.Error(f"'{label}' takes text; got {type(payload).__name__}.")
        return payload

    box.preprocess = preprocess
    return box


def _text_tab():
    models = available_models()
    notice = gr.Markdown(elem_id="text-notice")
    with gr.Row():
        with gr.Column(scale=3):
            text = _textbox("Text to moderate", lines=4, placeholder="Type or paste a message…")
            model = gr.Dropdown(models, value=models[0], label="Model")
            with gr.Accordion("Thresholds and custom word lists", open=False):
                gr.Markdown("Each slider starts at the model's tuned threshold; moving it takes effect at once.")
                tuned = support.tuned_thresholds(models[0])
                sliders = [gr.Slider(0, 1, value=tuned[c], step=0.01, label=c) for c in TEXT_CATEGORIES]
                blocklist = _textbox("Blocklist: always flag these terms (comma or newline separated)")
                allowlist = _textbox("Allowlist: never count these terms (e.g. a local place name)")
            button = gr.Button("Moderate", variant="primary")
        with gr.Column(scale=4):
            verdict = gr.Markdown(elem_id="text-verdict")
            highlighted = gr.HighlightedText(label="Offending spans", color_map=SPAN_COLOURS, show_legend=True)
            # No heading: the verdict line above says what was flagged; a top category shown large under
            # "Text allowed" read as a contradiction.
            scores = gr.Label(label="Category scores", num_top_classes=len(TEXT_CATEGORIES), show_heading=False)
            status = gr.Markdown()
            with gr.Accordion("Raw JSON", open=False):
                raw = gr.JSON()
    inputs = [text, model, blocklist, allowlist, *sliders]
    outputs = [verdict, scores, highlighted, raw, status]
    button.click(on_moderate_text, inputs, outputs, api_name="moderate_text", concurrency_limit=4)
    text.submit(on_moderate_text, inputs, outputs, api_visibility="private", concurrency_limit=4)
    model.change(on_model_change, model, sliders, api_visibility="private")
    examples = _example_texts()
    if examples:
        gr.Examples([[t] for t, _ in examples], inputs=[text], label="Examples (each with its expected verdict)",
                    example_labels=[f"[{expected}] {t}" for t, expected in examples])

    with gr.Accordion("Batch: moderate a whole CSV or TXT file", open=False):
        with gr.Row():
            upload = gr.File(label="CSV (with a header row) or TXT (one text per line)", file_types=[".csv", ".txt"])
            with gr.Column():
                column = gr.Dropdown([], label="Text column", allow_custom_value=True)
                batch_model = gr.Dropdown(models, value=models[0], label="Model")
                batch_button = gr.Button("Moderate file")
        batch_summary = gr.Markdown()
        table = gr.Dataframe(EMPTY_BATCH, label="Scores (first 1,000 rows shown; download for all)", max_height=400)
        download = gr.File(label="Scored CSV")
    if (EXAMPLES / "texts.csv").is_file():
        gr.Examples([[str(EXAMPLES / "texts.csv")]], inputs=[upload], label="Example file")
    upload.change(on_upload, upload, [column, table, download, batch_summary], api_visibility="private")
    batch_button.click(on_moderate_batch, [upload, column, batch_model], [table, download, batch_summary],
                       api_name="moderate_batch", concurrency_limit=1)
    return notice, [model, batch_model]


def _image_tab():
    notice = gr.Markdown(elem_id="image-notice")
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Image", sources=["upload", "webcam"], type="filepath", image_mode=None,
                             elem_id="image-input")
            button = gr.Button("Moderate image", variant="primary")
            with gr.Accordion("Known-image blocklist", open=False):
                note = _textbox("Note (why this image is blocked)")
                with gr.Row():
                    add = gr.Button("Add this image")
                    remove = gr.Button("Remove this image")
                blocklist_status = gr.Markdown()
        with gr.Column():
            verdict = gr.Markdown(elem_id="image-verdict")
            scores = gr.Label(label="Category scores (assessed categories only)", num_top_classes=len(IMAGE_CATEGORIES),
                              show_heading=False)
            labels = gr.Label(label="Top classifier labels (ImageNet classes, not verdicts)", show_heading=False)
            preview = gr.Image(label="Censored preview (shown when flagged)", interactive=False)
            notes = gr.Markdown()
            with gr.Accordion("Raw JSON", open=False):
                raw = gr.JSON()
    # preprocess=False: the handlers take the upload undecoded (see _image_input).
    button.click(on_moderate_image, image, [verdict, scores, labels, preview, notes, raw], api_name="moderate_image",
                 concurrency_limit=2, preprocess=False)
    add.click(on_blocklist_add, [image, note], blocklist_status, api_name="image_blocklist_add", concurrency_limit=1,
              preprocess=False)
    remove.click(on_blocklist_remove, image, blocklist_status, api_name="image_blocklist_remove",
                 concurrency_limit=1, preprocess=False)
    images = sorted(str(p) for p in (EXAMPLES / "images").glob("*.jpg"))
    if images:
        gr.Examples(images, inputs=[image], label="Examples (from examples/images/, see CREDITS.md)")
    return notice


def _generation_tab():
    notice = gr.Markdown(elem_id="generation-notice")
    with gr.Row():
        with gr.Column():
            prompt = _textbox("Prompt", lines=3, placeholder="Once upon a time…")
            with gr.Row():
                max_new_tokens = gr.Slider(1, MAX_NEW_TOKENS_CAP, value=60, step=1, label="Max new tokens")
                temperature = gr.Slider(0.05, MAX_TEMPERATURE, value=0.8, step=0.05, label="Temperature")
            with gr.Row():
                top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.01, label="Top-p")
                # No rounding here: a seed of 1.5 gets a message from the handler, not a silent 2.
                seed = gr.Number(-1, label="Seed (-1: random)", minimum=-1)
            policy = gr.Radio(list(POLICIES), value=POLICIES[0], label="When the prompt is flagged")
            blocklist = _textbox("Extra words to suppress (comma or newline separated)")
            button = gr.Button("Generate", variant="primary")
        with gr.Column():
            output_verdict = gr.Markdown(elem_id="generation-verdict")
            text = gr.HighlightedText(label="Prompt and continuation", color_map=SPAN_COLOURS, show_legend=True)
            prompt_verdict = gr.Markdown()
            suppressed = gr.Number(label="Blocked-word suppressions while decoding", interactive=False)
            with gr.Accordion("Raw JSON", open=False):
                raw = gr.JSON()
    button.click(on_generate, [prompt, max_new_tokens, temperature, top_p, seed, policy, blocklist],
                 [text, prompt_verdict, output_verdict, suppressed, raw], api_name="generate", concurrency_limit=1)
    return notice


def _metrics_tab():
    models = available_models()
    gr.Markdown("How good are the text models? Pick a bundled dataset (its test split: texts the models never "
                "trained on), a public one (Davidson tweets, SMS spam, Toxic Spans: downloaded and checksummed on "
                "first use, evaluation only) or upload your own labelled CSV, then read the report below.")
    with gr.Row():
        dataset = gr.Dropdown([*BUNDLED, *evaluation.PUBLIC], value="texts", label="Dataset")
        model = gr.Dropdown(models, value=models[0], label="Model")
        view = gr.Dropdown([evaluation.FLAGGED_VIEW, *TEXT_CATEGORIES], value=evaluation.FLAGGED_VIEW,
                           label="Confusion matrix for")
    with gr.Row():
        button = gr.Button("Evaluate", variant="primary")
    with gr.Accordion("Evaluate on your own labelled CSV", open=False):
        gr.Markdown(f"A `text` column plus 0/1 columns named after categories ({', '.join(TEXT_CATEGORIES)}), or a "
                    f"`label` column holding 0/1 (flagged or not) or category names (`clean` for none). "
                    f"Up to {evaluation.MAX_CSV_ROWS:,} rows.")
        upload = gr.File(label="Labelled CSV", file_types=[".csv"])
        csv_button = gr.Button("Evaluate my CSV")
    report = gr.State()
    reading = gr.Markdown(elem_id="metrics-reading")
    figure = gr.Image(label="Confusion matrix", format="png", interactive=False, elem_id="metrics-plot")
    category_table = gr.Dataframe(EMPTY_REPORT, label="Classification report per category", elem_id="metrics-report")
    flagged_table = gr.Dataframe(EMPTY_REPORT, label="Classification report: flagged vs clean")
    grid_summary = gr.Markdown()
    grid_table = gr.Dataframe(EMPTY_GRID, label="GridSearchCV: mean cross-validated macro-F1 per parameter combination")

    with gr.Accordion("Fairness: the behavioural suite and unintended bias per identity term", open=False):
        gr.Markdown("2,001 sentences written for this project and never trained on: statements about 40 groups "
                    "(neutral, positive, counter-speech, hateful), harmful requests and their safe look-alikes. "
                    "Per group: how often harmless statements are flagged, and the subgroup, BPSN and BNSP AUCs of "
                    "Borkan et al. (2019).")
        fairness_button = gr.Button("Run the behavioural suite")
        fairness_reading = gr.Markdown(elem_id="fairness-reading")
        fairness_figure = gr.Image(label="AUCs per identity term", format="png", interactive=False)
        fairness_terms = gr.Dataframe(_no_rows("term", "subgroup_auc", "bpsn_auc", "bnsp_auc"),
                                      label="Per identity term")
        fairness_rates = gr.Dataframe(_no_rows("phenomenon", "cases", "pass_rate"), label="Pass rate per phenomenon")
    fairness_outputs = [fairness_reading, fairness_figure, fairness_terms, fairness_rates]
    fairness_button.click(on_evaluate_fairness, model, fairness_outputs, api_name="evaluate_fairness",
                          concurrency_limit=1, concurrency_id="metrics")

    outputs = [report, view, reading, figure, category_table, flagged_table, grid_summary, grid_table]
    shared = {"concurrency_limit": 1, "concurrency_id": "metrics"}
    clear = {"fn": on_clear_report, "outputs": outputs, "queue": False, "api_visibility": "private"}
    button.click(**clear).then(on_evaluate, [dataset, model, view], outputs, api_name="evaluate", **shared)
    for control in (dataset, model):
        control.input(**clear).then(on_evaluate, [dataset, model, view], outputs, api_visibility="private", **shared)
    csv_button.click(**clear).then(on_evaluate_csv, [upload, model, view], outputs, api_name="evaluate_csv", **shared)
    view.input(on_view_change, [report, view], [reading, figure], api_visibility="private", **shared)
    return model


def _check_input_count(block_fn, inputs) -> None:
    """Replaces Blocks.validate_inputs: Gradio's own message for a request with too few inputs quoted every value
    it did receive, so one request wrote megabytes of its payload into the error and the server log."""
    if len(inputs) < len(block_fn.inputs):
        raise ValueError(f"This endpoint takes {len(block_fn.inputs)} inputs; the request sent {len(inputs)}.")


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Moderation lab", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("# Moderation lab\nText, image and generated-text moderation with one taxonomy, and the "
                    "numbers behind it. Runs on CPU; models load on first use.")
        with gr.Tab("Text"):
            text_notice, model_menus = _text_tab()
        with gr.Tab("Image"):
            image_notice = _image_tab()
        with gr.Tab("Generation"):
            generation_notice = _generation_tab()
        with gr.Tab("Metrics"):
            model_menus.append(_metrics_tab())
        demo.load(partial(on_page_load, len(model_menus)), None,
                  [text_notice, image_notice, generation_notice, *model_menus],
                  api_visibility="private", queue=False)
    demo.validate_inputs = _check_input_count
    # Two CPU cores: a burst of visitors queues instead of thrashing; per-event limits above refine this.
    return demo.queue(default_concurrency_limit=2, max_size=256)


demo = build_demo()


def launch_options(unheard_seconds: float = serving.UNHEARD_JOB_SECONDS) -> dict:
    """What `demo.launch` needs beyond the address: upload cap, and middleware that bounds request bodies (before
    they are read), how fast one client may start work, and how long a job may wait with nobody listening."""
    per_minute = settings.whole_number(RATE_LIMIT_ENV, serving.REQUESTS_PER_MINUTE)
    middleware = [Middleware(serving.BodySizeLimit, exempt_prefixes=("/gradio_api/upload",))]
    if per_minute > 0:
        limiter = serving.RateLimiter(burst=max(1, per_minute // 3), per_minute=per_minute)
        # Behind a Space's proxy every request comes from the proxy: the visitor is in X-Forwarded-For.
        middleware.append(Middleware(serving.ClientRateLimit, limiter=limiter,
                                     paths=("/gradio_api/queue/join", "/gradio_api/call/", *compat_api.API_PATHS),
                                     trust_forwarded=bool(os.environ.get("SPACE_ID"))))
    middleware.append(Middleware(serving.UploadBudget, folder=gr.utils.get_upload_folder(), budget=upload_budget))
    # Jobs nobody listens for are dropped; generation (the slow one) may have only a few waiting.
    middleware.append(Middleware(serving.JobWatch, queue_of=lambda: demo._queue,
                                 bounded={"generate": GENERATION_QUEUE_SIZE}, unheard_seconds=unheard_seconds))
    # Every raw REST call is a session of its own: keep the most recent ones only (Gradio keeps 10,000, ~200 KB each).
    sessions = settings.whole_number(MAX_SESSIONS_ENV, MAX_SESSIONS)
    # show_error: input Gradio itself rejects (a string where a slider's number belongs, a missing input) gets
    # Gradio's message instead of {"error": null}; our handlers already turn their own errors into messages.
    return {"max_file_size": MAX_FILE_SIZE, "state_session_capacity": sessions, "show_error": True,
            "app_kwargs": compat_api.gradio_app_kwargs(middleware)}  # the drop-in APIs on the UI's port


def upload_budget() -> int:
    """Bytes of uploads kept at once (MODERATION_UPLOAD_BUDGET_MB, read on every upload)."""
    return int(settings.number(UPLOAD_BUDGET_ENV, serving.UPLOAD_BUDGET_BYTES / 2**20) * 2**20)


def _stop_on_sigterm() -> None:
    """SIGTERM (what Docker, Spaces and systemd send) stops the server the way Ctrl-C does, so Gradio deletes its
    uploads and outputs instead of leaving them on disk."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def share_requested(flag: bool) -> bool:
    return flag or settings.flag("MODERATION_SHARE", False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run the moderation lab web app.")
    parser.add_argument("--share", action="store_true",
                        help="also ask Gradio for a public share link (or set MODERATION_SHARE=1)")
    share = share_requested(parser.parse_args(argv).share)
    support.limit_malloc_arenas()  # before the server's threads start allocating
    remove_stale_writes()  # temporary files of a blocklist write that a killed server left behind
    support.remove_old_files(gr.utils.get_upload_folder(), DELETE_CACHE[1])  # uploads a killed server left behind
    _stop_on_sigterm()
    # The default text model loads (or is fitted, when no shipped or cached one fits this code) while the server
    # starts, so the first visitor does not wait for it.
    threading.Thread(target=get_text_model, name="load-default-text-model", daemon=True).start()
    # Server name and port are left to Gradio, which reads GRADIO_SERVER_NAME and GRADIO_SERVER_PORT.
    # quiet: Gradio's own "set share=True in launch()" hint named the wrong knob; the lines below say ours.
    demo.launch(share=share, prevent_thread_lock=True, quiet=True, **launch_options())
    print(f"* Running on local URL: {demo.local_url}", flush=True)
    if share and demo.share_url:
        print(f"* Running on public URL: {demo.share_url}", flush=True)
    elif share:
        print(f"No public share link could be created (is the internet reachable from here?). "
              f"The app is still served locally at {demo.local_url}", flush=True)
    else:
        print("* For a public link: python app.py --share (or MODERATION_SHARE=1)", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
