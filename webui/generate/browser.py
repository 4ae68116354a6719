"""Generation in the visitor's browser: the served folder of browser copies, kept in step with the picker, and
the script the page loads once (the runtime runs in a Web Worker; its matrix-vector kernel is WebAssembly).

The copies are served by a route of their own (``copies_route``, at COPIES under the app's root): the copies and
``index.json`` of ``settings.browser_dir``, by name, and nothing else; the page never learns where they lie on the
server. A model over ``settings.max_browser_bytes``, or a run still training, has no copy: the page generates it
on the server and says why.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from charrnn.runs.store import RunDir
from charrnn.runs.weights import CheckpointError
from webui.generate import wasm, webcopy
from webui.generate.view import page_views
from webui.models import list_checkpoints

STATIC = Path(__file__).resolve().parent / "static"
RUNTIME_FILES = ("runtime.js",)           # the worker's source
PAGE_FILE = "page.js"                     # the page's side: the worker, the Generate button, the slider
# the server button and the record box the page's script clicks and fills: in the page, never shown (nor the
# box's form wrapper, whose border would draw a stray line)
CSS = ".charrnn-hidden, div.form:has(> #browser-record) { display: none !important; }"
# A character of the text the page sends back for the chart takes at most 7 bytes of the request: a control
# character is \u0001 in the record's JSON, escaped again in the request's (UTF-8 takes at most 4).
RECORD_BYTES_PER_CHAR = 7
RECORD_ROOM = 4096                        # the request's own fields, beside the record
COPIES = "charrnn/copies"                 # the copies' route, under the app's root (webui.fair opens it)
# A copy's name is the digest of its content: a browser may keep it for good. The index changes as runs do.
KEPT, FRESH = "public, max-age=31536000, immutable", "no-store"


def sync_copies(settings, known: dict) -> dict:
    """Write a browser copy for every complete checkpoint the picker lists, then ``index.json``.

    ``known`` maps (path, mtime_ns, size) to a digest, so an unchanged file is not hashed again; returns
    the index: {key: {"copy": digest} or {"copy": None, "why": reason}}.
    """
    index = {}
    for r in list_checkpoints(settings):
        index[r["key"]] = copy_entry(settings, r, known)
    try:
        webcopy.write_index(settings.browser_dir, index)
    except OSError:                     # a full or read-only disk: the page generates on the server instead
        pass
    return index


def copy_entry(settings, r: dict, known: dict) -> dict:
    if r["status"].get("state") == "running":
        return {"copy": None, "why": "it is still training, so its weights change: generated on the server"}
    path = r["path"] / RunDir.WEIGHTS
    try:
        stat = path.stat()
    except OSError:
        return {"copy": None, "why": "its weights could not be read"}
    if stat.st_size > settings.max_browser_bytes:
        return {"copy": None, "why": f"it is over {settings.max_browser_bytes >> 20} MB, too big to send to a "
                                     "browser: generated on the server"}
    sig = (str(path), stat.st_mtime_ns, stat.st_size)
    try:
        digest = known.get(sig) or webcopy.file_digest(path)
        webcopy.write_copy(path, settings.browser_dir, digest)
    except (OSError, CheckpointError) as e:
        return {"copy": None, "why": f"no browser copy could be made ({str(e).splitlines()[0][:120]})"}
    known[sig] = digest
    return {"copy": digest}


def head_script(settings, serverless: bool = False) -> str:
    """The <script> the page loads once: where the copies are, the worker's source and the kernel's bytes, what
    it colours a generated text with, and how many characters of it fit in a request (``record_chars``);
    ``serverless``: a page with no server to fall back on (the static site, ``webui.export``)."""
    config = {"folder": f"{COPIES}/", "index": webcopy.INDEX,         # relative: the page's base is the app's root
              "serverless": serverless,
              "maxPrime": settings.max_prime, "views": page_views(), "recordChars": record_chars(settings),
              "wasm": base64.b64encode(wasm.matvec_module()).decode(), "rows": wasm.ROWS,
              "worker": "\n".join((STATIC / f).read_text() for f in RUNTIME_FILES)}
    page = (STATIC / PAGE_FILE).read_text()
    # </ never appears inside a JSON string we emit, so the script element cannot be closed early
    payload = json.dumps(config).replace("</", "<\\/")
    return f"<script>window.CHARRNN_BROWSER = {payload};\n{page}</script>"


def record_chars(settings) -> int:
    """The most characters of text the page sends back after generating (for the chart to read): any text that long
    fits in an event under the app's request cap (``settings.max_event_body``)."""
    return (settings.max_event_body - RECORD_ROOM) // RECORD_BYTES_PER_CHAR


def copies_route(settings) -> Route:
    """GET (and HEAD) /COPIES/<name>: the file ``name`` of ``settings.browser_dir`` when it is the index or a copy's
    JSON or floats (``copy_file``), else 404; the index never cached, a copy kept for good."""
    async def serve_copy(request: Request) -> Response:
        path = copy_file(settings.browser_dir, request.path_params["name"])
        if path is None:
            return PlainTextResponse("No such browser copy.", status_code=404)
        cache = FRESH if path.name == webcopy.INDEX else KEPT
        return FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})

    return Route(f"/{COPIES}/{{name}}", serve_copy, methods=["GET", "HEAD"])


def copy_file(folder: Path, name: str) -> Path | None:
    """The file ``name`` of the copies' folder when a page may read it (``webcopy.is_served``) and it is a file
    right inside that folder (not a link out of it), else None."""
    if not webcopy.is_served(name):
        return None
    try:
        path = (Path(folder) / name).resolve(strict=True)
    except OSError:
        return None
    return path if path.parent == Path(folder).resolve() and path.is_file() else None
