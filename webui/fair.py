"""Fair sharing of one public app: no visitor may hold more than a few pending events, and request
bodies are capped, so one visitor cannot fill the queue (or the memory) for everyone else.

Gradio's ``queue(max_size=...)`` is one global bound and its concurrency limits are per event, so
nothing in Gradio limits one visitor (``GRADIO_NOTES.md``). This ASGI middleware sits in front of
Gradio's routes: a POST that would add an event (``/queue/join``, ``/call/...``) is refused at
once with 429 and a message when its visitor already has ``most`` events waiting or running, and
any POST body over its path's cap is refused with 413 before it is read further. No gradio here:
the app passes in how to count a visitor's pending events.
"""
from __future__ import annotations

import json
from collections.abc import Callable

EVENT_PATHS = ("/queue/join", "/call/", "/run/")    # POSTs that create an event in Gradio's queue
UPLOAD_PATH = "/upload"


def visitor_of(scope: dict) -> str:
    """Who sent a request: the address the nearest proxy reports (the last X-Forwarded-For entry, which a
    client cannot forge past a proxy that appends it, as the Spaces proxy does), else the socket's peer."""
    for name, value in scope.get("headers") or []:
        if name == b"x-forwarded-for":
            return value.decode("latin-1").split(",")[-1].strip()
    client = scope.get("client")
    return client[0] if client else "unknown"


class VisitorLimit:
    """ASGI middleware: at most ``most`` pending events per visitor; POST bodies capped.

    An event's body may be at most ``small_body`` bytes unless ``takes_text(fn_index)`` says its
    function reads a pasted corpus (then ``max_body``); uploads may total ``max_upload`` bytes.
    """

    def __init__(self, app, pending: Callable[[str], int], most: int, takes_text: Callable[[int], bool],
                 small_body: int, max_body: int, max_upload: int, retry_after: int = 5):
        self.app, self.pending, self.most, self.takes_text = app, pending, most, takes_text
        self.small_body, self.max_body, self.max_upload = small_body, max_body, max_upload
        self.retry_after = retry_after
        self.admitted: dict[str, int] = {}      # requests of each visitor let through and not yet answered

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        creates_event = any(p in path for p in EVENT_PATHS)
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                not (creates_event or path.endswith(UPLOAD_PATH)):
            return await self.app(scope, receive, send)
        cap = self.max_body if creates_event else self.max_upload
        if declared_length(scope) > cap:
            return await too_large(send, declared_length(scope), cap)
        visitor = visitor_of(scope)
        # checked and counted with no await in between (one event loop): requests arriving together are
        # counted as they are admitted, before Gradio's route puts their events in its queue
        if creates_event and self.pending(visitor) + self.admitted.get(visitor, 0) >= self.most:
            return await reply(send, 429, f"You already have {self.most} requests waiting or running on this "
                                          f"server; try again in {self.retry_after} s.",
                               {"retry-after": str(self.retry_after)})
        self.admitted[visitor] = self.admitted.get(visitor, 0) + 1
        try:
            body = await read_body(receive, cap)
            if body is None:
                return await too_large(send, cap + 1, cap)
            if creates_event and len(body) > self.small_body and not self.takes_text(fn_index_of(body)):
                return await too_large(send, len(body), self.small_body)
            return await self.app(scope, replay(body, receive), send)
        finally:                            # the event, if any, is in Gradio's queue now: pending() counts it
            self.admitted[visitor] -= 1
            if not self.admitted[visitor]:
                del self.admitted[visitor]


def fn_index_of(body: bytes) -> int | None:
    try:
        value = json.loads(body).get("fn_index")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


async def too_large(send, size: int, cap: int) -> None:
    await reply(send, 413, f"The request is {size:,} bytes; this app takes at most {cap:,} here.")


def declared_length(scope: dict) -> int:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def read_body(receive, cap: int) -> bytes | None:
    """The whole request body, or None once it grows past ``cap`` (chunked bodies carry no length)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive):
    """A ``receive`` that hands the already-read body to the app, then listens to the real one."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def reply(send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail, "error": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
