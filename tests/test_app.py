"""The Gradio app: its UI-independent helpers, then every named endpoint through gradio_client against the launched
demo (image and generation on the tiny checkpoints), and `python app.py` itself in a subprocess."""
from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from moderation import app_support as support
from moderation import evaluation
from moderation.taxonomy import IMAGE_CATEGORIES, TEXT_CATEGORIES
from moderation.testing.tiny_models import VIT_LABELS
from moderation.verdict import Span

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_IMAGE = ROOT / "examples" / "images" / "coffee.jpg"
OTHER_IMAGE = ROOT / "examples" / "images" / "rocket.jpg"
#: Work requests per client per minute in the served app: far above what the tests send, except the flood test.
TEST_RATE_LIMIT = 900
#: Sessions the served app keeps: small, so that the test of the bound is quick.
TEST_MAX_SESSIONS = 30
#: Seconds a job may wait with nobody listening before the test server drops it (20 s in the app).
TEST_UNHEARD_SECONDS = 3.0


# --- moderation.app_support (no server) ----------------------------------------------------------------------------


def test_highlight_segments_rejoin_the_text_and_prefer_the_most_severe_category():
    text = "you stupid idiot"
    spans = [Span(4, 16, "profanity", 0.5), Span(11, 16, "harassment", 0.9), Span(4, 10, "violence", 0.2)]
    segments = support.highlight_segments(text, spans)
    assert "".join(s for s, _ in segments) == text
    assert segments == [("you ", None), ("stupid", "violence"), (" ", "profanity"), ("idiot", "harassment")]
    assert support.highlight_segments("", []) == []


def test_parse_terms_and_verdict_line():
    assert support.parse_terms(" foo, bar baz\n\nqux ,") == ["foo", "bar baz", "qux"]
    assert support.parse_terms("  ") is None
    assert support.verdict_markdown(False, []) == "### Text allowed"
    assert "**spam** (scams" in support.verdict_markdown(True, ["spam"])


def test_the_server_caps_malloc_arenas_unless_the_environment_chooses(monkeypatch):
    import platform

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert support.limit_malloc_arenas() is (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert support.limit_malloc_arenas() is False


def test_clean_text_replaces_lone_surrogates_and_refuses_overlong_text():
    assert support.clean_text("abc\ud800def\udfff") == "abc\ufffddef\ufffd"
    assert support.clean_text("\ud83d\ude00 😀") == "😀 😀"  # a surrogate pair is one character, kept
    assert support.clean_text(None) == ""
    assert support.parse_terms("pine\udc00apple, ok") == ["pine\ufffdapple", "ok"]
    longest = "a" * support.MAX_TEXT_CHARS
    assert support.clean_text(longest) == longest
    with pytest.raises(ValueError, match=f"{support.MAX_TEXT_CHARS + 1:,} characters long; the limit here is"):
        support.clean_text(longest + "\ud800")


def test_tuned_thresholds_cover_every_category_without_loading_a_model():
    tuned = support.tuned_thresholds("default")
    assert list(tuned) == list(TEXT_CATEGORIES) and all(0 < t < 1 for t in tuned.values())


def test_read_text_table_and_guess_column(tmp_path):
    txt = tmp_path / "lines.txt"
    txt.write_bytes(b"first line\n\n   \nsecond caf\xe9 line\n")
    frame = support.read_text_table(txt)
    # Blank lines are rows without text (counted, as the CLI counts them); non-UTF-8 bytes read as Windows-1252.
    assert frame["text"].tolist() == ["first line", "", "   ", "second café line"]
    csv = tmp_path / "rows.csv"
    csv.write_text("id,message\n1,hello there\n2,a much longer message than the id\n", encoding="utf-8")
    assert support.guess_text_column(support.read_text_table(csv)) == "message"
    assert support.guess_text_column(pd.DataFrame({"a": ["1", "2"], "b": ["long words", "more words"]})) == "b"
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no rows"):
        support.read_text_table(tmp_path / "empty.txt")


def test_read_text_table_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(support, "MAX_BATCH_ROWS", 2)
    path = tmp_path / "big.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(ValueError, match="more than 2 rows"):
        support.read_text_table(path)


def test_moderate_table_keeps_rows_and_reports_progress(monkeypatch):
    monkeypatch.setattr(support, "BATCH_CHUNK", 2)
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["have a lovely day", "you are a worthless idiot", ""]})
    calls = []
    scored = support.moderate_table(frame, "text", on_progress=lambda done, total: calls.append((done, total)))
    assert scored["id"].tolist() == ["a", "b", "c"] and calls == [(2, 3), (3, 3)]
    assert scored["flagged"].tolist()[:2] == [False, True] and scored["outcome"].tolist()[2] == "missing_text"
    assert {f"score_{c}" for c in TEXT_CATEGORIES} <= set(scored.columns)
    assert support.batch_summary(scored, "text") == (
        "3 rows from column `text`: 1 flagged, 1 allowed, not scored: 1 missing_text.")
    with pytest.raises(ValueError, match="No column 'body'"):
        support.moderate_table(frame, "body")


def test_batch_uploads_keep_every_row_in_place(tmp_path):
    from moderation.batch import INVALID_RECORD

    path = tmp_path / "tricky.csv"
    # An input column named `outcome` (none scored before), an extra field in the first data row (pandas shifted every
    # column), a cell starting with a bare CR, and Latin-1 bytes.
    path.write_bytes(b"text,outcome\nkill yourself,x,EXTRA\nyou are a worthless idiot,\n"
                     b"\"\rhello\",\ncaf\xe9 au lait,\n")
    frame = support.read_text_table(path)
    assert support.input_columns(frame) == ["text", "input_outcome"]
    scored = support.moderate_table(frame, "text")
    assert scored["outcome"].tolist() == [INVALID_RECORD, "scored", "scored", "scored"]
    assert scored["text"].tolist()[3] == "café au lait" and scored["flagged"].tolist()[1] is True
    written = support.write_csv(scored, "out", folder=tmp_path)
    again = support.read_text_table(written)  # the app's own scored CSV can be uploaded again
    assert len(again) == 4 and "input_flagged" in again.columns and "input_score_hate" in again.columns
    assert again["text"].tolist()[2] == "'\rhello"  # one row, and neutralised for spreadsheets
    rescored = support.moderate_table(again, "text")
    assert len(rescored) == 4 and rescored["outcome"].tolist()[1:] == ["scored"] * 3


def test_scored_csvs_cannot_carry_spreadsheet_formulas(tmp_path):
    cells = ["=HYPERLINK(\"http://x\",\"click\")", "+cmd|' /C calc'!A0", "@SUM(A1:A9)", "-2+3+cmd|' /C calc'!A0",
             "\tstarts with a tab", "plain text", "a-b=c"]
    frame = pd.DataFrame({"text": cells, "flagged": [False] * len(cells), "score_hate": [0.5] * len(cells)})
    written = pd.read_csv(support.write_csv(frame, "out", folder=tmp_path), dtype=str, keep_default_na=False)
    assert written["text"].tolist() == ["'" + c for c in cells[:5]] + cells[5:]
    assert written["score_hate"].tolist() == ["0.5"] * len(cells)


def test_app_py_imports_no_ml_library_directly():
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"sklearn", "torch", "transformers"}


# --- The launched demo ---------------------------------------------------------------------------------------------


def load_app():
    """app.py as the module `app` (the repository root is not on sys.path under pytest)."""
    if "app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["app"] = module
        spec.loader.exec_module(module)
    return sys.modules["app"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(tiny_models, tmp_path_factory):
    """The app's demo served on a free loopback port, its image and generation tabs on the tiny checkpoints."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODERATION_IMAGE_MODEL", str(tiny_models["vit"]))
        patch.setenv("MODERATION_GENERATION_MODEL", str(tiny_models["gpt2"]))
        patch.delenv("MODERATION_NSFW_MODEL", raising=False)
        patch.setenv("MODERATION_IMAGE_BLOCKLIST", str(tmp_path_factory.mktemp("app") / "blocklist.json"))
        patch.delenv("MODERATION_BLOCKLIST_EDITING", raising=False)
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("MODERATION_RATE_LIMIT", str(TEST_RATE_LIMIT))
        patch.setenv("MODERATION_MAX_SESSIONS", str(TEST_MAX_SESSIONS))
        app = load_app()
        app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                        **app.launch_options(unheard_seconds=TEST_UNHEARD_SECONDS))
        try:
            yield app
        finally:
            app.demo.close()


@pytest.fixture(scope="module")
def client(served_app):
    from gradio_client import Client

    return Client(served_app.demo.local_url, verbose=False)


def _segments_text(highlighted) -> str:
    return "".join(piece["token"] for piece in highlighted)


def test_page_has_the_four_tabs(served_app):
    with urllib.request.urlopen(served_app.demo.local_url + "config", timeout=30) as response:
        config = json.load(response)
    tabs = [c["props"]["label"] for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Text", "Image", "Generation", "Metrics"]


def test_every_action_has_a_named_endpoint(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/moderate_text", "/moderate_batch", "/moderate_image", "/image_blocklist_add", "/image_blocklist_remove",
            "/generate", "/evaluate", "/evaluate_csv"} <= set(endpoints)
    for name, endpoint in endpoints.items():  # only the first (main) input may lack a default
        assert all(p["parameter_has_default"] for p in endpoint["parameters"][1:]), name


def test_moderate_text_with_only_the_text(client):
    text = "you are a worthless idiot"
    line, scores, highlighted, raw, status = client.predict(text, api_name="/moderate_text")
    assert "flagged" in line and "harassment" in line
    assert {c["label"] for c in scores["confidences"]} == set(TEXT_CATEGORIES)
    assert _segments_text(highlighted) == text
    assert any(p["class_or_confidence"] == "harassment" and p["token"] in ("idiot", "worthless") for p in highlighted)
    assert raw["flagged"] and all(text[s["start"]:s["end"]] == s["text"] for s in raw["spans"])
    assert raw["model"] in status


def test_moderate_text_thresholds_and_word_lists(client):
    line, *_, raw, _ = client.predict("we grow pineapple on the farm", blocklist="pineapple", api_name="/moderate_text")
    assert raw["flagged"] and "profanity" in raw["categories"]
    strict = {c: 1.0 for c in TEXT_CATEGORIES}
    # Moving a slider takes effect at once (there used to be a box to tick first, and sliders alone did nothing).
    *_, raw, _ = client.predict("you are a worthless idiot", api_name="/moderate_text", **strict)
    assert raw["thresholds"] == strict and raw["flagged"] == any(s >= 1.0 for s in raw["scores"].values())
    *_, raw, _ = client.predict("you are a worthless idiot", api_name="/moderate_text")
    assert raw["thresholds"] == support.tuned_thresholds("default")  # untouched sliders: the tuned thresholds


def call_http_api(app, api_name: str, **arguments):
    """One call of Gradio's plain HTTP API (POST the arguments, read the event stream); (event, data).

    gradio_client cannot send a lone surrogate (it encodes requests as UTF-8), but JSON's "\\ud800" escape can.
    """
    url = f"{app.demo.local_url}gradio_api/call/v2/{api_name}"
    request = urllib.request.Request(url, data=json.dumps(arguments).encode("ascii"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}/{event_id}", timeout=300) as response:
        lines = response.read().decode("utf-8").splitlines()
    event = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")][-1]
    return event, json.loads([line.removeprefix("data: ") for line in lines if line.startswith("data: ")][-1])


def test_lone_surrogates_sent_through_the_http_api_get_a_verdict(served_app):
    # The verdict echoed the surrogate, and Gradio could not encode the JSON output: the call failed.
    event, outputs = call_http_api(served_app, "moderate_text", text="you idiot \ud800", blocklist="pine\udfffapple")
    assert event == "complete"
    raw = outputs[3]
    assert raw["text"] == "you idiot \ufffd" and raw["flagged"] and "harassment" in raw["categories"]


def test_an_overlong_text_is_refused_with_a_clear_message(client):
    with pytest.raises(Exception, match=f"the limit here is {support.MAX_TEXT_CHARS:,}"):
        client.predict("a" * (support.MAX_TEXT_CHARS + 1), api_name="/moderate_text")


def test_moderate_batch_returns_every_row_and_a_csv(client, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "comments.csv"
    rows = ["have a lovely day", "you are a worthless idiot", "win a free phone, click this link now"]
    pd.DataFrame({"id": [1, 2, 3], "message": rows}).to_csv(path, index=False)
    table, download, summary = client.predict(handle_file(path), api_name="/moderate_batch")
    assert "3 rows from column `message`" in summary
    scored = pd.read_csv(download, keep_default_na=False)
    assert scored["message"].tolist() == rows and scored["id"].tolist() == [1, 2, 3]
    assert scored["flagged"].tolist()[:2] == [False, True]
    # On screen the verdict comes first (the scored CSV keeps the input's column order).
    assert table["headers"][:5] == ["flagged", "categories", "outcome", "message", "id"] and len(table["data"]) == 3


def test_moderate_batch_names_a_missing_column(client, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "comments.csv"
    path.write_text("id,message\n1,hello\n", encoding="utf-8")
    with pytest.raises(Exception, match="No column 'body'"):
        client.predict(handle_file(path), column="body", api_name="/moderate_batch")


def test_the_scored_csv_is_deleted_with_gradios_cache(client, served_app, tmp_path):
    import gradio as gr
    from gradio.route_utils import delete_files_created_by_app
    from gradio_client import handle_file

    path = tmp_path / "cleanup-check.csv"
    path.write_text("text\nhello\n", encoding="utf-8")
    client.predict(handle_file(path), api_name="/moderate_batch")
    written = [Path(file) for files in served_app.demo.temp_file_sets for file in files
               if Path(file).name == "moderated-cleanup-check.csv"]
    assert written and all(file.is_relative_to(gr.utils.get_upload_folder()) for file in written)
    assert served_app.demo.delete_cache == (3600, 3600)
    delete_files_created_by_app(served_app.demo, age=0)  # what delete_cache runs every hour, for files over an hour
    assert not any(file.exists() for file in written)


def test_uploads_over_20_mb_are_refused_by_the_server(served_app):
    import httpx

    url = served_app.demo.local_url + "gradio_api/upload"
    limit = 20 * 1024 * 1024
    assert httpx.post(url, files={"files": ("ok.csv", b"text\nhello\n")}, timeout=60).status_code == 200
    # gradio_client refuses such a file before sending it; a hand-written request meets the server's limit.
    refused = httpx.post(url, files={"files": ("big.csv", b"a" * (limit + 1))}, timeout=60)
    assert refused.status_code == 413 and "maximum allowed size" in refused.text


def test_evaluate_with_only_the_dataset(client):
    view, reading, plot, by_category, flagged, grid_summary, grid = client.predict("texts", api_name="/evaluate")
    assert view["value"] == "flagged vs clean"
    assert "texts (test split)" in reading and "**Recall:**" in reading
    assert Path(plot).read_bytes().startswith(b"\x89PNG")
    classes = [row[0] for row in by_category["data"]]
    assert classes[:len(TEXT_CATEGORIES)] == list(TEXT_CATEGORIES)
    assert {"accuracy", "macro avg", "weighted avg"} <= set(classes)
    assert [row[0] for row in flagged["data"]][:3] == ["clean", "flagged", "accuracy"]
    assert "GridSearchCV" in grid_summary and grid["headers"][0] == "rank"


def test_evaluate_a_labelled_csv(client, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "labelled.csv"
    path.write_text("text,label\nyou are a worthless idiot,1\nthanks for the lovely dinner,0\n", encoding="utf-8")
    view, reading, *_ = client.predict(handle_file(path), view="harassment", api_name="/evaluate_csv")
    assert view["value"] == "flagged vs clean"  # a 0/1 label has no per-category view
    assert "labelled.csv" in reading and "right about 2 of 2 texts" in reading


def test_moderate_image_on_the_tiny_vit(client):
    from gradio_client import handle_file

    line, scores, labels, preview, notes, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    assert line.startswith("### ")
    assert {c["label"] for c in scores["confidences"]} == set(IMAGE_CATEGORIES) - set(raw["not_assessed"])
    assert {c["label"] for c in labels["confidences"]} <= set(VIT_LABELS)
    assert "No match in the known-image blocklist" in notes and "sexual" in raw["not_assessed"]
    assert (preview is not None) == raw["flagged"]


def test_image_blocklist_round_trip(client):
    from gradio_client import handle_file

    added = client.predict(handle_file(EXAMPLE_IMAGE), note="test entry", api_name="/image_blocklist_add")
    assert "Added to the known-image blocklist" in added
    line, *_, preview, notes, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    assert raw["flagged"] and raw["matched_blocklist"]["note"] == "test entry" and "known image" in line
    assert preview is not None and "Matches a known image" in notes
    assert "not in the known-image blocklist" in client.predict(handle_file(OTHER_IMAGE),
                                                                 api_name="/image_blocklist_remove")
    assert "Removed" in client.predict(handle_file(EXAMPLE_IMAGE), api_name="/image_blocklist_remove")
    *_, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    assert raw["matched_blocklist"] is None


@pytest.mark.parametrize("content", [b"just some text, renamed", bytes(range(256)) * 8], ids=["text", "bytes"])
@pytest.mark.parametrize("api_name", ["/moderate_image", "/image_blocklist_add"])
def test_a_file_that_is_not_an_image_gets_a_clear_message(client, tmp_path, content, api_name):
    from gradio_client import handle_file

    path = tmp_path / "not-an-image.png"
    path.write_bytes(content)
    with pytest.raises(Exception, match="Not a supported image: the data is not a JPEG, PNG"):
        client.predict(handle_file(path), api_name=api_name)


def test_images_sent_as_data_urls_reach_the_same_decoder(served_app):
    def data_url(payload: str) -> dict:
        return {"url": "data:image/png;base64," + payload, "meta": {"_type": "gradio.FileData"}}

    event, outputs = call_http_api(served_app, "moderate_image",
                                   image=data_url(base64.b64encode(EXAMPLE_IMAGE.read_bytes()).decode()))
    assert event == "complete" and outputs[0].startswith("### Image")
    event, error = call_http_api(served_app, "moderate_image", image=data_url(base64.b64encode(b"text").decode()))
    assert event == "error" and error["error"].startswith("Not a supported image")
    event, error = call_http_api(served_app, "moderate_image", image=data_url("not base64!"))
    assert event == "error" and error["error"] == "The image's data URL is not valid base64."


def test_a_corrupt_blocklist_is_reported_without_its_server_path(client, monkeypatch, tmp_path, caplog):
    from gradio_client import handle_file

    corrupt = tmp_path / "server-only-folder" / "blocklist.json"
    corrupt.parent.mkdir()
    corrupt.write_text('{"version": 1, "entr', encoding="utf-8")
    monkeypatch.setenv("MODERATION_IMAGE_BLOCKLIST", str(corrupt))
    for api_name in ("/moderate_image", "/image_blocklist_add", "/image_blocklist_remove"):
        with pytest.raises(Exception) as raised:
            client.predict(handle_file(EXAMPLE_IMAGE), api_name=api_name)
        assert "known-image blocklist is damaged" in str(raised.value)
        assert "server-only-folder" not in str(raised.value) and str(tmp_path) not in str(raised.value)
    assert str(corrupt) in caplog.text  # the operator still learns which file is broken
    assert corrupt.read_text(encoding="utf-8") == '{"version": 1, "entr'  # never emptied


@pytest.mark.parametrize("setting", ["0", "false", "off"])
def test_blocklist_editing_can_be_turned_off(client, monkeypatch, setting):
    from gradio_client import handle_file

    from moderation.image import list_blocklist

    monkeypatch.setenv("MODERATION_BLOCKLIST_EDITING", setting)
    for api_name in ("/image_blocklist_add", "/image_blocklist_remove"):
        with pytest.raises(Exception, match="Editing the known-image blocklist is turned off"):
            client.predict(handle_file(EXAMPLE_IMAGE), api_name=api_name)
    assert list_blocklist() == []
    *_, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    assert raw["matched_blocklist"] is None  # checking against the list still works
    monkeypatch.setenv("MODERATION_BLOCKLIST_EDITING", "1")
    assert "Added" in client.predict(handle_file(EXAMPLE_IMAGE), api_name="/image_blocklist_add")
    assert "Removed" in client.predict(handle_file(EXAMPLE_IMAGE), api_name="/image_blocklist_remove")


def test_unloadable_models_are_explained_in_their_tabs(client, monkeypatch, tmp_path):
    from gradio_client import handle_file

    missing = str(tmp_path / "no-such-model")
    monkeypatch.setenv("MODERATION_IMAGE_MODEL", missing)
    monkeypatch.setenv("MODERATION_GENERATION_MODEL", missing)
    line, scores, labels, preview, notes, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    assert "unavailable" in line and "MODERATION_IMAGE_MODEL" in notes and "error" in raw
    assert "local checkpoint no-such-model" in notes and str(tmp_path) not in notes + json.dumps(raw)  # no server path
    *_, output_line, _, raw = client.predict("Have a lovely day", api_name="/generate")
    assert "unavailable" in output_line and "MODERATION_GENERATION_MODEL" in output_line
    assert str(tmp_path) not in output_line
    assert client.predict("have a lovely day", api_name="/moderate_text")[3]["flagged"] is False  # other tabs work


def test_an_unloadable_text_model_is_a_message_in_the_text_and_metrics_tabs(client, monkeypatch, tmp_path):
    from gradio_client.exceptions import AppError

    missing = str(tmp_path / "no-such-bert")
    monkeypatch.setenv("MODERATION_BERT_MODEL", missing)
    with pytest.raises(AppError, match="MODERATION_BERT_MODEL"):
        client.predict("have a lovely day", model="bert-base-uncased", api_name="/moderate_text")
    with pytest.raises(AppError, match="MODERATION_BERT_MODEL"):
        client.predict("texts", "bert-base-uncased", api_name="/evaluate")
    assert client.predict("have a lovely day", api_name="/moderate_text")[3]["flagged"] is False


def test_generate_streams_growing_guarded_text(client):
    job = client.submit("The weather was great so we", max_new_tokens=30, seed=3, api_name="/generate")
    parts = list(job)
    final_text, prompt_line, output_line, suppressed, raw = parts[-1]
    assert len(parts) >= 3 and raw["attempts"] >= 1 and suppressed == raw["suppressed"]
    assert _segments_text(final_text) == raw["prompt"] + raw["text"]
    texts = [p[4]["text"] for p in parts if p[4] and p[4]["output_verdict"] and not p[4]["output_verdict"]["flagged"]]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    assert "Prompt allowed" in prompt_line and "Output" in output_line and "still generating" not in output_line
    assert any("still generating" in part[2] for part in parts[:-1])  # partial results say so
    again = list(client.submit("The weather was great so we", max_new_tokens=30, seed=3, api_name="/generate"))
    assert again[-1][4]["text"] == raw["text"]  # a seed makes it reproducible


def test_generate_refuses_an_abusive_prompt(client):
    *_, (highlighted, prompt_line, output_line, suppressed, raw) = client.submit(
        "you are a worthless idiot", api_name="/generate")
    assert raw["refused"] and raw["text"] == "" and "Refused" in output_line and "Prompt flagged" in prompt_line
    assert any(p["class_or_confidence"] for p in highlighted)  # the offending prompt words are highlighted


def test_generate_rejects_out_of_range_settings(client):
    with pytest.raises(Exception, match="less than minimum"):  # the sliders' bounds are enforced for API callers too
        client.predict("hello", top_p=0.0, api_name="/generate")


def test_python_app_py_serves_locally_and_explains_a_missing_share_link():
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "MODERATION_SHARE": "1"}
    # Importing the app must not load torch/transformers (no model at import time) nor matplotlib (a second of start-up
    # for figures drawn only in the Metrics tab); then run its main().
    code = ("import sys, app; heavy = [m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules]; "
            "print('HEAVY', heavy, flush=True); app.main([])")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(180, process.kill)  # a hung start fails the test instead of hanging the suite
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "No public share link" in line or "public URL" in line:
                break
        output = "".join(lines)
        assert "HEAVY []" in output and f"http://127.0.0.1:{port}" in output
        assert "share=True" not in output  # Gradio's own hint named the wrong knob
        # Offline (CI, this lab) Gradio cannot fetch its tunnel client, and the app says so and keeps serving.
        assert "No public share link could be created" in output or "public URL" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as response:
            assert response.status == 200
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)


# --- A public Space that strangers cannot hurt (issue 19): each test failed before its fix --------------------------


def _post(url: str, body: bytes, *, source: str = "127.0.0.1", headers=None, chunked: bool = False):
    """POST raw bytes from a chosen loopback source address; (status, parsed JSON or text)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60, source_address=(source, 0))
    try:
        if chunked:
            connection.putrequest("POST", parts.path)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            try:
                for start in range(0, len(body), 65536):
                    chunk = body[start:start + 65536]
                    connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                connection.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed before the whole body was sent: read that answer
        else:
            connection.putrequest("POST", parts.path)
            for name, value in {"Content-Type": "application/json", **(headers or {}),
                                "Content-Length": str(len(body))}.items():
                connection.putheader(name, value)
            connection.endheaders()
            try:
                connection.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused by its Content-Length: the server answered and closed before the body was sent
        response = connection.getresponse()
        data = response.read().decode("utf-8", "replace")
        try:
            return response.status, json.loads(data)
        except json.JSONDecodeError:
            return response.status, data
    finally:
        connection.close()


@pytest.mark.parametrize("api_name", ["moderate_image", "image_blocklist_add", "image_blocklist_remove"])
def test_image_endpoints_never_open_a_path_the_caller_chose(served_app, api_name, tmp_path):
    from moderation.image import list_blocklist

    secret = tmp_path / "secret.png"
    secret.write_bytes(EXAMPLE_IMAGE.read_bytes())  # a real image, but not one this request uploaded
    before = list_blocklist()
    messages = set()
    for path in ["/etc/passwd", str(secret), str(EXAMPLE_IMAGE), "/no/such/file.png", str(tmp_path)]:
        event, error = call_http_api(served_app, api_name, image={"path": path})
        assert event == "error"
        messages.add(error["error"])
    # One path-free message whatever the path: nothing says whether a file exists or how large it is.
    assert messages == {"Only images uploaded with this request can be checked; upload the image again."}
    assert list_blocklist() == before


def test_caller_word_lists_cannot_freeze_the_server(client):
    import time

    bomb = "'".join("a" * 30) + "'c"  # held the server for hours: each extra letter cost x1.6
    text = "a" * 100 + " hello"
    started = time.monotonic()
    for field in ("blocklist", "allowlist"):
        raw = client.predict(text, **{field: bomb}, api_name="/moderate_text")[3]
        assert raw["flagged"] is False
    assert time.monotonic() - started < 10
    with pytest.raises(Exception, match="at most 64 are accepted"):
        client.predict("hello", blocklist="x" * 60_000, api_name="/moderate_text")
    with pytest.raises(Exception, match="at most 64 are accepted"):
        client.predict("hello", blocklist="x" * 60_000, api_name="/generate")


def test_allowlist_patterns_cannot_allow_every_word(client):
    for term in (".*", "'*", "-*"):
        with pytest.raises(Exception, match="has no letter or digit"):
            client.predict("kill yourself", allowlist=term, api_name="/moderate_text")


def test_request_bodies_over_the_limit_are_refused_before_they_are_read(served_app):
    from moderation import serving

    url = f"{served_app.demo.local_url}gradio_api/call/v2/moderate_text"
    body = json.dumps({"text": "x" * (serving.MAX_BODY_BYTES + 10)}).encode()
    status, reply = _post(url, body)
    assert status == 413 and "larger than this server accepts" in reply["error"]
    status, reply = _post(url, body, chunked=True)  # no Content-Length: counted while it streams
    assert status == 413
    status, reply = _post(url, json.dumps({"text": "hello"}).encode())
    assert status == 200 and "event_id" in reply


def test_a_flood_from_one_client_does_not_lock_out_others(served_app):
    flood_url = f"{served_app.demo.local_url}gradio_api/call/no_such_endpoint"
    statuses = [_post(flood_url, b"{}", source="127.0.0.3")[0] for _ in range(TEST_RATE_LIMIT // 3 + 5)]
    assert statuses.count(429) >= 5 and 429 not in statuses[: TEST_RATE_LIMIT // 3]
    status, reply = _post(flood_url, b"{}", source="127.0.0.3")
    assert status == 429 and "Too many requests" in reply["error"]
    status, reply = _post(f"{served_app.demo.local_url}gradio_api/call/v2/moderate_text",
                          json.dumps({"text": "hello"}).encode(), source="127.0.0.4")
    assert status == 200 and "event_id" in reply  # another visitor is served meanwhile


def test_blocklist_editing_is_off_by_default_on_a_public_address(served_app, monkeypatch):
    app = served_app
    monkeypatch.delenv("MODERATION_BLOCKLIST_EDITING", raising=False)
    assert app.blocklist_editing_allowed()  # this test server listens on 127.0.0.1
    monkeypatch.setattr(app.demo, "server_name", "0.0.0.0")
    assert not app.blocklist_editing_allowed()
    monkeypatch.setenv("MODERATION_BLOCKLIST_EDITING", "1")
    assert app.blocklist_editing_allowed()


def test_blocklist_notes_are_capped_and_shown_as_plain_text(client):
    from gradio_client import handle_file

    from moderation.image import MAX_NOTE_CHARS

    with pytest.raises(Exception, match=f"at most {MAX_NOTE_CHARS} are kept"):
        client.predict(handle_file(EXAMPLE_IMAGE), note="n" * (MAX_NOTE_CHARS + 1), api_name="/image_blocklist_add")
    tracker = "![t](http://tracker.example/track.png) <img src=x>"
    client.predict(handle_file(EXAMPLE_IMAGE), note=tracker, api_name="/image_blocklist_add")
    try:
        *_, notes, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
        assert f"`{tracker}`" in notes  # a code span: no image is fetched, no HTML rendered
        assert str(ROOT) not in notes and "/tmp" not in notes  # the model is named, not its server path
    finally:
        client.predict(handle_file(EXAMPLE_IMAGE), api_name="/image_blocklist_remove")


def test_stale_blocklist_writes_are_removed_at_start(tmp_path):
    from moderation.image import remove_stale_writes

    target = tmp_path / "blocklist.json"
    (tmp_path / ".blocklist.json.abc123.tmp").write_text("{", encoding="utf-8")
    (tmp_path / "other.tmp").write_text("kept", encoding="utf-8")
    assert remove_stale_writes(target) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.tmp"]


def test_the_metrics_tab_shows_the_behavioural_suite_and_bias_per_term(client):
    from moderation.identity import IDENTITY_TERMS

    reading, figure, per_term, rates = client.predict("default", api_name="/evaluate_fairness")
    assert "behavioural cases" in reading and "BPSN" in reading and figure
    terms = {row[0] for row in per_term["data"]}
    assert terms == {t.name for t in IDENTITY_TERMS}
    assert per_term["headers"] == ["term", "subgroup_auc", "bpsn_auc", "bnsp_auc", "flagged_share"]
    assert sum(row[1] for row in rates["data"]) == 2001


def test_wrong_typed_api_inputs_get_a_message_not_a_guess(served_app):
    assert support.clean_text(None) == ""
    with pytest.raises(TypeError, match="Expected text, got int"):
        support.clean_text(12345)
    event, error = call_http_api(served_app, "moderate_text", text="hello", harassment="high")
    assert event == "error" and error["error"]  # Gradio's own check of a slider value, with its message
    event, error = call_http_api(served_app, "generate", prompt="hello", max_new_tokens=2.7)
    assert event == "error" and "whole number" in error["error"]
    event, error = call_http_api(served_app, "generate", prompt="hello", seed=1.5)
    assert event == "error" and "whole number" in error["error"]


def test_a_blocklisted_image_is_flagged_even_without_a_classifier(client, monkeypatch, tmp_path):
    from gradio_client import handle_file

    client.predict(handle_file(EXAMPLE_IMAGE), note="known bad", api_name="/image_blocklist_add")
    try:
        monkeypatch.setenv("MODERATION_IMAGE_MODEL", str(tmp_path / "no-such-model"))
        line, scores, labels, preview, notes, raw = client.predict(handle_file(EXAMPLE_IMAGE),
                                                                   api_name="/moderate_image")
        assert raw["flagged"] and raw["matched_blocklist"]["note"] == "known bad" and "known image" in line
        assert "only the known-image blocklist was checked" in notes and preview is not None
        assert raw["not_assessed"] == list(IMAGE_CATEGORIES)
    finally:
        monkeypatch.undo()  # the tiny checkpoint again, before the entry is removed
        client.predict(handle_file(EXAMPLE_IMAGE), api_name="/image_blocklist_remove")


def test_score_panels_show_only_what_a_model_assessed(client):
    from gradio_client import handle_file

    *_, raw = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    line, scores, *_ = client.predict(handle_file(EXAMPLE_IMAGE), api_name="/moderate_image")
    shown = {c["label"] for c in scores["confidences"]}
    assert shown == set(IMAGE_CATEGORIES) - set(raw["not_assessed"]) and "sexual" not in shown


def test_the_server_keeps_a_bounded_number_of_sessions(served_app):
    # Each raw REST call is a new Gradio session; Gradio kept 10,000 of them (~200 KB each: 1 GB and more).
    url = f"{served_app.demo.local_url}gradio_api/call/v2/moderate_text"
    for i in range(TEST_MAX_SESSIONS + 20):
        status, reply = _post(url, json.dumps({"text": f"hello {i}"}).encode())
        assert status == 200
        with urllib.request.urlopen(f"{url}/{reply['event_id']}", timeout=60) as response:
            response.read()
    assert len(served_app.demo.state_holder.session_data) <= TEST_MAX_SESSIONS


def test_uploads_stop_at_the_upload_budget(served_app, monkeypatch):
    import gradio as gr

    from moderation.serving import folder_bytes

    used = folder_bytes(gr.utils.get_upload_folder())
    monkeypatch.setenv("MODERATION_UPLOAD_BUDGET_MB", str((used + 2**19) / 2**20))  # half a MiB of room left
    boundary = "x-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"0" * 2**20 + f"\r\n--{boundary}--\r\n".encode()
    time.sleep(1.1)  # the folder is measured at most once a second
    status, reply = _post(f"{served_app.demo.local_url}gradio_api/upload", body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 507 and "space for uploads is full" in reply["error"]


def test_uploads_a_killed_server_left_behind_are_removed_at_start(tmp_path):
    old, new = tmp_path / "abc" / "old.png", tmp_path / "def" / "new.png"
    for path in (old, new):
        path.parent.mkdir()
        path.write_bytes(b"x")
    os.utime(old, (1, 1))
    assert support.remove_old_files(tmp_path, 3600) == 1
    assert not old.parent.exists() and new.is_file()


def _generate_jobs_waiting(app) -> int:
    from moderation import serving

    return serving.JobWatch(None, queue_of=lambda: app.demo._queue).waiting("generate")


def test_the_generation_queue_is_bounded_and_unheard_jobs_are_dropped(served_app):
    import time

    # 300 quick POSTs whose results nobody read filled the one global queue for ~6 minutes, each job still run.
    url = f"{served_app.demo.local_url}gradio_api/call/v2/generate"
    body = json.dumps({"prompt": "Once upon a time", "max_new_tokens": 200, "seed": 1}).encode()
    replies = [_post(url, body, source="127.0.0.5") for _ in range(served_app.GENERATION_QUEUE_SIZE + 8)]
    statuses = [status for status, _ in replies]
    assert statuses.count(503) >= 4 and statuses.count(200) >= served_app.GENERATION_QUEUE_SIZE
    assert all("generate queue is full" in reply["error"] for status, reply in replies if status == 503)
    assert _generate_jobs_waiting(served_app) <= served_app.GENERATION_QUEUE_SIZE
    # Text moderation is not held up by the generation queue.
    assert call_http_api(served_app, "moderate_text", text="hello")[0] == "complete"
    # Nobody opened the results of those jobs: all of them are dropped after the grace time, not run in turn.
    def generate_jobs():  # waiting or running
        return [e for e in list(served_app.demo._queue.event_ids_to_events.values()) if e.fn.api_name == "generate"]

    deadline = time.monotonic() + TEST_UNHEARD_SECONDS + 5
    while generate_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _generate_jobs_waiting(served_app) == 0
    assert generate_jobs() == [], [(e.alive, e.session_hash, time.monotonic() - e.enqueue_time)
                                   for e in generate_jobs()]
    # A listened-for generation still runs to the end, however long it waits in the queue.
    event, outputs = call_http_api(served_app, "generate", prompt="Once upon a time", max_new_tokens=5)
    assert event == "complete"


def test_text_fields_refuse_numbers_and_lists_from_the_api(served_app):
    # Gradio's Textbox turned 12345 into "12345" and moderated it; the Python API raises TypeError instead.
    for value in (12345, ["kill", "yourself"], {"text": "hi"}):
        event, error = call_http_api(served_app, "moderate_text", text=value)
        assert event == "error" and "takes text" in error["error"]
    event, error = call_http_api(served_app, "moderate_text", text="hello", blocklist=7)
    assert event == "error" and "Blocklist" in error["error"]
    assert call_http_api(served_app, "moderate_text", text="12345")[0] == "complete"


def test_models_that_cannot_be_loaded_are_named_up_front(served_app, monkeypatch, tmp_path):
    import huggingface_hub.constants

    # Offline, choosing bert-base-uncased or opening the Image tab without a model was the first a visitor heard.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed port: the hub is unreachable
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    text, image, generation, *menus = served_app.on_page_load(3)
    assert "`bert-base-uncased`" in text and "MODERATION_BERT_MODEL" in text and "`toxic-bert`" in text
    assert "`transformer`" not in text  # the bundled MiniLM needs no hub
    assert image == generation == ""  # the tiny local checkpoints of this test server load
    for menu in menus:
        assert ("bert-base-uncased (unavailable here)", "bert-base-uncased") in menu.choices
        assert ("logreg", "logreg") in menu.choices and ("transformer", "transformer") in menu.choices
    monkeypatch.setenv("MODERATION_IMAGE_MODEL", str(tmp_path / "secret" / "vit"))
    _, image, *_ = served_app.on_page_load(3)
    assert "local checkpoint vit" in image and "MODERATION_IMAGE_MODEL" in image and str(tmp_path) not in image


def test_a_new_upload_clears_the_last_result_and_says_once_why_a_file_cannot_be_read(served_app, tmp_path):
    # A non-CSV upload showed pandas' "C error: Expected 1 fields in line 11" twice, beside the previous file's summary.
    broken = tmp_path / "photo.csv"
    broken.write_bytes(EXAMPLE_IMAGE.read_bytes())
    menu, table, download, summary = served_app.on_upload(str(broken))
    assert table.empty and list(table.columns) == ["flagged", "categories", "outcome"] and download is None
    assert summary.startswith("**photo.csv cannot be read:**") and menu.choices == []
    good = tmp_path / "comments.csv"
    pd.DataFrame({"id": [1, 2], "comment": ["hi", "you idiot"]}).to_csv(good, index=False)
    menu, table, download, summary = served_app.on_upload(str(good))
    assert menu.value == "comment" and table.empty and download is None and "2 rows" in summary


def test_a_report_is_cleared_before_the_next_evaluation_and_tables_have_real_headers(served_app):
    # A failed Metrics run left the previous model's report under the new model's name; empty tables read "1 2 3".
    report, view, reading, figure, by_category, flagged, grid_summary, grid = served_app.on_clear_report()
    assert report is None and reading == "" and figure is None and grid_summary == ""
    assert list(by_category.columns) == list(flagged.columns) == list(evaluation.REPORT_COLUMNS) and by_category.empty
    config = served_app.demo.config
    evaluate = next(d for d in config["dependencies"] if d.get("api_name") == "evaluate")
    clear = next(d for d in config["dependencies"] if d["id"] == evaluate["trigger_after"])
    assert clear["backend_fn"] and clear["outputs"] == evaluate["outputs"]  # the clearing step runs first


def test_only_flagged_labels_say_why_there_is_no_per_category_report(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"text": ["have a nice day", "you worthless idiot"], "label": [0, 1]}).to_csv(path, index=False)
    report = evaluation.evaluate_labelled_csv(path, "default", name="labels.csv")
    assert report.category_table().empty and "no per-category report" in report.reading()
    assert "samples average" in report.reading()  # the per-category table's "samples avg" row is explained


def test_a_clearly_weaker_model_says_so_under_its_verdict():
    # The decision tree gave weak verdicts (0.42 test macro-F1 against 0.82) without a word that it is weak.
    from moderation.text.model_card import model_record

    tree_f1 = f"{model_record('tree')['test_f1_macro']:.2f}"  # the card's figure, whatever the data version
    assert "Weaker than the default" in support.model_status("tree") and tree_f1 in support.model_status("tree")
    assert support.model_status("logreg") == "Model `logreg`"
    assert support.model_status("default") == "Model `default`"


def test_handlers_speak_the_package_names_and_take_one_threshold_per_category(served_app):
    import inspect

    from moderation import generation

    parameters = list(inspect.signature(served_app.on_moderate_text).parameters)
    assert parameters[4:-1] == list(TEXT_CATEGORIES)  # explicit, named after the taxonomy, in its order
    assert not hasattr(served_app, "moderate_text")  # no handler shadows the package's moderate_text
    sliders = {block.label: block for block in served_app.demo.blocks.values() if hasattr(block, "maximum")}
    assert sliders["Max new tokens"].maximum == generation.MAX_NEW_TOKENS_CAP
    assert sliders["Temperature"].maximum == generation.MAX_TEMPERATURE


def test_a_request_with_too_few_inputs_is_refused_without_echoing_or_logging_its_payload(served_app, capfd):
    # Gradio's message quoted every value received: a 1.5 MB text went whole into the answer and the server log.
    url = f"{served_app.demo.local_url}gradio_api/call/moderate_text"
    body = json.dumps({"data": ["x" * 1_500_000]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}/{event_id}", timeout=60) as response:
        answer = response.read().decode()
    assert "event: error" in answer and "takes 12 inputs; the request sent 1" in answer and len(answer) < 2000
    captured = capfd.readouterr()
    assert "xxxxxxxxxx" not in captured.out + captured.err
