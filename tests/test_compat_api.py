"""The drop-in APIs (moderation.compat): OpenAI's /v1/moderations through the official `openai` client, Perspective's
comments:analyze as raw JSON, on a headless server on loopback, under `python -m moderation serve` and beside the UI
on Gradio's app. Verdicts must be moderate_text's; errors must come in each API's own shape."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from moderation import moderate_text, serving
from moderation.compat import openai_format, perspective_format
from moderation.compat.server import build_app
from moderation.taxonomy import TEXT_CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-16"
TEXTS = [
    "have a lovely day",
    "you f*cking idiot, i will kill you",
    "where can i buy coke around here",
    "WIN a FREE iPhone now!!! click http://prizes.example to claim",
    "I want to kill myself tonight",
    "The vote is on Tuesday; the polling station opens at seven.",
]
PERSPECTIVE = "/v1alpha1/comments:analyze"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def on_loopback(app):
    """`app` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def api_url():
    with on_loopback(build_app("logreg", key=KEY, requests_per_minute=0)) as url:
        yield url


def openai_client(base_url: str, key: str = KEY):
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=60)


def assert_openai_result_is_the_verdict(result, verdict):
    """One OpenAI result against moderate_text's verdict for the same text, category by category."""
    categories = result.categories.model_dump(by_alias=True)
    scores = result.category_scores.model_dump(by_alias=True)
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert result.flagged is verdict.flagged
    for name, ours in openai_format.OPENAI_CATEGORIES.items():
        if not ours:  # not assessed: never invented
            assert (categories[name], scores[name], applied[name]) == (False, 0.0, []), name
        else:
            assert categories[name] is all(c in verdict.categories for c in ours), name
            assert scores[name] == min(verdict.scores[c] for c in ours), name
            assert applied[name] == ["text"], name
    assert {c for ours in openai_format.OPENAI_CATEGORIES.values() for c in ours} == set(TEXT_CATEGORIES)


def test_the_openai_client_gets_moderate_texts_verdicts_for_one_text_and_for_a_list(api_url):
    client = openai_client(api_url)
    expected = moderate_text(TEXTS, model="svm")
    for text, verdict in zip(TEXTS[:2], expected):
        response = client.moderations.create(input=text, model="svm")
        assert response.model == "svm" and response.id.startswith("modr-") and len(response.results) == 1
        assert_openai_result_is_the_verdict(response.results[0], verdict)
    response = client.moderations.create(input=TEXTS, model="svm")
    assert len(response.results) == len(TEXTS)
    for result, verdict in zip(response.results, expected):
        assert_openai_result_is_the_verdict(result, verdict)
    abusive = response.results[1]
    assert abusive.categories.harassment and abusive.categories.violence and abusive.categories.harassment_threatening
    assert not response.results[0].flagged and response.results[2].categories.illicit
    # No model named: the server's (logreg here); content parts are one input, as OpenAI answers them.
    parts = client.moderations.create(input=[{"type": "text", "text": "you are an"}, {"type": "text", "text": "idiot"}])
    assert parts.model == "logreg" and len(parts.results) == 1
    assert_openai_result_is_the_verdict(parts.results[0], moderate_text("you are an\nidiot", model="logreg"))


def test_a_list_input_is_one_model_call(api_url, monkeypatch):
    import moderation.text

    calls = []

    def counting(texts, **options):
        calls.append(len(texts))
        return moderate_text(texts, **options)

    monkeypatch.setattr(moderation.text, "moderate_text", counting)
    openai_client(api_url).moderations.create(input=TEXTS * 6)
    assert calls == [len(TEXTS) * 6]


def test_perspective_json_gets_moderate_texts_scores_and_spans(api_url):
    text = "you f*cking idiot, i will kill you"
    verdict = moderate_text(text, model="logreg")
    body = {"comment": {"text": text, "type": "PLAIN_TEXT"}, "languages": ["en-GB"], "doNotStore": True,
            "requestedAttributes": {name: {} for name in perspective_format.PERSPECTIVE_ATTRIBUTES},
            "spanAnnotations": True, "clientToken": "req-7"}
    reply = httpx.post(f"{api_url}{PERSPECTIVE}", params={"key": KEY}, json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["clientToken"] == "req-7" and data["languages"] == ["en"]
    scores = data["attributeScores"]
    assert set(scores) == set(perspective_format.PERSPECTIVE_ATTRIBUTES)
    for name, ours in perspective_format.PERSPECTIVE_ATTRIBUTES.items():
        assert scores[name]["summaryScore"] == {"value": max(verdict.scores[c] for c in ours), "type": "PROBABILITY"}
        spans = [(s["begin"], s["end"], s["score"]["value"]) for s in scores[name]["spanScores"]]
        assert spans == [(s.start, s.end, s.score) for s in verdict.spans if s.label in ours], name
    assert [text[s["begin"]:s["end"]] for s in scores["INSULT"]["spanScores"]] == ["idiot"]
    assert scores["THREAT"]["summaryScore"]["value"] == verdict.scores["violence"] > 0.5
    assert scores["SPAM"]["summaryScore"]["value"] < 0.1
    # scoreThreshold leaves out what scores under it; no spans unless asked for.
    body = {"comment": {"text": "have a lovely day"}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 0.5},
                                                                              "SPAM": {}}}
    data = httpx.post(f"{api_url}{PERSPECTIVE}?key={KEY}", json=body, timeout=60).json()
    assert list(data["attributeScores"]) == ["SPAM"] and "spanScores" not in data["attributeScores"]["SPAM"]


def test_a_wrong_or_missing_key_is_401_in_each_apis_shape(api_url):
    from openai import AuthenticationError

    with pytest.raises(AuthenticationError) as caught:
        openai_client(api_url, key="wrong").moderations.create(input="hello")
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert "Authorization: Bearer" in caught.value.body["message"]
    reply = httpx.post(f"{api_url}{PERSPECTIVE}", json={"comment": {"text": "hi"}, "requestedAttributes": {"SPAM": {}}})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == 401 and reply.json()["error"]["status"] == "UNAUTHENTICATED"


def test_bodies_over_the_limit_are_413_before_they_are_read_in_each_apis_shape(api_url):
    from openai import APIStatusError

    huge = "x" * (serving.MAX_BODY_BYTES + 10)
    with pytest.raises(APIStatusError) as caught:
        openai_client(api_url).moderations.create(input=huge)
    assert caught.value.status_code == 413 and caught.value.code == "request_too_large"
    assert caught.value.body["type"] == "invalid_request_error"
    assert "larger than this server accepts" in caught.value.body["message"]

    def chunks():  # no Content-Length: counted while it streams
        yield json.dumps({"comment": {"text": huge}})[: serving.MAX_BODY_BYTES // 2].encode()
        yield b"x" * serving.MAX_BODY_BYTES

    reply = httpx.post(f"{api_url}{PERSPECTIVE}?key={KEY}", content=chunks(), timeout=60)
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == 413 and reply.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("body, param, fragment", [
    ({"input": "hello", "model": "omni-moderation-latest"}, "model", "does not exist on this server"),
    ({"input": 123}, "input", "must be a string"),
    ({"input": []}, "input", "non-empty array"),
    ({"texts": ["hello"]}, "input", "required"),
    ({"input": ["ok", 5]}, "input[1]", "Expected text, got int"),
    ({"input": [{"type": "text", "text": "ok"}, "plain"]}, "input[1]", "part like input[0]"),
    ({"input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, "input[0]", "text only"),
    ({"input": ["a"] * (openai_format.MAX_INPUTS + 1)}, "input", "at most"),
    ({"input": "a" * 100_001}, "input", "the limit here is"),
])
def test_bad_openai_requests_are_400_in_openais_shape(api_url, body, param, fragment):
    reply = httpx.post(f"{api_url}/v1/moderations", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and fragment in error["message"]


@pytest.mark.parametrize("body, fragment", [
    ({"comment": {"text": "hi"}, "requestedAttributes": {"FLIRTATION": {}}},
     "not supported by this server: FLIRTATION"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["de"]},
     "does not support request languages: de"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {}}, "at least one attribute"),
    ({"comment": {"text": "   "}, "requestedAttributes": {"TOXICITY": {}}}, "non-empty"),
    ({"comment": "hi", "requestedAttributes": {"TOXICITY": {}}}, "comment.text is required"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 2}}}, "in [0, 1]"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreType": "STD_DEV_SCORE"}}}, "PROBABILITY"),
    ({"comment": {"text": "hi", "type": "HTML"}, "requestedAttributes": {"TOXICITY": {}}}, "PLAIN_TEXT"),
    ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "spanAnnotations": "yes"}, "true or false"),
])
def test_bad_perspective_requests_are_400_in_perspectives_shape(api_url, body, fragment):
    reply = httpx.post(f"{api_url}{PERSPECTIVE}?key={KEY}", json=body, timeout=60)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]


def test_what_is_not_json_or_not_a_post_gets_each_apis_shape(api_url):
    bearer = {"Authorization": f"Bearer {KEY}"}
    for content in (b"{not json", b"\xff\xfe\x00", b"[" * 100_000):
        reply = httpx.post(f"{api_url}/v1/moderations", content=content, headers=bearer)
        assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]["message"]
    reply = httpx.get(f"{api_url}/v1/moderations", headers=bearer)
    assert reply.status_code == 405 and reply.json()["error"]["message"] == "Method Not Allowed"
    reply = httpx.get(f"{api_url}{PERSPECTIVE}?key={KEY}")
    assert reply.status_code == 405 and reply.json()["error"]["status"] == "UNIMPLEMENTED"


def test_a_client_over_the_rate_limit_gets_429_in_each_apis_shape():
    from openai import RateLimitError

    with on_loopback(build_app("logreg", requests_per_minute=2)) as url:
        client = openai_client(url)
        client.moderations.create(input="one")
        client.moderations.create(input="two")
        with pytest.raises(RateLimitError) as caught:
            client.moderations.create(input="three")
        assert caught.value.code == "rate_limit_exceeded" and "Too many requests" in caught.value.body["message"]
        assert int(caught.value.response.headers["retry-after"]) >= 1
        reply = httpx.post(f"{url}{PERSPECTIVE}", json={"comment": {"text": "hi"}, "requestedAttributes": {"SPAM": {}}})
        assert reply.status_code == 429 and reply.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_the_api_server_does_not_import_gradio():
    code = ("import sys; from moderation.compat.server import build_app; build_app(); "
            "print(sorted(m for m in ('gradio', 'torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_python_m_moderation_serve_answers_both_apis():
    from openai import APIConnectionError

    port = free_port()
    env = {**os.environ, "MODERATION_API_KEY": KEY}
    process = subprocess.Popen([sys.executable, "-m", "moderation", "serve", "--port", str(port), "--model", "logreg"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "serve did not start"
            try:
                response = openai_client(f"http://127.0.0.1:{port}").moderations.create(input=TEXTS[1])
                break
            except APIConnectionError:  # not listening yet
                time.sleep(0.2)
        assert response.model == "logreg" and response.results[0].flagged
        reply = httpx.post(f"http://127.0.0.1:{port}{PERSPECTIVE}?key={KEY}",
                           json={"comment": {"text": TEXTS[1]}, "requestedAttributes": {"INSULT": {}}})
        assert reply.json()["attributeScores"]["INSULT"]["summaryScore"]["value"] > 0.5
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_unknown_serve_model_is_refused_before_listening(capsys):
    from moderation.cli import main

    assert main(["serve", "--port", str(free_port()), "--model", "nope"]) == 2
    assert "unknown text model 'nope'" in capsys.readouterr().err


def test_the_gradio_app_serves_the_apis_on_the_ui_port(monkeypatch):
    from test_app import load_app  # the same app module test_app.py launches

    monkeypatch.setenv("MODERATION_API_KEY", KEY)
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    app = load_app()
    app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                    **app.launch_options())
    try:
        url = app.demo.local_url.rstrip("/")
        response = openai_client(url).moderations.create(input=TEXTS[:2])
        for result, verdict in zip(response.results, moderate_text(TEXTS[:2])):
            assert_openai_result_is_the_verdict(result, verdict)
        reply = httpx.post(f"{url}{PERSPECTIVE}?key={KEY}",
                           json={"comment": {"text": TEXTS[1]}, "requestedAttributes": {"THREAT": {}}})
        assert reply.json()["attributeScores"]["THREAT"]["summaryScore"]["value"] == moderate_text(TEXTS[1]).scores[
            "violence"]
        # The UI's own guards stand in front, in the API's shape; the UI is still there.
        reply = httpx.post(f"{url}{PERSPECTIVE}?key=wrong", json={})
        assert reply.status_code == 401 and reply.json()["error"]["status"] == "UNAUTHENTICATED"
        reply = httpx.post(f"{url}/v1/moderations", content=b"x" * (serving.MAX_BODY_BYTES + 1))
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"
        assert httpx.get(f"{url}/config").status_code == 200
    finally:
        app.demo.close()
