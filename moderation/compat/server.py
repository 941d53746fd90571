"""The two drop-in APIs as ASGI routes: beside the UI on Gradio's app, or on their own (`python -m moderation serve`).

    POST /v1/moderations              OpenAI's format (moderation.compat.openai_format)
    POST /v1alpha1/comments:analyze   Perspective's format (moderation.compat.perspective_format)

The same guards as the UI stand in front of them (`moderation.serving`: a body limit enforced before the body is read,
per-client rate limits), and `ApiErrorShape` rewrites what those guards answer into each API's error shape. With
`MODERATION_API_KEY` set, a request must carry that key (`Authorization: Bearer` for OpenAI's format, `?key=` for
Perspective's) or gets 401. Starlette only: nothing here imports gradio.
"""
from __future__ import annotations

import hmac
import json
import logging
from http import HTTPStatus

from .. import serving, settings
from ..hub import ModelUnavailableError
from . import ApiError, openai_format, perspective_format

API_KEY_ENV = "MODERATION_API_KEY"
#: Each API's path and the module that speaks its format.
FORMATS = {"/v1/moderations": openai_format, "/v1alpha1/comments:analyze": perspective_format}
API_PATHS = tuple(FORMATS)
_KEY_HINTS = {openai_format: "send it as `Authorization: Bearer <key>`",
              perspective_format: "send it as `?key=<key>` in the URL"}

logger = logging.getLogger(__name__)


def configured_api_key() -> str | None:
    """The key callers must present ($MODERATION_API_KEY), or None when the APIs are open."""
    return settings.value(API_KEY_ENV) or None


def _key_matches(given: str | None, key: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), key.encode("utf-8"))


def _parse_json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; nesting too deep is a RecursionError
        raise ApiError(400, "The request body is not valid JSON (UTF-8).") from None


def _endpoint(wire, default_model: str, key: str | None):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    async def endpoint(request):
        try:
            if key is not None and not _key_matches(wire.presented_key(request.headers, request.query_params), key):
                raise ApiError(401, f"Missing or incorrect API key: this server needs its MODERATION_API_KEY; "
                                    f"{_KEY_HINTS[wire]}.")
            payload = _parse_json(await request.body())
            # Scoring is CPU work: off the event loop, so other requests are read and answered meanwhile.
            return JSONResponse(await run_in_threadpool(wire.answer, payload, default_model))
        except ApiError as exc:
            error = exc
        except ModelUnavailableError as exc:
            error = ApiError(503, str(exc))
        except Exception:  # a bug must not reach the caller as a traceback or a dropped connection
            logger.exception("moderation API request failed")
            error = ApiError(500, "The server failed to moderate this request; the details are in its log.")
        return JSONResponse(wire.error_body(error), status_code=error.status)

    return endpoint


def api_routes(default_model: str = "default", key: str | None = None) -> list:
    """Starlette routes for both APIs; `default_model` answers requests that name none (Perspective's never do)."""
    from starlette.routing import Route

    return [Route(path, _endpoint(wire, default_model, key), methods=["POST"]) for path, wire in FORMATS.items()]


def _reshaped(wire, status: int, body: bytes) -> bytes:
    """An error body in `wire`'s shape: ours pass unchanged; `{"error": "..."}` (moderation.serving) and plain text
    (the router's 405) become its error object."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return body
    message = error if isinstance(error, str) else body.decode("utf-8", "replace").strip()
    return json.dumps(wire.error_body(ApiError(status, message or HTTPStatus(status).phrase))).encode()


class ApiErrorShape:
    """ASGI middleware, outermost: an error answered on an API path by anything in front of the API (body limit, rate
    limit, router) is rewritten into that API's error shape, so the openai client or a Perspective client can read
    it. Only error bodies are held back (they are small); every other response streams through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        wire = FORMATS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if wire is None:
            return await self.app(scope, receive, send)
        held, chunks = None, []

        async def reshaping_send(message):
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _reshaped(wire, held["status"], b"".join(chunks))
            headers = [(k, v) for k, v in held.get("headers", ()) if k not in (b"content-length", b"content-type")]
            await send({**held, "headers": [*headers, (b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, reshaping_send)


def gradio_app_kwargs(middleware: list) -> dict:
    """`app_kwargs` for Gradio's `launch`: the API routes on the UI's own FastAPI app, its `middleware` (the UI's
    guards) kept in front of them, and the error reshaping outermost."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(ApiErrorShape), *middleware], "routes": api_routes(key=configured_api_key())}


def build_app(default_model: str = "default", *, key: str | None = None,
              requests_per_minute: int = serving.REQUESTS_PER_MINUTE, trust_forwarded: bool = False):
    """The APIs alone as an ASGI app: routes, then the per-client rate limit (0 turns it off), the body limit and the
    error reshaping in front."""
    from starlette.applications import Starlette

    app = Starlette(routes=api_routes(default_model, key))
    if requests_per_minute > 0:
        app = serving.ClientRateLimit(app, paths=API_PATHS, limiter=serving.RateLimiter(per_minute=requests_per_minute),
                                      trust_forwarded=trust_forwarded)
    return ApiErrorShape(serving.BodySizeLimit(app))


def serve(host: str = "127.0.0.1", port: int = 8000, default_model: str = "default", *,
          requests_per_minute: int = serving.REQUESTS_PER_MINUTE, trust_forwarded: bool = False) -> None:
    """Load the model (so the first request is not the slow one, and a bad name fails here), then run uvicorn."""
    import uvicorn

    from ..text.registry import get_text_model

    get_text_model(default_model)
    app = build_app(default_model, key=configured_api_key(), requests_per_minute=requests_per_minute,
                    trust_forwarded=trust_forwarded)
    uvicorn.run(app, host=host, port=port, log_level="info")
