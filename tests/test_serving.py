"""moderation.serving.JobWatch against a stand-in for Gradio's queue: which jobs are dropped, which are kept."""
import asyncio
import json
from types import SimpleNamespace

from moderation.serving import JobWatch


class FakeQueue:
    """The few attributes of Gradio 6's Queue that JobWatch reads, and a record of what it cancelled."""

    def __init__(self):
        generate = SimpleNamespace(_id=3, api_name="generate", concurrency_id="gen")
        text = SimpleNamespace(_id=1, api_name="moderate_text", concurrency_id="txt")
        self.blocks = SimpleNamespace(fns={1: text, 3: generate})
        self.event_queue_per_concurrency_id = {"gen": SimpleNamespace(queue=[]), "txt": SimpleNamespace(queue=[])}
        self.event_ids_to_events = {}
        self.cancelled = []

    def add(self, event_id, session, concurrency_id, at):
        event = SimpleNamespace(_id=event_id, session_hash=session, enqueue_time=at)
        self.event_ids_to_events[event_id] = event
        self.event_queue_per_concurrency_id[concurrency_id].queue.append(event)

    async def clean_events(self, *, session_hash=None, event_id=None):
        self.cancelled.append(event_id)
        event = self.event_ids_to_events.pop(event_id)
        for waiting in self.event_queue_per_concurrency_id.values():
            if event in waiting.queue:
                waiting.queue.remove(event)


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


async def _ok_app(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _request(watch, method, path, body=b"", query=b""):
    """Run one request through the middleware; its status."""
    statuses = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": []}
    asyncio.run(watch(scope, receive, send))
    return statuses[0]


def test_a_job_nobody_listens_for_is_dropped_after_the_grace_time():
    queue, clock = FakeQueue(), Clock()
    watch = JobWatch(_ok_app, queue_of=lambda: queue, unheard_seconds=20, clock=clock)
    queue.add("e1", "s1", "gen", at=clock.now)
    clock.now += 19
    assert asyncio.run(watch.sweep()) == 0 and "e1" in queue.event_ids_to_events
    clock.now += 2
    assert asyncio.run(watch.sweep()) == 1 and queue.cancelled == ["e1"]


def test_a_job_whose_listener_left_is_dropped_counting_from_when_it_left():
    queue, clock = FakeQueue(), Clock()
    watch = JobWatch(_ok_app, queue_of=lambda: queue, unheard_seconds=20, clock=clock)
    queue.add("e1", "s1", "gen", at=clock.now)
    clock.now += 15
    _request(watch, "GET", "/gradio_api/queue/data", query=b"session_hash=s1")  # listened, then closed
    clock.now += 15  # 30 s after it arrived, 15 s after its listener left
    assert asyncio.run(watch.sweep()) == 0
    clock.now += 6
    assert asyncio.run(watch.sweep()) == 1


def test_a_job_with_an_open_listener_is_kept_however_long_it_waits():
    queue, clock = FakeQueue(), Clock()
    seen = []

    async def streaming_app(scope, receive, send):  # the listener's stream is open while the sweep runs
        clock.now += 500
        seen.append(await watch.sweep())
        await _ok_app(scope, receive, send)

    watch = JobWatch(streaming_app, queue_of=lambda: queue, unheard_seconds=20, clock=clock)
    queue.add("e1", "e1", "gen", at=clock.now)  # a plain HTTP call: its session is its own id
    _request(watch, "GET", "/gradio_api/call/v2/generate/e1")
    assert seen == [0] and queue.cancelled == []


def test_a_bounded_endpoint_refuses_jobs_past_its_queue_size_by_path_or_fn_index():
    queue, clock = FakeQueue(), Clock()
    watch = JobWatch(_ok_app, queue_of=lambda: queue, bounded={"generate": 2}, clock=clock)
    assert _request(watch, "POST", "/gradio_api/call/generate", b"{}") == 200
    queue.add("e1", "s1", "gen", at=clock.now)
    queue.add("e2", "s2", "gen", at=clock.now)
    assert watch.waiting("generate") == 2
    assert _request(watch, "POST", "/gradio_api/call/generate", b"{}") == 503
    assert _request(watch, "POST", "/gradio_api/call/v2/generate/", b"{}") == 503
    join = json.dumps({"fn_index": 3, "session_hash": "s9", "data": []}).encode()
    assert _request(watch, "POST", "/gradio_api/queue/join", join) == 503
    other = json.dumps({"fn_index": 1, "session_hash": "s9", "data": []}).encode()
    assert _request(watch, "POST", "/gradio_api/queue/join", other) == 200  # text is not bounded
    assert _request(watch, "POST", "/gradio_api/call/moderate_text", b"{}") == 200
    assert _request(watch, "POST", "/gradio_api/queue/join", b"not json") == 200  # Gradio answers that itself
