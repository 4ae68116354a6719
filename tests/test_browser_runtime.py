"""The page's runtime (webui/generate/static/runtime.js in a Web Worker, WebAssembly kernel) against torch, in
Chromium: the same next-character logits for every cell and depth, the same greedy text, samples that follow
softmax(logits / T) (a frequency test a wrong temperature fails), the server's random numbers bit for bit, and
the prime folded by the copy's table as the server folds it."""
from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
import torch
from app_fixtures import corpus_text
from browser_fixtures import chromium

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.store import RunDir
from charrnn.sample import generate, uniforms
from charrnn.vocab import Vocab
from webui.generate import webcopy
from webui.generate.browser import head_script
from webui.settings import Settings

PRIME = "the cat sat"
MODELS = [(cell, layers) for cell in ("lstm", "gru", "rnn") for layers in (1, 2)]


def build(root, cell, layers, sharpen=1.0, seed=0):
    """A small model (hidden 13, a vocabulary that is no multiple of 4: the kernel's padding is exercised)."""
    vocab = Vocab.from_text(corpus_text())
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=13, layers=layers, cell=cell)).eval()
    with torch.no_grad():
        model.head.weight.mul_(sharpen)
    run = root / f"{cell}{layers}-{sharpen:g}"
    run.mkdir()
    RunDir(run).keep(model, vocab, {"run": run.name, "step": 1})
    return model, vocab, webcopy.write_copy(run, root / "web")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime")
    models = {key: build(root, *key) for key in MODELS}
    models["sharp"] = build(root, "lstm", 1, sharpen=12.0, seed=3)
    web = root / "web"
    (web / "index.html").write_text(f"<html><head>{head_script(Settings(root=root))}</head><body></body></html>")
    handler = functools.partial(Quiet, directory=str(web))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    for browser in chromium():
        p = browser.new_page()
        p.goto(base + "index.html")
        assert p.evaluate("window.charrnn.start()") is True          # WebAssembly compiled in the worker
        yield p, base, models
        p.close()
    server.shutdown()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("kernel", ["wasm", "js"])
@pytest.mark.parametrize("key", MODELS, ids=[f"{c}-{n}layer" for c, n in MODELS])
def test_the_page_gives_torchs_next_character_logits(page, key, kernel):
    p, base, models = page
    model, vocab, digest = models[key]
    got = p.evaluate("([u, t, k]) => window.charrnn.logits(u, t, k)", [base + digest, PRIME, kernel])
    with torch.no_grad():
        want = model(vocab.encode(PRIME).long()[None])[0][0, -1].numpy()
    assert got["type"] == "logits"
    np.testing.assert_allclose(np.array(got["logits"]), want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("key", [("lstm", 2), ("gru", 1), ("rnn", 2)], ids=["lstm", "gru", "rnn"])
def test_greedy_text_from_the_page_equals_the_servers(page, key):
    p, base, models = page
    model, vocab, digest = models[key]
    got = p.evaluate("([u, t]) => window.charrnn.run(u, t, 120, 0, 1)", [base + digest, PRIME])
    assert got["type"] == "done" and got["prime"] == PRIME
    assert got["text"] == "".join(generate(model, vocab, PRIME, 120, temperature=0.0))


def test_sampled_characters_follow_softmax_of_the_logits_at_the_temperature(page):
    p, base, models = page
    model, vocab, digest = models["sharp"]
    n, t = 6000, 0.7
    firsts = p.evaluate("""async ([u, prime, n, t]) => {
        const out = [];
        for (let s = 1; s <= n; s++) out.push((await window.charrnn.run(u, prime, 1, t, s)).text);
        return out; }""", [base + digest, PRIME, n, t])
    counts = np.array([firsts.count(c) for c in vocab.chars]) / n
    with torch.no_grad():
        logits = model(vocab.encode(PRIME).long()[None])[0][0, -1].double()
    right, wrong = (torch.softmax(logits / temp, -1).numpy() for temp in (t, 2 * t))
    tv = lambda a, b: 0.5 * np.abs(a - b).sum()                  # noqa: E731
    assert tv(right, wrong) > 0.15                                 # the test can tell the two temperatures apart
    assert tv(counts, right) < 0.05 and tv(counts, wrong) > 0.1


def test_the_same_seed_repeats_the_text_and_top_k_keeps_to_the_k_likeliest(page):
    p, base, models = page
    model, vocab, digest = models["sharp"]
    a, b = (p.evaluate("([u, t]) => window.charrnn.run(u, t, 80, 1.0, 42)", [base + digest, PRIME]) for _ in "ab")
    assert a["text"] == b["text"]
    with torch.no_grad():
        logits = model(vocab.encode(PRIME).long()[None])[0][0, -1]
    top2 = {vocab.chars[i] for i in torch.topk(logits, 2).indices.tolist()}
    firsts = {p.evaluate("([u, t, s]) => window.charrnn.run(u, t, 1, 2.0, s, 'wasm', 2)",
                         [base + digest, PRIME, s])["text"] for s in range(1, 60)}
    assert firsts <= top2 and len(firsts) == 2


@pytest.mark.parametrize("key", [("lstm", 2), ("gru", 1)], ids=["lstm", "gru"])
def test_resampling_at_a_new_temperature_equals_a_fresh_run_with_the_same_seed(page, key):
    """The slider's redraw reuses stored logits and states up to the first changed pick: the text must be exactly
    what a fresh generation at the new temperature with the same seed gives, and the same before that point."""
    p, base, models = page
    _, _, digest = models[key]
    url = base + digest
    for old_t, new_t in ((0.8, 0.85), (0.8, 1.5), (1.0, 0.0)):
        old = p.evaluate("([u, p, t]) => window.charrnn.run(u, p, 150, t, 9)", [url, PRIME, old_t])
        again = p.evaluate("(t) => window.charrnn.resample(t)", new_t)
        fresh = p.evaluate("([u, p, t]) => window.charrnn.run(u, p, 150, t, 9)", [url, PRIME, new_t])
        assert again["text"] == fresh["text"] and again["probs"] == fresh["probs"]    # the same floats: same states
        d = again["differs"]
        if d < 0:
            assert again["text"] == old["text"]
        else:
            assert again["text"][:d] == old["text"][:d] and again["text"][d] != old["text"][d]


def test_the_pages_random_stream_is_the_servers_bit_for_bit(page):
    p, base, _ = page
    seeds = [0, 1, 2**31 - 1, 2**53 - 1, -5, str(2**63 - 1), str(2**64 - 1)]    # past 2^53 as decimal strings
    fresh = p.context.browser.new_page()       # the worker's source run in a page of its own, to reach uniforms()
    fresh.goto(base + "index.html")
    got = fresh.evaluate("""(seeds) => {
        const uniforms = new Function(window.CHARRNN_BROWSER.worker + "\\nreturn uniforms;")();
        return seeds.map((s) => Array.from(uniforms(s, 2000))); }""", seeds)
    fresh.close()
    for seed, numbers in zip(seeds, got, strict=True):
        assert numbers == uniforms(int(seed), 0, 2000).tolist(), seed


def test_the_page_folds_the_prime_by_the_copys_table_as_the_server_does(page):
    p, base, models = page
    model, vocab, digest = models[("lstm", 1)]
    prime = "the " + "".join(webcopy.fold_table(vocab)) + " cat"     # every character the table holds
    got = p.evaluate("([u, t]) => window.charrnn.run(u, t, 40, 1.0, 3)", [base + digest, prime])
    assert got["type"] == "done" and got["prime"] == vocab.clean(prime, "fold")
    assert got["text"] == "".join(generate(model, vocab, got["prime"], 40, 1.0, seed=3))


def test_a_prime_character_the_table_lacks_is_refused_so_the_page_asks_the_server(page):
    p, base, models = page
    got = p.evaluate("([u, t]) => window.charrnn.run(u, t, 10, 1.0, 3)", [base + models[("lstm", 1)][2], "the 北 cat"])
    assert got["type"] == "error" and "fold table lacks" in got["message"] and "北" in got["message"]


@pytest.mark.parametrize("key", [("lstm", 2), ("gru", 1)])
def test_a_model_made_in_the_page_is_generated_from_as_its_copy_is(page, key):
    """A model trained in the page never becomes a file on a server: its copy's header and floats are handed to
    the worker (addModel), and it generates the server's text for the same seed."""
    p, _, models = page
    model, vocab, _ = models[key]
    info, arrays = webcopy.copy_header(model, vocab, {"run": "made", "step": 1})
    floats = np.concatenate([a.ravel() for a in arrays]).tolist()
    added = p.evaluate("([k, i, f]) => window.charrnn.addModel(k, i, Float32Array.from(f))",
                       [f"made-{key[0]}{key[1]}", info, floats])
    assert added["type"] == "added"
    url = p.evaluate("(k) => window.charrnn.copyFor(k)", f"made-{key[0]}{key[1]}")["url"]
    got = p.evaluate("([u, t]) => window.charrnn.run(u, t, 120, 0.8, 11)", [url, PRIME])
    assert got["type"] == "done"
    assert got["text"] == "".join(generate(model, vocab, PRIME, 120, temperature=0.8, seed=11))


def test_samples_on_their_own_lane_and_an_added_model_never_end_the_visitors_generation(page):
    """A run training in the page samples each check on a worker of its own (charrnn.sampler()) and adds its
    kept model to the page's: the visitor's generation, started before both, still ends with the text it would
    have made alone; the sample is the server's text for its model and seed."""
    p, base, models = page
    model, vocab, url = models[("lstm", 1)]
    info, arrays = webcopy.copy_header(model, vocab, {"run": "made", "step": 1})
    floats = np.concatenate([a.ravel() for a in arrays]).tolist()
    got = p.evaluate("""async ([url, prime, info, floats]) => {
      const visitor = window.charrnn.run(url, prime, 20000, 0.8, 5);        // long enough to be running still
      const lane = window.charrnn.sampler();
      await lane.addModel("sample", info, Float32Array.from(floats));
      const sample = await lane.run("made:sample", prime, 60, 0.8, 9);
      const added = await window.charrnn.addModel("kept", info, Float32Array.from(floats));
      const late = new Promise((resolve) => setTimeout(() => resolve({type: "no answer in 60 s"}), 60000));
      return {visitor: await Promise.race([visitor, late]), sample, added};
    }""", [base + url, PRIME, info, floats])
    assert got["added"]["type"] == "added" and got["sample"]["type"] == "done"
    assert got["sample"]["text"] == "".join(generate(model, vocab, PRIME, 60, temperature=0.8, seed=9))
    assert got["visitor"]["type"] == "done"                                   # not "cancelled"
    assert got["visitor"]["text"] == "".join(generate(model, vocab, PRIME, 20000, temperature=0.8, seed=5))


def test_a_model_replaced_under_the_same_name_starts_from_its_own_state(page):
    """A training run's samples replace their model under one name at each check: the next text, with the same
    prime, is the new model's from its first character (not the old one's primed state)."""
    p, _, models = page
    texts = []
    for key in (("lstm", 1), "sharp"):
        model, vocab, _ = models[key]
        info, arrays = webcopy.copy_header(model, vocab, {"run": "made", "step": 1})
        floats = np.concatenate([a.ravel() for a in arrays]).tolist()
        got = p.evaluate("""async ([info, floats, prime]) => {
          await window.charrnn.addModel("replaced", info, Float32Array.from(floats));
          return window.charrnn.run("made:replaced", prime, 80, 0.8, 4);
        }""", [info, floats, PRIME])
        assert got["type"] == "done"
        texts.append(got["text"])
        assert got["text"] == "".join(generate(model, vocab, PRIME, 80, temperature=0.8, seed=4))
    assert texts[0] != texts[1]
