"""The front door of a public app: every request passes here before Gradio sees it, so one visitor cannot fill the
queue, the memory or the threads for everyone else.

- Routes: only those the page and its API use are open (``ROUTES``); any other is answered 404 (405 for a wrong
  method) unread. Each open route caps its body: an event's request is small unless its function reads a pasted
  text, an upload may be larger, anything else is small. A body over its cap is refused with 413 as soon as it
  declares its length or grows past the cap, never read whole.
- Pasted text: the bytes of the large bodies (a pasted text) in one visitor's events waiting, running or being read
  are bounded (``text_held``): past it a request that may carry one is read only up to what is left, else answered
  429, so a visitor's queued texts cannot hold the memory.
- Events: every route that runs a function (the queue, ``/call``, ``/run``, ``/api``) counts toward its visitor's
  events waiting or running, at most ``most`` of each kind: work (functions with a concurrency limit: generation,
  training, the charts) and quick (polls and reads that run at once), so a visitor's own generations never starve
  their page's polls. Work of all visitors together is bounded too (``room``), leaving Gradio's queue places for
  polls. Past a bound a request is answered at once with 429 and when to try again.
- Bytes: a visitor's uploads are counted, per minute and as kept (Gradio keeps an upload an hour or two), and so are
  the files sent to them (downloads, browser copies) per minute (``webui.quotas.ByteMeter``); past a quota an upload
  is refused before it is read, a file before it is sent: 429 and when to try again.
- Visitors: the socket's peer, unless the peer is a proxy the operator trusts (``Settings.trusted_proxies``, from
  CHARRNN_TRUSTED_PROXIES); then the right-most X-Forwarded-For hop that is not a trusted proxy, repeated headers
  joined, so what a client writes in the header itself is never believed. A Space is reached only through the
  Spaces proxy: its operator sets CHARRNN_TRUSTED_PROXIES to the networks that proxy connects from (by default
  there, the private networks), else every visitor would count as the proxy. An IPv6 visitor is their /64, which
  one machine usually holds whole. uvicorn, which serves Gradio, already puts the forwarded address in place of a
  loopback peer (its FORWARDED_ALLOW_IPS: 127.0.0.1 and ::1 unless set), so a proxy on the same machine, such as
  Gradio's SSR server, is trusted before this runs.

Gradio's queue size is global and its concurrency limits are per function: nothing in Gradio limits one visitor.
No gradio here: the app passes in its events and how to tell its functions apart.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from charrnn.runs.writes import human
from webui.quotas import MINUTE, ByteMeter

VISITOR = "charrnn.visitor"         # the scope key under which the front door leaves who sent a request
TEXT_BYTES = "charrnn.text_bytes"   # ... and the size of its body, when it is larger than a small one (a pasted text)


@dataclass(frozen=True)
class Limits:
    most: int               # events one visitor may have waiting or running, of each kind (work, quick)
    room: int               # work events of all visitors together
    small_body: int         # bytes of a request's body, except:
    max_body: int           # an event whose function reads a pasted text
    max_upload: int         # an upload (all its files)
    retry_after: int = 5    # seconds a refused visitor is told to wait
    # bytes one visitor may move (0: no limit): upload a minute, have kept (an upload is kept upload_kept_s), and
    # fetch as files a minute (webui.quotas)
    upload_per_minute: int = 0
    upload_kept: int = 0
    upload_kept_s: float = 7200.0
    download_per_minute: int = 0
    text_held: int = 0      # bytes of large bodies (pasted texts) one visitor's events may hold at once (0: no limit)


@dataclass(frozen=True)
class Route:
    """An open route: its methods, its body cap (a ``Limits`` field), and how a request names the function it runs
    ("" runs none; "body": fn_index; "path": the API name in the path; "either": fn_index, else the API name)."""

    methods: tuple[str, ...]
    cap: str = "small_body"
    runs: str = ""
    meter: str = ""         # "uploads" or "files": the visitor's bytes through it are counted (``webui.quotas``)


READ = Route(("GET", "HEAD"))
FILES = Route(("GET", "HEAD"), meter="files")
# Gradio 6.31's routes (gradio/routes.py) that the page, gradio_client and the /call API use; the others (vibe
# editing, MCP, streamed media, component server functions, proxying, login, monitoring, run history) stay closed.
ROUTES = [(re.compile(pattern), route) for pattern, route in (
    (r"/gradio_api/queue/join", Route(("POST",), "max_body", "body")),
    (r"/gradio_api/(?:run|api)/(?P<name>[^/]+)", Route(("POST",), "max_body", "either")),
    (r"/gradio_api/call(?:/v2)?/(?P<name>[^/]+)", Route(("POST",), "max_body", "path")),
    (r"/gradio_api/upload", Route(("POST",), "max_upload", meter="uploads")),
    (r"/gradio_api/(?:cancel|reset)", Route(("POST",))),
    (r"/|/config|/favicon\.ico|/robots\.txt|/manifest\.json|/theme\.css|/pwa_icon(?:/[^/]+)?", READ),
    (r"/(?:assets|static|svelte)/.+", READ),
    (r"/gradio_api/(?:info|openapi\.json|app_id|theme\.css|startup-events|deep_link|upload_progress)", READ),
    (r"/gradio_api/(?:queue/data|queue/status|heartbeat/[^/]+|call/[^/]+/[^/]+)", READ),
    (r"/gradio_api/(?:file=.+|file/.+)", FILES),
    (r"/charrnn/copies/[^/]+", FILES),              # the app's own: the browser copies (webui.generate.browser)
)]


class Refused(Exception):
    """A request the front door answers itself, with a status and a plain-text reason."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


class FrontDoor:
    """ASGI middleware: closed routes, capped bodies, and a bounded number of events per visitor.

    ``events()`` lists (visitor, function key) for every event waiting or running in the app, or (visitor, function
    key, bytes of pasted text: its scope's ``TEXT_BYTES``); ``quick(key)`` says
    whether a function runs at once; ``takes_text(key)`` whether its request may carry a pasted text. A function
    key is its fn_index or its API name, as the request names it.
    """

    def __init__(self, app, events: Callable[[], Iterable[tuple[str, object]]], quick: Callable[[object], bool],
                 takes_text: Callable[[object], bool], limits: Limits, trusted: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic):
        self.app, self.events, self.quick, self.takes_text, self.limits = app, events, quick, takes_text, limits
        self.uploads, self.files = ByteMeter(limits.upload_kept_s, clock), ByteMeter(MINUTE, clock)
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted]
        self.admitted: Counter = Counter()      # (visitor, quick) -> requests let through and not yet answered
        self.reading: Counter = Counter()       # visitor -> POST bodies being read
        self.holding: Counter = Counter()       # visitor -> bytes of pasted text being read or admitted

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return await send({"type": "websocket.close", "code": 1008})     # the app serves no websocket
        try:
            await self.serve(scope, receive, send)
        except Refused as refusal:                  # raised before the app saw the request
            await reply(send, refusal.status, refusal.detail, refusal.headers)

    async def serve(self, scope, receive, send):
        route, name = route_of(scope.get("method", ""), route_path(scope))
        visitor = scope[VISITOR] = find_visitor(scope, self.trusted)
        if route.runs:
            return await self.run_event(scope, receive, send, route, name, visitor)
        if route.meter == "files":
            return await self.send_files(scope, receive, send, visitor)
        if route.meter == "uploads":
            self.check_upload(visitor, declared_length(scope))
        body = await self.read(scope, receive, visitor, getattr(self.limits, route.cap))
        if route.meter == "uploads":
            self.check_upload(visitor, len(body))           # no await from here to the count
            self.uploads.add(visitor, len(body))
        await self.app(scope, replay(body, receive), send)

    async def run_event(self, scope, receive, send, route: Route, name: str | None, visitor: str):
        """Admit an event if its visitor (and the server) has room for its kind, with its body within its cap."""
        limits = self.limits
        work, quick, everyone = self.load(visitor)
        work_room = work < limits.most and everyone < limits.room
        if not work_room and quick >= limits.most:                  # nothing of this visitor could be admitted
            raise self.busy(visitor, quick=False)
        # with no room for work only a quick event can be admitted, and those are small: a bigger body is work
        cap, over = (getattr(limits, route.cap), None) if work_room else (limits.small_body, self.busy(visitor, False))
        if route.runs == "path" and not self.takes_text(name):     # the function is known before its body
            cap, over = limits.small_body, None
        cap, over, reserved = self.text_room(scope, visitor, cap, over)
        with counted(self.holding, visitor, reserved):
            body = await self.read(scope, receive, visitor, cap, over)
        key = function_key(route, name, body)
        is_quick = bool(self.quick(key))
        # from the check to the count, no await: requests arriving together are counted as they are admitted
        if not self.has_room(visitor, is_quick):
            raise self.busy(visitor, is_quick)
        text = len(body) if len(body) > limits.small_body else 0
        if text and not self.takes_text(key):
            raise too_large(len(body), limits.small_body)
        if text and limits.text_held and self.held_text(visitor) + text > limits.text_held:
            raise self.text_busy(visitor)
        if text:
            scope[TEXT_BYTES] = text                                # what the event holds, while it waits or runs
        with counted(self.admitted, (visitor, is_quick)), counted(self.holding, visitor, text):
            await self.app(scope, replay(body, receive), send)     # until the event is queued, or has run

    def text_room(self, scope, visitor: str, cap: int, over: Refused | None) -> tuple[int, Refused | None, int]:
        """A body's cap and refusal within what the visitor's events leave of ``text_held``, and the bytes it holds
        while read (its declared length, else the cap), so that bodies read together count toward it too."""
        limits = self.limits
        if cap <= limits.small_body or not limits.text_held:
            return cap, over, 0
        room = limits.text_held - self.held_text(visitor)
        if room < cap:
            cap, over = max(room, limits.small_body), over or self.text_busy(visitor)
        declared = declared_length(scope)
        return cap, over, min(declared, cap) if declared else cap

    def held_text(self, visitor: str) -> int:
        """Bytes of pasted text in ``visitor``'s events: waiting, running, being read or admitted."""
        queued = sum(event[2] for event in self.events() if len(event) > 2 and event[0] == visitor)
        return queued + self.holding[visitor]

    def text_busy(self, visitor: str) -> Refused:
        """429 for a visitor whose events already hold their share of pasted text."""
        limits = self.limits
        return Refused(429, f"Your requests waiting or running already carry {human(self.held_text(visitor))} of "
                            f"pasted text; this server holds {human(limits.text_held)} of one visitor's at once. Try "
                            f"again in {limits.retry_after} s.", {"retry-after": str(limits.retry_after)})

    async def read(self, scope, receive, visitor: str, cap: int, over: Refused | None = None) -> bytes:
        """The request's body, refused (``over``, else 413) past ``cap``; a visitor's POST bodies are read a few at
        a time, so a flood of slow bodies cannot hold the memory."""
        size = declared_length(scope)
        if size > cap:
            raise over or too_large(size, cap)
        if scope.get("method") != "POST":
            body = await read_body(receive, cap)
        elif self.reading[visitor] >= self.limits.most:
            raise self.busy(visitor, quick=True)
        else:
            with counted(self.reading, visitor):
                body = await read_body(receive, cap)
        if body is None:
            raise over or too_large(cap + 1, cap)
        return body

    def load(self, visitor: str) -> tuple[int, int, int]:
        """This visitor's work and quick events, and all visitors' work: waiting, running, or being admitted."""
        tally = Counter((who, bool(self.quick(key))) for who, key, *_ in self.events()) + self.admitted
        everyone = sum(n for (_, quick), n in tally.items() if not quick)
        return tally[visitor, False], tally[visitor, True], everyone

    def has_room(self, visitor: str, quick: bool) -> bool:
        work, quick_now, everyone = self.load(visitor)
        if quick:
            return quick_now < self.limits.most
        return work < self.limits.most and everyone < self.limits.room

    def busy(self, visitor: str, quick: bool) -> Refused:
        """429, naming the bound that was reached: the visitor's own, or (for work) the server's."""
        limits = self.limits
        work, _, everyone = self.load(visitor)
        if not quick and work < limits.most and everyone >= limits.room:
            detail = f"The server already has {everyone} requests waiting or running; "
        else:
            detail = f"You already have {limits.most} requests waiting or running on this server; "
        return Refused(429, detail + f"try again in {limits.retry_after} s.", {"retry-after": str(limits.retry_after)})

    def check_upload(self, visitor: str, size: int) -> None:
        """Refuse an upload of ``size`` bytes past the visitor's bytes a minute or their bytes kept: 429 and when to
        try again, or 413 for an upload no wait would let through."""
        limits, uploads = self.limits, self.uploads
        kept_for = f"{limits.upload_kept_s / 3600:g} hours"
        for allowed, seconds, said in (
                (limits.upload_per_minute, MINUTE, "You have uploaded {used} in the last minute; this server takes "
                                                   "{allowed} a minute from one visitor, this upload included."),
                (limits.upload_kept, limits.upload_kept_s, "Your uploads kept on this server come to {used} (an upload "
                                                           f"is kept up to {kept_for}); it keeps {{allowed}} of one "
                                                           "visitor's, this upload included.")):
            wait = uploads.wait_s(visitor, seconds, allowed, size) if allowed else 0.0
            if math.isinf(wait):
                raise Refused(413, f"This upload is {human(size)}; this server takes at most {human(allowed)} from "
                                   "one visitor. Send a smaller file.")
            if wait:
                raise quota_refusal(wait, said.format(used=human(uploads.since(visitor, seconds)),
                                                      allowed=human(allowed)))

    async def send_files(self, scope, receive, send, visitor: str):
        """A file (a download, a browser copy, an upload read back) unless the visitor had their minute's worth;
        its bytes are counted as they go out."""
        limit, files = self.limits.download_per_minute, self.files
        if limit and files.since(visitor, MINUTE) >= limit:
            raise quota_refusal(files.wait_s(visitor, MINUTE, limit, 1), f"You have fetched "
                                f"{human(files.since(visitor, MINUTE))} of files in the last minute; this server "
                                f"sends {human(limit)} a minute to one visitor.")
        body = await self.read(scope, receive, visitor, self.limits.small_body)

        async def counted_send(message):
            if message["type"] == "http.response.body":
                files.add(visitor, len(message.get("body", b"")))
            await send(message)

        await self.app(scope, replay(body, receive), counted_send)


def quota_refusal(wait_s: float, said: str) -> Refused:
    """429 for a visitor past a byte quota: what they used, and when to try again."""
    wait = math.ceil(wait_s)
    when = f"{wait} s" if wait < 120 else f"{math.ceil(wait / 60)} minutes"
    return Refused(429, f"{said} Try again in {when}.", {"retry-after": str(wait)})


def keys_of(fns: dict, chosen: Callable[[object], bool]) -> set:
    """The ids and API names of the functions in ``fns`` (id -> function) that ``chosen`` picks: a request names
    the function it runs by either."""
    return {key for fn_id, fn in fns.items() if chosen(fn) for key in (fn_id, fn.api_name) if key is not None}


# --- who is asking -------------------------------------------------------------------------------------------------
def find_visitor(scope: dict, trusted: list) -> str:
    """The socket's peer, or behind trusted proxies the right-most forwarded hop that is not one of them."""
    peer = peer_of(scope)
    if not is_trusted(peer, trusted):
        return visitor_key(peer)
    hops = [h.strip() for v in header_values(scope, b"x-forwarded-for") for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        host = host_of(hop)
        if not is_trusted(host, trusted):
            return visitor_key(host)
    return visitor_key(host_of(hops[0]) if hops else peer)      # every hop a proxy of ours: the farthest one


def visitor_of(scope: dict) -> str:
    """Who sent a request, as the front door found it (the socket's peer for a request it did not see)."""
    return scope.get(VISITOR) or visitor_key(peer_of(scope))


def peer_of(scope: dict) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def host_of(hop: str) -> str:
    """The address in one X-Forwarded-For entry, without a port ("[2001:db8::1]:443", "192.0.2.1:80")."""
    if hop.startswith("["):
        return hop[1:].split("]")[0]
    return hop.split(":")[0] if hop.count(":") == 1 else hop


def is_trusted(host: str, trusted: list) -> bool:
    address = address_of(host)
    return address is not None and any(address in network for network in trusted)


def visitor_key(host: str) -> str:
    """The key one visitor is counted under: the address, or for IPv6 its /64 (one machine's usual share)."""
    address = address_of(host)
    if address is None or address.version == 4:
        return str(address or host)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def address_of(host: str):
    """``host`` as an IP address (an IPv4-mapped IPv6 one as IPv4), or None for a name or garbage."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def header_values(scope: dict, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers") or [] if key == name]


# --- which route ---------------------------------------------------------------------------------------------------
def route_path(scope: dict) -> str:
    """The request's path as the routes are written: without the app's root path or a trailing slash."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.rstrip("/") or "/"


def route_of(method: str, path: str) -> tuple[Route, str | None]:
    """The open route ``method`` ``path`` takes and the API name in its path; refused (404, 405) when closed."""
    for pattern, route in ROUTES:
        match = pattern.fullmatch(path)
        if match and method in route.methods:
            return route, match.groupdict().get("name")
    if any(pattern.fullmatch(path) for pattern, _ in ROUTES):
        raise Refused(405, f"{path} does not take {method} here.")
    raise Refused(404, f"This app does not serve {path}.")


def function_key(route: Route, name: str | None, body: bytes):
    """The function an event runs, as Gradio finds it: the body's fn_index, else the API name in the path."""
    if route.runs == "path":                                    # /call reads only the path
        return name
    try:
        request = json.loads(body)
    except ValueError:
        return None                                             # Gradio refuses it too
    index = request.get("fn_index") if isinstance(request, dict) else None
    if index is None:
        return name if route.runs == "either" else None
    if type(index) is not int:                  # Gradio would read "3" or 3.0 as 3: refused instead of guessed
        raise Refused(422, "fn_index must be a whole number.")
    return index


# --- bodies --------------------------------------------------------------------------------------------------------
def declared_length(scope: dict) -> int:
    for value in header_values(scope, b"content-length"):
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


@contextmanager
def counted(counter: Counter, key, amount: int = 1):
    """``key`` counted ``amount`` more in ``counter`` for the duration (and gone from it at zero)."""
    counter[key] += amount
    try:
        yield
    finally:
        counter[key] -= amount
        if not counter[key]:
            del counter[key]


def too_large(size: int, cap: int) -> Refused:
    return Refused(413, f"The request is {size:,} bytes; this app takes at most {cap:,} here.")


async def reply(send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail, "error": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
