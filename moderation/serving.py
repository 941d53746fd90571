"""What a public HTTP server needs in front of the moderation handlers, as plain ASGI middleware (no web framework
imported): a cap on request bodies enforced before they are read, and per-client rate limits.

Why: without them a 50 MB JSON body is read whole and answered (+400 MiB resident per request), and 300 quick calls
from one client fill Gradio's global queue so that every other visitor gets "Queue is full" for minutes.

    app = BodySizeLimit(app, max_bytes=2 * 2**20, exempt_prefixes=("/gradio_api/upload",))
    app = ClientRateLimit(app, paths=("/gradio_api/queue/join", "/gradio_api/call/"))
    app = JobWatch(app, queue_of=lambda: demo._queue, bounded={"generate": 8})
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter, deque
from typing import Callable
from urllib.parse import parse_qs

#: Largest request body, uploads aside: a 100,000-character text is at most ~600 kB of JSON even fully escaped.
MAX_BODY_BYTES = 2 * 2**20
#: Total bytes of uploads the server keeps at once (Gradio deletes them after an hour, and all of them at a stop).
UPLOAD_BUDGET_BYTES = 2 * 2**30
#: Work requests one client may start: a burst, and a sustained rate.
BURST_REQUESTS = 20
BURST_SECONDS = 10.0
REQUESTS_PER_MINUTE = 60
#: Seconds a queued job may go without anyone listening for its result before it is dropped.
UNHEARD_JOB_SECONDS = 20.0


async def _send_json(send, status: int, message: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive, max_bytes: int | None = None) -> bytes | None:
    """A request's whole body from ASGI `receive`; None when the client left first, ValueError past `max_bytes`."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        seen += len(chunks[-1])
        if max_bytes is not None and seen > max_bytes:
            raise ValueError(f"request body over {max_bytes} bytes")
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive):
    """An ASGI `receive` that hands the app a body already read, then passes on whatever comes next."""
    delivered = False

    async def replay():
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


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
        try:
            body = await read_body(receive, self.max_bytes)
        except ValueError:
            return await _send_json(send, 413, self._message())
        if body is not None:
            await self.app(scope, replaying(body, receive), send)


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


_CALL_POST = re.compile(r"^/gradio_api/call/(?:v2/)?(?P<api>[^/]+)/?$")
_CALL_RESULT = re.compile(r"^/gradio_api/call/(?:v2/)?[^/]+/(?P<event>[^/]+)/?$")


class JobWatch:
    """Drops queued or running jobs that nobody listens for, and bounds how many jobs of a slow endpoint may wait.

    Why: 300 quick POSTs to `/gradio_api/call/generate` whose results nobody read still ran one after the other,
    and they all waited in Gradio's one global queue (Gradio 6 has no queue size per endpoint). A job's listener
    is the request that streams its results: `/gradio_api/queue/data?session_hash=...` (the browser and
    gradio_client) or `/gradio_api/call/<api>/<event_id>` (plain HTTP). A job whose session has had no listener
    for `unheard_seconds` (counted from its arrival, or from when its last listener left) is cancelled the way a
    closed browser tab cancels it: Gradio's `clean_events`, which takes a waiting job out of the queue and stops a
    streaming one at its next step.

    `bounded` maps an api_name to the most jobs of it that may wait; a request past that gets 503 and a message.
    `queue_of()` returns the Gradio queue (it exists only once the app is built); its attributes are read as the
    pinned Gradio 6 defines them, and tests/test_app.py checks the behaviour through the server.
    """

    def __init__(self, app, queue_of: Callable[[], object], bounded: dict[str, int] | None = None,
                 unheard_seconds: float = UNHEARD_JOB_SECONDS, clock=time.monotonic):
        self.app, self.queue_of, self.bounded = app, queue_of, dict(bounded or {})
        self.unheard_seconds, self.clock = unheard_seconds, clock
        self._listeners: Counter[str] = Counter()
        self._last_heard: dict[str, float] = {}
        self._sweeper: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        path, method = scope.get("path", ""), scope.get("method")
        if method == "GET":
            session = self._listened_session(path, scope.get("query_string", b""))
            if session is not None:
                return await self._listen(session, scope, receive, send)
        elif method == "POST" and self.bounded:
            return await self._admit(path, scope, receive, send)
        return await self.app(scope, receive, send)

    def _listened_session(self, path: str, query: bytes) -> str | None:
        if path.rstrip("/") == "/gradio_api/queue/data":
            return (parse_qs(query.decode("latin-1")).get("session_hash") or [None])[0]
        match = _CALL_RESULT.match(path)
        if match is None:
            return None
        event = getattr(self.queue_of(), "event_ids_to_events", {}).get(match["event"])
        return event.session_hash if event is not None else match["event"]  # a plain call's session is its id

    async def _listen(self, session: str, scope, receive, send):
        self._listeners[session] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self._listeners[session] -= 1
            if self._listeners[session] <= 0:
                del self._listeners[session]
                self._last_heard[session] = self.clock()

    async def _admit(self, path: str, scope, receive, send):
        """Refuse a job of a bounded endpoint when its queue is full; a browser's job names its endpoint by
        fn_index inside the body, so that body (already capped by BodySizeLimit) is read here and replayed."""
        match = _CALL_POST.match(path)
        if match is not None:
            return await self._admit_api(match["api"], scope, receive, send)
        if path.rstrip("/") != "/gradio_api/queue/join":
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        if body is None:
            return
        try:
            fn_index = json.loads(body).get("fn_index")
        except (ValueError, AttributeError):
            fn_index = None  # Gradio answers a malformed body itself
        return await self._admit_api(self._api_name(fn_index), scope, replaying(body, receive), send)

    async def _admit_api(self, api: str | None, scope, receive, send):
        limit = self.bounded.get(api)
        if limit is not None and self.waiting(api) >= limit:
            return await _send_json(send, 503, f"The {api} queue is full ({limit} requests waiting); try again in "
                                               f"a minute.", ((b"retry-after", b"30"),))
        return await self.app(scope, receive, send)

    def _functions(self):
        blocks = getattr(self.queue_of(), "blocks", None)
        return getattr(blocks, "fns", {}).values()

    def _api_name(self, fn_index) -> str | None:
        return next((fn.api_name for fn in self._functions() if fn._id == fn_index), None)

    def waiting(self, api: str) -> int:
        """Jobs of endpoint `api` in the queue that have not started."""
        queue = self.queue_of()
        queues = getattr(queue, "event_queue_per_concurrency_id", {})
        ids = {fn.concurrency_id for fn in self._functions() if fn.api_name == api}
        return sum(len(queues[i].queue) for i in ids if i in queues)

    def unheard_jobs(self) -> list[str]:
        """Ids of jobs whose session has had no listener for longer than `unheard_seconds`."""
        now, unheard = self.clock(), []
        for event in list(getattr(self.queue_of(), "event_ids_to_events", {}).values()):
            session = event.session_hash
            if self._listeners.get(session):
                continue
            quiet_since = max(event.enqueue_time, self._last_heard.get(session, 0.0))
            if now - quiet_since > self.unheard_seconds:
                unheard.append(event._id)
        return unheard

    async def sweep(self) -> int:
        """Cancel every unheard job; how many there were."""
        queue, unheard = self.queue_of(), self.unheard_jobs()
        for event_id in unheard:
            await queue.clean_events(event_id=event_id)
        active = {e.session_hash for e in getattr(queue, "event_ids_to_events", {}).values()}
        for session in [s for s in self._last_heard if s not in active]:  # forget sessions with no jobs left
            del self._last_heard[session]
        return len(unheard)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.unheard_seconds / 4))
            await self.sweep()
