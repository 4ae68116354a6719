"""Fair sharing: a visitor's pending events are bounded and request bodies capped, before Gradio sees them."""
import asyncio
import json

import pytest

from webui.fair import VisitorLimit, visitor_of

JOIN = "/gradio_api/queue/join"


class Inner:
    """The wrapped app: records what reached it."""

    def __init__(self):
        self.bodies = []

    async def __call__(self, scope, receive, send):
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def call(app, path=JOIN, body=b"{}", method="POST", chunks=1, headers=(), client="10.0.0.1"):
    """Send one request through ``app``; return (status, parsed JSON body)."""
    size = -(-len(body) // chunks)                                  # contiguous chunks, as a socket delivers
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    out = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        out.append(message)

    scope = {"type": "http", "method": method, "path": path, "client": (client, 5000),
             "headers": [(k.encode(), v.encode()) for k, v in headers]}
    asyncio.run(app(scope, receive, send))
    return out[0]["status"], json.loads(out[1]["body"] or b"{}")


def limit(inner, pending=lambda visitor: 0, takes_text=lambda fn: fn == 7):
    return VisitorLimit(inner, pending, most=3, takes_text=takes_text, small_body=1000, max_body=50_000,
                        max_upload=20_000)


def test_a_request_within_the_limits_reaches_the_app_unchanged():
    inner = Inner()
    body = json.dumps({"fn_index": 1, "data": ["ROMEO:"], "session_hash": "s"}).encode()
    assert call(limit(inner), body=body)[0] == 200
    assert inner.bodies == [body]


def test_a_visitor_with_enough_pending_events_is_told_to_wait_and_the_app_never_sees_it():
    inner, asked = Inner(), []
    app = limit(inner, pending=lambda visitor: asked.append(visitor) or 3)
    status, reply = call(app, headers=[("x-forwarded-for", "1.2.3.4, 203.0.113.9")])
    assert status == 429 and "3 requests waiting or running" in reply["detail"]
    assert "try again in 5 s" in reply["detail"]
    assert inner.bodies == [] and asked == ["203.0.113.9"]


def test_others_are_counted_on_their_own():
    inner = Inner()
    app = limit(inner, pending=lambda visitor: 3 if visitor == "10.0.0.1" else 0)
    assert call(app, client="10.0.0.1")[0] == 429
    assert call(app, client="10.0.0.2")[0] == 200


@pytest.mark.parametrize("chunks", [1, 7])
def test_a_big_body_is_refused_whether_or_not_it_declares_its_length(chunks):
    inner = Inner()
    body = json.dumps({"fn_index": 7, "data": ["x" * 60_000]}).encode()
    headers = [("content-length", str(len(body)))] if chunks == 1 else []
    status, reply = call(limit(inner), body=body, chunks=chunks, headers=headers)
    assert status == 413 and "at most 50,000" in reply["detail"] and inner.bodies == []


def test_only_events_that_read_a_pasted_text_may_send_a_large_body():
    inner = Inner()
    prime = json.dumps({"fn_index": 1, "data": ["x" * 20_000]}).encode()        # a 20 kB "prime"
    assert call(limit(inner), body=prime)[0] == 413
    pasted = json.dumps({"fn_index": 7, "data": ["x" * 20_000]}).encode()
    assert call(limit(inner), body=pasted, chunks=3)[0] == 200 and inner.bodies == [pasted]


def test_uploads_are_capped_in_total_and_other_requests_pass_untouched():
    inner = Inner()
    assert call(limit(inner), path="/gradio_api/upload", body=b"x" * 30_000)[0] == 413
    assert call(limit(inner), path="/gradio_api/upload", body=b"x" * 10_000)[0] == 200
    assert call(limit(inner, pending=lambda v: 99), path="/gradio_api/queue/data", method="GET")[0] == 200
    assert call(limit(inner, pending=lambda v: 99), path="/gradio_api/upload", body=b"small")[0] == 200


def test_the_visitor_is_the_last_forwarded_address_or_the_peer():
    assert visitor_of({"headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7")], "client": ("10.0.0.9", 1)}) \
        == "198.51.100.7"
    assert visitor_of({"headers": [], "client": ("10.0.0.9", 1)}) == "10.0.0.9"


def test_requests_arriving_together_are_counted_as_they_are_admitted():
    gate = asyncio.Event()

    class Slow(Inner):
        async def __call__(self, scope, receive, send):
            await gate.wait()                                   # the route has not queued the event yet
            await super().__call__(scope, receive, send)

    inner = Slow()
    app = limit(inner)                                          # most=3, and the queue says 0 pending

    async def many():
        async def one():
            out = []

            async def receive():
                return {"type": "http.request", "body": b"{}", "more_body": False}

            async def send(message):
                out.append(message)

            scope = {"type": "http", "method": "POST", "path": JOIN, "client": ("10.0.0.1", 1), "headers": []}
            await app(scope, receive, send)
            return out[0]["status"]

        tasks = [asyncio.create_task(one()) for _ in range(6)]
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    statuses = asyncio.run(many())
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429] and app.admitted == {}
