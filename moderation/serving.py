"""What a public HTTP server needs in front of the moderation handlers, as plain ASGI middleware (no web framework
imported): a cap on request bodies enforced before they are read, and per-client rate limits.

Why: a 50 MB JSON body was read whole and answered (+400 MiB resident per request), and 300 quick calls from one
client filled Gradio's global queue so that every other visitor got "Queue is full" for minutes.

    app = BodySizeLimit(app, max_bytes=2 * 2**20, exempt_prefixes=("/gradio_api/upload",))
    app = ClientRateLimit(app, paths=("/gradio_api/queue/join", "/gradio_api/call/"))
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque

#: Largest request body, uploads aside: a 100,000-character text is at most ~600 kB of JSON even fully escaped.
MAX_BODY_BYTES = 2 * 2**20
#: Total bytes of uploads the server keeps at once (Gradio deletes them after an hour, and all of them at a stop).
UPLOAD_BUDGET_BYTES = 2 * 2**30
#: Work requests one client may start: a burst, and a sustained rate.
BURST_REQUESTS = 20
BURST_SECONDS = 10.0
REQUESTS_PER_MINUTE = 60


async def _send_json(send, status: int, message: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413: by Content-Length before reading, or while streaming a body
    sent without one. Paths under `exempt_prefixes` (Gradio's upload route, bounded by its own max_file_size and
    streamed to disk) pass untouched."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, exempt_prefixes: tuple[str, ...] = ()):
        self.app, self.max_bytes, self.exempt_prefixes = app, max_bytes, exempt_prefixes

    def _message(self) -> str:
        return (f"The request body is larger than this server accepts ({self.max_bytes:,} bytes). Send images as "
                f"file uploads, and long texts in several requests.")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "").startswith(self.exempt_prefixes):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    return await _send_json(send, 400, "The Content-Length header is not a number.")
                if too_large:
                    return await _send_json(send, 413, self._message())
                return await self.app(scope, receive, send)  # the server stops reading at Content-Length
        # No Content-Length (a chunked body): read it here, at most max_bytes, then hand it on whole.
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                return await _send_json(send, 413, self._message())
            if not message.get("more_body", False):
                break
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class RateLimiter:
    """Sliding-window counts per client key: at most `burst` events in `burst_seconds` and `per_minute` in 60 s."""

    def __init__(self, burst: int = BURST_REQUESTS, burst_seconds: float = BURST_SECONDS,
                 per_minute: int = REQUESTS_PER_MINUTE, clock=time.monotonic, max_clients: int = 10_000):
        self.burst, self.burst_seconds, self.per_minute = burst, burst_seconds, per_minute
        self.clock, self.max_clients = clock, max_clients
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0.0 when the event is allowed (and counted), else the seconds to wait before the next one is."""
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_clients:  # forget the least recently active clients
                    for stale in sorted(self._events, key=lambda k: self._events[k][-1])[: self.max_clients // 10]:
                        del self._events[stale]
                events = self._events[key] = deque()
            while events and now - events[0] >= 60.0:
                events.popleft()
            recent = sum(1 for t in events if now - t < self.burst_seconds)
            if recent >= self.burst:
                return self.burst_seconds - (now - events[-self.burst])
            if len(events) >= self.per_minute:
                return 60.0 - (now - events[0])
            events.append(now)
            return 0.0


def client_key(scope, trust_forwarded: bool) -> str:
    """Who is asking: the socket's peer, or the first X-Forwarded-For address behind a trusted proxy (a Space)."""
    if trust_forwarded:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                return value.decode("latin-1").split(",")[0].strip()
    client = scope.get("client")
    return client[0] if client else "unknown"


class ClientRateLimit:
    """429 with Retry-After for a client that starts work requests (POSTs to `paths` prefixes) faster than the
    limiter allows; everything else, and other clients, are served as usual."""

    def __init__(self, app, paths: tuple[str, ...], limiter: RateLimiter | None = None, trust_forwarded: bool = False):
        self.app, self.paths, self.trust_forwarded = app, paths, trust_forwarded
        self.limiter = limiter or RateLimiter()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").startswith(self.paths):
            wait = self.limiter.allow(client_key(scope, self.trust_forwarded))
            if wait > 0:
                return await _send_json(
                    send, 429, f"Too many requests from your address; try again in {wait:.0f} s.",
                    ((b"retry-after", str(max(1, round(wait))).encode()),))
        return await self.app(scope, receive, send)


def folder_bytes(folder) -> int:
    """Bytes of every file under `folder` (0 when it does not exist)."""
    import os

    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # deleted meanwhile by the cache clean-up
                pass
    return total


class UploadBudget:
    """507 for an upload that would take the upload folder over `budget()` bytes, so uploads cannot fill the disk
    (117 MiB/s arrived with no total cap). `budget` is called per upload, so an operator's setting applies at once;
    the folder is measured at most once a second."""

    def __init__(self, app, folder, budget, path: str = "/gradio_api/upload", clock=time.monotonic):
        self.app, self.folder, self.budget, self.path, self.clock = app, folder, budget, path, clock
        self._measured = (-1.0, 0)

    def _used(self) -> int:
        at, used = self._measured
        if self.clock() - at > 1.0:
            self._measured = (self.clock(), folder_bytes(self.folder))
        return self._measured[1]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").startswith(self.path):
            incoming = next((int(v) for k, v in scope.get("headers", ()) if k == b"content-length" and v.isdigit()), 0)
            if self._used() + incoming > self.budget():
                return await _send_json(send, 507, "The server's space for uploads is full right now; try again in a "
                                                   "few minutes.")
        return await self.app(scope, receive, send)
