"""The front door: closed routes, capped bodies, a bounded number of events per visitor, and who a visitor is."""
import asyncio
import json

import pytest

from webui.fair import VISITOR, FrontDoor, Limits, find_visitor, keys_of, visitor_of
from webui.settings import Settings, settings_from_env

JOIN = "/gradio_api/queue/join"
TEXT, QUICK = 7, 9                  # the function that reads a pasted text (work), and one that runs at once


class Inner:
    """The wrapped app: records the bodies and scopes that reached it."""

    def __init__(self):
        self.bodies, self.scopes = [], []

    async def __call__(self, scope, receive, send):
        message = await receive()
        self.bodies.append(message.get("body", b""))
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


class Held(Inner):
    """An app whose calls wait for ``gate``: requests stay in flight, as a slow function keeps them."""

    def __init__(self):
        super().__init__()
        self.gate = asyncio.Event()

    async def __call__(self, scope, receive, send):
        await self.gate.wait()
        await super().__call__(scope, receive, send)


class Request:
    """One request's ASGI messages; ``taken`` counts the body messages the app read."""

    def __init__(self, path=JOIN, body=b"{}", method="POST", chunks=1, headers=(), client="192.0.2.1"):
        size = -(-len(body) // chunks) or 1                              # contiguous chunks, as a socket delivers
        parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
        self.messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                         for i, p in enumerate(parts)]
        self.taken, self.out = 0, []
        self.scope = {"type": "http", "method": method, "path": path, "client": (client, 5000),
                      "headers": [(k.encode(), v.encode()) for k, v in headers]}

    async def receive(self):
        if not self.messages:
            return {"type": "http.disconnect"}
        self.taken += 1
        return self.messages.pop(0)

    async def send(self, message):
        self.out.append(message)

    async def through(self, app) -> tuple[int, dict]:
        await app(self.scope, self.receive, self.send)
        return self.out[0]["status"], json.loads(self.out[1]["body"] or b"{}")


def call(app, *args, **kwargs) -> tuple[int, dict]:
    """Send one request through ``app``; return (status, parsed JSON body)."""
    return asyncio.run(Request(*args, **kwargs).through(app))


def event(fn_index, text="ROMEO:") -> bytes:
    return json.dumps({"fn_index": fn_index, "data": [text], "session_hash": "s"}).encode()


def door(inner, events=(), most=3, room=100, trusted=()):
    """A front door whose app has ``events`` (visitor, fn) pending; fn 7 reads a pasted text, fn 9 and the API name
    "poll" run at once."""
    limits = Limits(most=most, room=room, small_body=1000, max_body=50_000, max_upload=20_000)
    return FrontDoor(inner, lambda: list(events), quick=lambda key: key in (QUICK, "poll"),
                     takes_text=lambda key: key in (TEXT, "start_training"), limits=limits, trusted=trusted)


async def together(app, requests: list[Request], inner: Held) -> list[int]:
    """Send ``requests`` at once, let the held ones through when the others are answered; their statuses."""
    tasks = [asyncio.create_task(r.through(app)) for r in requests]
    await asyncio.sleep(0.01)
    inner.gate.set()
    return [status for status, _ in await asyncio.gather(*tasks)]


# --- what passes, unchanged ----------------------------------------------------------------------------------------
def test_a_request_within_the_limits_reaches_the_app_unchanged():
    inner = Inner()
    assert call(door(inner), body=event(1))[0] == 200
    assert inner.bodies == [event(1)]


def test_the_pages_reads_pass_whatever_the_visitor_has_pending():
    inner, busy = Inner(), [("192.0.2.1", 1)] * 3 + [("192.0.2.1", QUICK)] * 3
    for path in ("/", "/config", "/gradio_api/info", "/gradio_api/queue/data", "/gradio_api/heartbeat/abc",
                 "/assets/index.js", "/gradio_api/file=/tmp/x.bin", "/gradio_api/call/generate/e1",
                 "/charrnn/copies/index.json", "/charrnn/copies/0123456789abcdef.bin"):
        assert call(door(inner, busy), path, b"", "GET")[0] == 200, path
    assert call(door(inner, busy), "/gradio_api/upload", b"small")[0] == 200


# --- D2: every body is capped, and closed routes are never read -----------------------------------------------------
@pytest.mark.parametrize("chunks", [1, 7])
def test_a_big_body_is_refused_whether_or_not_it_declares_its_length(chunks):
    inner = Inner()
    body = event(TEXT, "x" * 60_000)
    headers = [("content-length", str(len(body)))] if chunks == 1 else []
    status, reply = call(door(inner), body=body, chunks=chunks, headers=headers)
    assert status == 413 and "at most 50,000" in reply["detail"] and inner.bodies == []


@pytest.mark.parametrize("path, method, cap", [
    ("/gradio_api/api/generate", "POST", 50_000), ("/gradio_api/run/predict", "POST", 50_000),
    ("/gradio_api/call/generate", "POST", 1000), ("/gradio_api/call/v2/generate", "POST", 1000),   # known: small
    ("/gradio_api/reset", "POST", 1000), ("/gradio_api/cancel", "POST", 1000), ("/gradio_api/upload", "POST", 20_000),
    ("/gradio_api/queue/data", "GET", 1000), ("/config", "GET", 1000)])
def test_every_route_that_reads_a_body_stops_reading_past_its_cap(path, method, cap):
    inner, body = Inner(), b"x" * (10 * cap)
    request = Request(path, body, method, chunks=100)                   # no declared length: read until too big
    status, reply = asyncio.run(request.through(door(inner)))
    assert status == 413 and f"at most {cap:,}" in reply["detail"]
    assert request.taken < 100 and inner.bodies == []                    # never read whole

    declared = Request(path, body, method, chunks=100, headers=[("content-length", str(len(body)))])
    assert asyncio.run(declared.through(door(inner)))[0] == 413 and declared.taken == 0


@pytest.mark.parametrize("path, method, status", [
    ("/gradio_api/vibe-edit", "POST", 404), ("/gradio_api/vibe-code", "GET", 404),
    ("/gradio_api/undo-vibe-edit", "POST", 404), ("/gradio_api/component_server", "POST", 404),
    ("/gradio_api/stream/e1", "POST", 404), ("/gradio_api/stream/s/r/c/playlist.m3u8", "GET", 404),
    ("/gradio_api/process_recording", "POST", 404), ("/login", "POST", 404), ("/monitoring", "GET", 404),
    ("/gradio_api/proxy=https://example.com/x", "GET", 404), ("/gradio_api/mcp/sse", "GET", 404),
    ("/gradio_api/queue/join", "GET", 405), ("/gradio_api/upload", "PUT", 405), ("/config", "POST", 405),
    ("/charrnn/copies/index.json", "POST", 405), ("/charrnn/copies/a/b.bin", "GET", 404)])
def test_routes_the_app_does_not_use_are_closed_without_reading_them(path, method, status):
    inner = Inner()
    request = Request(path, b"x" * 100_000, method, chunks=10)
    code, reply = asyncio.run(request.through(door(inner)))
    assert (code, request.taken, inner.bodies) == (status, 0, [])
    assert path in reply["detail"]


def test_only_events_that_read_a_pasted_text_may_send_a_large_body():
    inner = Inner()
    assert call(door(inner), body=event(1, "x" * 20_000))[0] == 413                  # a 20 kB "prime"
    pasted = event(TEXT, "x" * 20_000)
    assert call(door(inner), body=pasted, chunks=3)[0] == 200 and inner.bodies == [pasted]


def test_a_call_by_api_name_is_capped_by_the_function_in_its_path():
    inner, big = Inner(), json.dumps({"data": ["x" * 20_000]}).encode()
    assert call(door(inner), "/gradio_api/call/start_training", big)[0] == 200
    # /call runs the function its path names, whatever fn_index the body claims
    assert call(door(inner), "/gradio_api/call/generate", event(TEXT, "x" * 20_000))[0] == 413
    assert call(door(inner), "/gradio_api/api/generate", event(TEXT, "x" * 20_000))[0] == 200   # as Gradio: fn_index


def test_a_fn_index_gradio_would_coerce_is_refused():
    inner = Inner()
    for index in ("7", 7.0, True):
        status, reply = call(door(inner), body=json.dumps({"fn_index": index, "data": ["x" * 20_000]}).encode())
        assert status == 422 and "whole number" in reply["detail"]
    assert inner.bodies == []


def test_websockets_are_closed_and_the_lifespan_passes():
    sent, reached = [], []

    async def app(scope, receive, send):
        reached.append(scope["type"])

    async def send(message):
        sent.append(message)

    front = door(app)
    asyncio.run(front({"type": "websocket", "path": "/gradio_api/queue/join", "headers": []}, None, send))
    asyncio.run(front({"type": "lifespan"}, None, send))
    assert sent == [{"type": "websocket.close", "code": 1008}] and reached == ["lifespan"]


# --- D3: every route that runs a function counts toward its visitor -------------------------------------------------
def test_a_visitor_with_enough_pending_events_is_told_to_wait_and_the_app_never_sees_it():
    inner = Inner()
    status, reply = call(door(inner, [("192.0.2.1", 1)] * 3), body=event(1))
    assert status == 429 and "3 requests waiting or running" in reply["detail"]
    assert "try again in 5 s" in reply["detail"] and inner.bodies == []


def test_others_are_counted_on_their_own():
    inner = Inner()
    app = door(inner, [("192.0.2.1", 1)] * 3)
    assert call(app, body=event(1), client="192.0.2.1")[0] == 429
    assert call(app, body=event(1), client="192.0.2.2")[0] == 200


@pytest.mark.parametrize("path, body", [
    ("/gradio_api/api/poll", b"{}"), ("/gradio_api/run/predict", event(QUICK)), ("/gradio_api/api/predict", event(1)),
    ("/gradio_api/call/generate", b'{"data": []}'), (JOIN, event(1))])
def test_calls_through_any_route_that_runs_a_function_count_toward_the_visitor(path, body):
    inner = Held()
    app = door(inner)                                                   # most=3, and nothing pending yet
    flood = [Request(path, body) for _ in range(8)]
    other = Request(path, body, client="192.0.2.99")
    statuses = asyncio.run(together(app, flood + [other], inner))
    assert sorted(statuses[:8]) == [200] * 3 + [429] * 5 and statuses[8] == 200
    assert app.admitted == {} and app.reading == {}


def test_requests_arriving_together_are_counted_as_they_are_admitted():
    inner = Held()
    app = door(inner)
    statuses = asyncio.run(together(app, [Request(body=event(1)) for _ in range(6)], inner))
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429] and app.admitted == {}


def test_a_visitors_polls_keep_their_own_room_beside_their_work():
    inner = Inner()
    working = door(inner, [("192.0.2.1", 1)] * 3)                       # three generations waiting or running
    assert call(working, body=event(QUICK))[0] == 200                   # the page's poll still runs
    assert call(working, "/gradio_api/api/poll")[0] == 200
    assert call(working, body=event(1))[0] == 429
    polling = door(inner, [("192.0.2.1", QUICK)] * 3)                   # and polls never crowd out work
    assert call(polling, body=event(QUICK))[0] == 429
    assert call(polling, body=event(1))[0] == 200


def test_the_work_of_all_visitors_is_bounded_so_polls_find_room():
    inner = Inner()
    full = door(inner, [(f"192.0.2.{i}", 1) for i in range(4)], room=4)
    status, reply = call(full, body=event(1), client="198.51.100.1")
    assert status == 429 and "The server already has 4 requests" in reply["detail"]
    assert call(full, body=event(QUICK), client="198.51.100.1")[0] == 200


def test_a_busy_visitor_cannot_make_the_server_read_a_large_body():
    inner, body = Inner(), event(TEXT, "x" * 20_000)
    request = Request(body=body, chunks=20)
    status, reply = asyncio.run(request.through(door(inner, [("192.0.2.1", 1)] * 3)))
    assert status == 429 and request.taken < 20 and inner.bodies == []


def test_a_visitors_bodies_are_read_a_few_at_a_time():
    stalled = asyncio.Event()

    class Stalled(Request):
        async def receive(self):                                        # a body that never finishes arriving
            await stalled.wait()
            return {"type": "http.disconnect"}

    async def flood():
        app = door(Inner())
        tasks = [asyncio.create_task(Stalled(body=event(1)).through(app)) for _ in range(5)]
        await asyncio.sleep(0.01)
        reading = dict(app.reading)
        stalled.set()
        return reading, [status for status, _ in await asyncio.gather(*tasks)]

    reading, statuses = asyncio.run(flood())
    assert reading == {"192.0.2.1": 3} and statuses.count(429) == 2


# --- who a visitor is ----------------------------------------------------------------------------------------------
def scope_of(client: str, *forwarded: str) -> dict:
    return {"client": (client, 1), "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


def trusted(*networks: str) -> list:
    return door(Inner(), trusted=networks).trusted


def test_a_client_that_sends_its_own_forwarded_for_is_counted_as_its_peer():
    assert find_visitor(scope_of("198.51.100.7", "203.0.113.1"), []) == "198.51.100.7"
    assert find_visitor(scope_of("198.51.100.7", "203.0.113.1"), trusted("10.0.0.0/8")) == "198.51.100.7"
    inner = Inner()
    app = door(inner, [("198.51.100.7", 1)] * 3, trusted=("10.0.0.0/8",))
    spoofed = [("x-forwarded-for", "203.0.113.1")]
    assert call(app, body=event(1), client="198.51.100.7", headers=spoofed)[0] == 429


def test_through_a_trusted_proxy_the_right_most_untrusted_hop_is_the_visitor():
    proxies = trusted("10.0.0.0/8", "2001:db8:ffff::/48")
    # the client wrote "6.6.6.6"; the proxies appended what they saw, in a second header too
    assert find_visitor(scope_of("10.0.0.5", "6.6.6.6, 198.51.100.7", "10.1.2.3"), proxies) == "198.51.100.7"
    assert find_visitor(scope_of("10.0.0.5", "6.6.6.6", "198.51.100.7:4431, 10.1.2.3"), proxies) == "198.51.100.7"
    assert find_visitor(scope_of("10.0.0.5", "[2001:db8:1::9]:443, 2001:db8:ffff::1"), proxies) == "2001:db8:1::/64"
    assert find_visitor(scope_of("10.0.0.5", "10.0.0.7, 10.0.0.6"), proxies) == "10.0.0.7"    # all ours: the farthest
    assert find_visitor(scope_of("10.0.0.5"), proxies) == "10.0.0.5"


def test_an_ipv6_visitor_is_counted_by_their_64():
    first = find_visitor(scope_of("2001:db8:1:2::5"), [])
    assert first == find_visitor(scope_of("2001:db8:1:2:ffff::9"), []) == "2001:db8:1:2::/64"
    assert first != find_visitor(scope_of("2001:db8:1:3::5"), [])
    assert find_visitor(scope_of("::ffff:192.0.2.1"), []) == "192.0.2.1"


def test_the_app_counts_events_under_the_visitor_the_front_door_found():
    inner = Inner()
    call(door(inner, trusted=("10.0.0.0/8",)), body=event(1), client="10.0.0.5",
         headers=[("x-forwarded-for", "6.6.6.6, 198.51.100.7")])
    assert inner.scopes[0][VISITOR] == visitor_of(inner.scopes[0]) == "198.51.100.7"
    assert visitor_of({"client": ("192.0.2.3", 1)}) == "192.0.2.3"


def test_trusted_proxies_are_a_setting_from_the_environment(tmp_path):
    env = {"CHARRNN_CHECKPOINTS": str(tmp_path)}
    assert settings_from_env(env).trusted_proxies == ()                  # nothing, not even loopback, by default
    assert settings_from_env({**env, "CHARRNN_TRUSTED_PROXIES": " 10.0.0.5, 192.168.0.0/16,"}).trusted_proxies \
        == ("10.0.0.5/32", "192.168.0.0/16")
    on_a_space = settings_from_env({**env, "SPACE_ID": "someone/charrnn"}).trusted_proxies
    assert "10.0.0.0/8" in on_a_space and not any(p.startswith("127.") for p in on_a_space)
    assert settings_from_env({**env, "SPACE_ID": "a/b", "CHARRNN_TRUSTED_PROXIES": ""}).trusted_proxies == ()
    with pytest.raises(ValueError, match="CHARRNN_TRUSTED_PROXIES: 'proxy.local'"):
        Settings(root=tmp_path, trusted_proxies=("proxy.local",))


def test_functions_are_known_by_their_id_and_their_api_name():
    class Fn:
        def __init__(self, api_name, queue):
            self.api_name, self.queue = api_name, queue

    fns = {0: Fn("poll", False), 1: Fn("generate", True), 2: Fn(None, False)}
    assert keys_of(fns, lambda fn: not fn.queue) == {0, "poll", 2}
