"""One seed, one text, in Chromium: the page's runtime (WebAssembly in a Web Worker, and plain JavaScript) writes
the server's text (generation_stream, the Output's engine) for the same seed, prime, temperature, top-k and
length, on the bundled model and tiny LSTM, GRU and RNN models, with primes it folds by the copy's fold table;
Compare temperatures' columns and the page's re-sampling at a new temperature agree with it too.

Equal logits give equal picks (the same stream, the same float64 steps); the page's float32 logits differ from
numpy's in the last bits, which could flip a draw that falls within ~1e-7 of a boundary: these cases do not."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest
import torch
from app_fixtures import corpus_text
from browser_fixtures import chromium
from html_reading import columns

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.store import RunDir
from charrnn.vocab import Vocab
from webui.context import AppContext
from webui.generate import webcopy
from webui.generate.browser import head_script
from webui.generate.generation import SIDE_TEMPERATURES, compare_temperatures, generation_stream
from webui.models import BUNDLED_KEY, resolve_checkpoint
from webui.settings import Settings

pytestmark = pytest.mark.browser

ISSUE = ("ROMEO:", 0.8, 200, 0, 1)                  # (prime, temperature, length, top-k (0 = off), seed)
BUNDLED_CASES = [ISSUE, ("Łódź ø Привет", 0.8, 200, 0, 1), ("“Hark!” — JULIET…", 1.2, 200, 10, 2**40 + 3)]
CELLS = ("lstm", "gru", "rnn")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(the page, {model key: its copy's URL}, the server's context) for the bundled model and tiny runs."""
    root = tmp_path_factory.mktemp("one-stream")
    ctx = AppContext(Settings(root=root / "ckpts"))
    vocab = Vocab.from_text(corpus_text())
    for cell in CELLS:
        torch.manual_seed(1)
        model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=13, layers=2, cell=cell))
        (ctx.settings.root / cell).mkdir(parents=True)
        RunDir(ctx.settings.root / cell).keep(model, vocab, {"run": cell, "step": 1})
    web = root / "web"
    copies = {key: webcopy.write_copy(resolve_checkpoint(ctx.settings, key), web) for key in (BUNDLED_KEY, *CELLS)}
    (web / "index.html").write_text(f"<html><head>{head_script(Settings(root=root))}</head><body></body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(web)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    for browser in chromium():
        p = browser.new_page()
        p.goto(base + "index.html")
        assert p.evaluate("window.charrnn.start()") is True          # WebAssembly compiled in the worker
        yield p, {key: base + digest for key, digest in copies.items()}, ctx
        p.close()
    server.shutdown()


def page_text(p, url, prime, temperature, length, top_k, seed, kernel="wasm") -> str:
    got = p.evaluate("(a) => window.charrnn.run(...a)", [url, prime, length, temperature, seed, kernel, top_k])
    assert got["type"] == "done", got
    return got["prime"] + got["text"]


def server_text(ctx, key, prime, temperature, length, top_k, seed) -> str:
    return list(generation_stream(ctx, key, prime, temperature, length, top_k, seed))[-1].text


@pytest.mark.parametrize("kernel", ["wasm", "js"])
@pytest.mark.parametrize("case", BUNDLED_CASES, ids=["issue", "non-ascii-prime", "top-k-big-seed"])
def test_the_page_writes_the_servers_text_with_the_bundled_model(page, case, kernel):
    p, urls, ctx = page
    assert page_text(p, urls[BUNDLED_KEY], *case, kernel=kernel) == server_text(ctx, BUNDLED_KEY, *case)


@pytest.mark.parametrize("cell", CELLS)
def test_the_page_writes_the_servers_text_with_tiny_models(page, cell):
    p, urls, ctx = page
    for case in (("the cat", 1.0, 150, 0, 1), ("Thé ñ ß", 1.6, 150, 5, 42)):
        assert page_text(p, urls[cell], *case) == server_text(ctx, cell, *case), case


def test_compare_temperatures_columns_are_the_pages_text_at_each_temperature(page):
    p, urls, ctx = page
    got = columns(compare_temperatures(ctx, BUNDLED_KEY, "ROMEO:", 1))
    for t in SIDE_TEMPERATURES:
        assert "ROMEO:" + got[f"{t:g}"] == page_text(p, urls[BUNDLED_KEY], "ROMEO:", t, 200, 0, 1), t


def test_the_pages_resampling_at_a_new_temperature_writes_the_servers_text_at_it(page):
    p, urls, ctx = page
    page_text(p, urls[BUNDLED_KEY], *ISSUE)
    for t in (1.2, 0.5):
        again = p.evaluate("(t) => window.charrnn.resample(t)", t)
        assert "ROMEO:" + again["text"] == server_text(ctx, BUNDLED_KEY, "ROMEO:", t, 200, 0, 1), t
