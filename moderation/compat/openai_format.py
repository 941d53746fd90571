"""OpenAI's `POST /v1/moderations` over `moderate_text`: the request, the category table, the response, the errors.

    {"input": "text" | ["text", ...] | [{"type": "text", "text": "..."}, ...], "model": "logreg"}
    -> {"id": "modr-...", "model": "logreg", "results": [{"flagged", "categories", "category_scores",
                                                          "category_applied_input_types"}, ...]}

A string gets one result, a list of strings one result per string (all scored in one `moderate_text` call), and a
list of content parts one result for all of them, as OpenAI answers. `model` takes our model names; OpenAI's own
(`omni-moderation-latest`) get a 400, so a gateway configured for another service fails loudly instead of silently
getting another model's judgement.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from . import ApiError

#: OpenAI's category names -> the categories of ours that make them. One name: that category's flag and score.
#: Two names: OpenAI's category is "X that also includes violence", flagged when both of ours are, scored with the
#: lower of their two scores. Empty: we do not assess it: always false, score 0, applied to no input type.
#: `spam` and `profanity` have no OpenAI name and come as two extra keys, so that `flagged` (ours: any category)
#: always has a category behind it.
OPENAI_CATEGORIES: dict[str, tuple[str, ...]] = {
    "harassment": ("harassment",),
    "harassment/threatening": ("harassment", "violence"),
    "hate": ("hate",),
    "hate/threatening": ("hate", "violence"),
    "illicit": ("illicit",),
    "illicit/violent": ("illicit", "violence"),
    "self-harm": ("self_harm",),
    "self-harm/intent": (),
    "self-harm/instructions": (),
    "sexual": ("sexual",),
    "sexual/minors": (),
    "violence": ("violence",),
    "violence/graphic": (),
    "spam": ("spam",),
    "profanity": ("profanity",),
}
#: Most inputs one request may list (each is at most `app_support.MAX_TEXT_CHARS` characters; the body limit of
#: `moderation.serving` bounds the total).
MAX_INPUTS = 1000


@dataclass(frozen=True)
class ModerationRequest:
    texts: list[str]  # one per result
    model: str


def _model(body: dict, default_model: str) -> str:
    from ..text import available_models

    model = body.get("model")
    if model is None:
        return default_model
    if not isinstance(model, str) or model not in available_models():
        raise ApiError(400, f"The model {model!r} does not exist on this server; available: "
                            f"{', '.join(available_models())}.", param="model", code="model_not_found")
    return model


def _clean(text, param: str) -> str:
    from ..app_support import clean_text

    try:
        return clean_text(text)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"Invalid '{param}': {exc}", param=param) from None


def _joined_parts(parts: list) -> str:
    """The text of a list of content parts, one result for all of them (OpenAI's multi-modal form)."""
    texts = []
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(_clean(part.get("text"), f"input[{i}].text"))
        elif kind == "image_url":
            raise ApiError(400, "This server moderates text only; send images to the lab's Image tab or to "
                                "`moderation.moderate_image`.", param=f"input[{i}]", code="image_input_not_supported")
        else:
            raise ApiError(400, f"input[{i}] must be a {{'type': 'text', 'text': ...}} part like input[0].",
                           param=f"input[{i}]")
    return "\n".join(texts)


def parse_request(body, default_model: str) -> ModerationRequest:
    """The texts to score (one per result) and the model, or an ApiError saying what is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object such as {\"input\": \"text to classify\"}.")
    if "input" not in body:
        raise ApiError(400, "'input' is a required property.", param="input")
    given = body["input"]
    if isinstance(given, str):
        texts = [_clean(given, "input")]
    elif isinstance(given, list) and given:
        if len(given) > MAX_INPUTS:
            raise ApiError(400, f"'input' lists {len(given):,} items; at most {MAX_INPUTS:,} per request.",
                           param="input")
        if isinstance(given[0], str):
            texts = [_clean(item, f"input[{i}]") for i, item in enumerate(given)]
        else:
            texts = [_joined_parts(given)]
    else:
        raise ApiError(400, "'input' must be a string, a non-empty array of strings or an array of "
                            "{'type': 'text', 'text': ...} parts.", param="input")
    return ModerationRequest(texts, _model(body, default_model))


def result(verdict) -> dict:
    """One verdict as OpenAI's result object, through `OPENAI_CATEGORIES`."""
    flagged = set(verdict.categories)
    return {
        "flagged": verdict.flagged,
        "categories": {name: bool(ours) and flagged.issuperset(ours) for name, ours in OPENAI_CATEGORIES.items()},
        "category_scores": {name: min((verdict.scores[c] for c in ours), default=0.0)
                            for name, ours in OPENAI_CATEGORIES.items()},
        "category_applied_input_types": {name: ["text"] if ours else [] for name, ours in OPENAI_CATEGORIES.items()},
    }


def answer(body, default_model: str) -> dict:
    """The whole exchange: parse, one `moderate_text` call for every input, OpenAI's response."""
    from ..text import moderate_text

    request = parse_request(body, default_model)
    verdicts = moderate_text(request.texts, model=request.model, explain_spans=False)  # no spans in this format
    return {"id": f"modr-{uuid.uuid4().hex}", "model": verdicts[0].model, "results": [result(v) for v in verdicts]}


#: OpenAI's error `type` by HTTP status (anything else >= 500 is a server_error).
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                405: "invalid_request_error", 413: "invalid_request_error", 429: "requests"}
_ERROR_CODES = {401: "invalid_api_key", 413: "request_too_large", 429: "rate_limit_exceeded"}


def error_body(error: ApiError) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": error.message,
                      "type": _ERROR_TYPES.get(error.status, "server_error" if error.status >= 500 else
                                               "invalid_request_error"),
                      "param": error.param, "code": error.code or _ERROR_CODES.get(error.status)}}


def presented_key(headers, query) -> str | None:
    """The API key the caller sent: `Authorization: Bearer KEY`, as the openai client does."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None
