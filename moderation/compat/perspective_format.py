"""Google Perspective's `POST /v1alpha1/comments:analyze` over `moderate_text`: request, attributes, response, errors.

    {"comment": {"text": "..."}, "requestedAttributes": {"TOXICITY": {}, "INSULT": {"scoreThreshold": 0.5}},
     "spanAnnotations": true, "languages": ["en"], "doNotStore": true}
    -> {"attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.93, "type": "PROBABILITY"},
                                         "spanScores": [{"begin": 4, "end": 9, "score": {...}}]}, ...},
        "languages": ["en"], "detectedLanguages": ["en"]}

Nothing is ever stored, so `doNotStore` is accepted either way; `context`, `sessionId` and `communityId` are
accepted and not used. Offsets are Python string indices (Unicode code points) into `comment.text`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..taxonomy import TOXIC_CATEGORIES
from . import ApiError

#: Perspective attribute -> the categories of ours it reads. Its summary score is the highest of their scores, and
#: its span scores are our spans labelled with one of them. TOXICITY is every category the Toxic Spans evaluation
#: counts as toxic (all but spam and illicit); SEVERE_TOXICITY the three most severe of our taxonomy, so insults and
#: swearing alone do not make it; SPAM is our extension (Perspective's was experimental).
PERSPECTIVE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "TOXICITY": TOXIC_CATEGORIES,
    "SEVERE_TOXICITY": ("self_harm", "violence", "hate"),
    "IDENTITY_ATTACK": ("hate",),
    "INSULT": ("harassment",),
    "PROFANITY": ("profanity",),
    "THREAT": ("violence",),
    "SEXUALLY_EXPLICIT": ("sexual",),
    "SPAM": ("spam",),
}
#: Our models read English only; "en" and its regional tags ("en-GB") are accepted.
LANGUAGES = ("en",)


@dataclass(frozen=True)
class AnalyzeRequest:
    text: str
    attributes: dict[str, float | None]  # attribute -> scoreThreshold (None: always reported)
    span_annotations: bool
    client_token: str | None


def _invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def _attribute_options(name: str, options) -> float | None:
    if not isinstance(options, dict):
        raise _invalid(f"requestedAttributes.{name} must be an object such as {{}} or {{\"scoreThreshold\": 0.5}}.")
    if options.get("scoreType", "PROBABILITY") != "PROBABILITY":
        raise _invalid(f"Attribute {name} supports only scoreType PROBABILITY, not {options['scoreType']!r}.")
    threshold = options.get("scoreThreshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not 0 <= threshold <= 1):
        raise _invalid(f"requestedAttributes.{name}.scoreThreshold must be a number in [0, 1], got {threshold!r}.")
    return threshold


def _check_languages(languages, attributes) -> None:
    if languages is None:
        return
    if not isinstance(languages, list) or not all(isinstance(tag, str) for tag in languages):
        raise _invalid("languages must be a list of language codes such as [\"en\"].", "languages")
    unsupported = [tag for tag in languages if tag.lower().split("-")[0] not in LANGUAGES]
    if unsupported:
        raise _invalid(f"Attribute {next(iter(attributes))} does not support request languages: "
                       f"{', '.join(unsupported)}. This server reads {', '.join(LANGUAGES)} only.", "languages")


def parse_request(body) -> AnalyzeRequest:
    """What to score and report, or an ApiError in Perspective's terms."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object with comment.text and requestedAttributes.")
    comment = body.get("comment")
    if not isinstance(comment, dict) or not isinstance(comment.get("text"), str):
        raise _invalid("comment.text is required and must be a string.", "comment.text")
    if comment.get("type", "PLAIN_TEXT") != "PLAIN_TEXT":
        raise _invalid(f"comment.type {comment['type']!r} is not supported; send PLAIN_TEXT.", "comment.type")
    from ..app_support import clean_text

    try:
        text = clean_text(comment["text"])
    except ValueError as exc:
        raise _invalid(str(exc), "comment.text") from None
    if not text.strip():
        raise _invalid("Comment must be non-empty.", "comment.text")
    requested = body.get("requestedAttributes")
    if not isinstance(requested, dict) or not requested:
        raise _invalid(f"requestedAttributes must name at least one attribute: {', '.join(PERSPECTIVE_ATTRIBUTES)}.",
                       "requestedAttributes")
    unknown = [name for name in requested if name not in PERSPECTIVE_ATTRIBUTES]
    if unknown:
        raise _invalid(f"Requested attribute(s) not supported by this server: {', '.join(unknown)}. Supported: "
                       f"{', '.join(PERSPECTIVE_ATTRIBUTES)}.", "requestedAttributes")
    _check_languages(body.get("languages"), requested)
    for flag in ("spanAnnotations", "doNotStore"):
        if not isinstance(body.get(flag, False), bool):
            raise _invalid(f"{flag} must be true or false.", flag)
    token = body.get("clientToken")
    if token is not None and not isinstance(token, str):
        raise _invalid("clientToken must be a string.", "clientToken")
    return AnalyzeRequest(text, {name: _attribute_options(name, options) for name, options in requested.items()},
                          body.get("spanAnnotations", False), token)


def attribute_scores(verdict, request: AnalyzeRequest) -> dict:
    """Perspective's attributeScores for one verdict, through `PERSPECTIVE_ATTRIBUTES`; an attribute whose summary is
    under its scoreThreshold is left out, as Perspective does."""
    scores = {}
    for name, threshold in request.attributes.items():
        ours = PERSPECTIVE_ATTRIBUTES[name]
        summary = max(verdict.scores[c] for c in ours)
        if threshold is not None and summary < threshold:
            continue
        scores[name] = {"summaryScore": {"value": summary, "type": "PROBABILITY"}}
        if request.span_annotations:
            scores[name]["spanScores"] = [
                {"begin": span.start, "end": span.end, "score": {"value": span.score, "type": "PROBABILITY"}}
                for span in verdict.spans if span.label in ours]
    return scores


def answer(body, default_model: str) -> dict:
    """The whole exchange: parse, `moderate_text` (spans only when asked for), Perspective's response."""
    from ..text import moderate_text

    request = parse_request(body)
    verdict = moderate_text(request.text, model=default_model, explain_spans=request.span_annotations)
    response = {"attributeScores": attribute_scores(verdict, request), "languages": list(LANGUAGES),
                "detectedLanguages": list(LANGUAGES)}
    if request.client_token is not None:
        response["clientToken"] = request.client_token
    return response


#: Google's canonical status names by HTTP status.
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
                 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


def error_body(error: ApiError) -> dict:
    """Perspective's (Google's) error shape: {"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}."""
    return {"error": {"code": error.status, "message": error.message,
                      "status": _STATUS_NAMES.get(error.status, "INTERNAL" if error.status >= 500 else "UNKNOWN")}}


def presented_key(headers, query) -> str | None:
    """The API key the caller sent: `?key=KEY`, as Perspective's clients do (or Google's X-Goog-Api-Key header)."""
    return query.get("key") or headers.get("x-goog-api-key")
