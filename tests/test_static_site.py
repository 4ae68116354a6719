"""The static site (webui.export): the Generate page with no server behind it, as a Static Space serves it.

Exported into a folder and served by a plain static file server, in Chromium: it lists its models, generates the
server's text for the same seed, re-samples at a new temperature with the same draws, draws the next-character
bars and the confidence colours, and downloads the model file; no request leaves the folder's server. The export
refuses what it cannot use and then writes nothing."""
from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest
from app_fixtures import corpus_text, make_checkpoint
from browser_fixtures import ARTIFACTS, chromium
from playwright.sync_api import expect

from charrnn.runs.store import RunDir, load_checkpoint
from charrnn.sample import generate
from webui.export import ExportError, export_site, main
from webui.generate import webcopy
from webui.settings import Settings

PRIME, SEED, LENGTH = "ROMEO:", 3, 120


def server_text(path, prime: str, temperature: float) -> str:
    model, vocab, _ = load_checkpoint(path)
    return prime + "".join(generate(model, vocab, prime, LENGTH, temperature, seed=SEED))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("static")
    settings = Settings(root=tmp / "ck")                 # the bundled model is the project's own
    make_checkpoint(settings.root / "tiny", corpus_text())
    out = tmp / "site"
    index = export_site(out, settings, ["tiny"])
    return settings, out, index


def test_the_export_holds_the_page_the_copies_the_model_files_and_a_static_space_card(site):
    settings, out, index = site
    assert list(index) == [settings.bundled.name, "tiny"]
    assert index["shakespeare"]["label"] == "shakespeare (bundled)"
    for key, entry in index.items():
        info, floats = webcopy.read_copy(out / "charrnn" / "copies", entry["copy"])
        assert floats.size == info["floats"]
        source = settings.bundled if key == "shakespeare" else settings.root / key
        assert (out / entry["download"]).read_bytes() == (source / RunDir.WEIGHTS).read_bytes()
    assert json.loads((out / "charrnn" / "copies" / "index.json").read_text()) == index
    card = (out / "README.md").read_text(encoding="utf-8")
    front = card.split("---")[1]
    assert "sdk: static" in front and "app_file: index.html" in front
    assert "cross-origin-embedder-policy: require-corp" in front and "cross-origin-opener-policy: same-origin" in front
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '"serverless": true' in page and "<!--CHARRNN-->" not in page
    assert "gradio" not in page.lower()                                   # no server's page in it


def test_a_re_export_replaces_its_own_files_and_a_foreign_folder_or_model_is_refused_writing_nothing(tmp_path):
    settings = Settings(root=tmp_path / "ck")
    make_checkpoint(settings.root / "tiny", corpus_text())
    out = tmp_path / "site"
    export_site(out, settings, ["tiny"])
    assert set(export_site(out, settings, [], bundled=True)) == {"shakespeare"}          # again, fewer models
    assert not (out / "models" / "tiny.safetensors").exists()
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    for runs, message in ((["nope"], "nope"), (["../etc"], "invalid run name"), (["tiny", "tiny"], "named twice")):
        with pytest.raises(ExportError, match=message):
            export_site(out, settings, runs)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="holds files an export did not write"):
        export_site(foreign, settings, ["tiny"])
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(ExportError, match="Nothing to export"):
        export_site(tmp_path / "empty", settings, [], bundled=False)


def test_the_command_says_what_it_wrote_or_one_line_why_not(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHARRNN_CHECKPOINTS", str(tmp_path / "ck"))
    assert main([str(tmp_path / "site"), "--runs", "missing"]) == 2
    assert capsys.readouterr().err.startswith("error: missing")
    assert main([str(tmp_path / "site")]) == 0
    assert "shakespeare (bundled)" in capsys.readouterr().out and (tmp_path / "site" / "index.html").is_file()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page(site):
    _, out, _ = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    for browser in chromium():
        p = browser.new_page(viewport={"width": 1200, "height": 1000})
        requests: list[str] = []
        p.on("request", functools.partial(lambda seen, r: seen.append(r.url), requests))
        p.goto(base + "index.html")
        yield p, base, requests
        p.close()
    server.shutdown()


def test_the_page_generates_the_servers_text_resamples_with_the_same_draws_and_asks_no_server(site, page):
    settings, out, _ = site
    p, base, requests = page
    expect(p.locator("#model option")).to_have_count(2)
    p.select_option("#model", "tiny")
    expect(p.locator("#model-info")).to_contain_text("Trained on tiny.txt")
    p.select_option("#model", "shakespeare")
    p.fill("#prime-text", PRIME)
    p.fill("#length", str(LENGTH))
    p.fill("#seed", str(SEED))
    p.click("#generate-btn")
    expect(p.locator("#gen-where")).to_contain_text("Generated in your browser")
    weights = settings.bundled / RunDir.WEIGHTS
    assert p.locator("#output-text").input_value() == server_text(weights, PRIME, 0.8)
    expect(p.locator("#bars div.bar")).to_have_count(15)
    expect(p.locator("#confidence span[title]")).to_have_count(LENGTH)
    p.locator("#temperature").fill("0.3")                 # the slider moved: the same draws at T 0.3
    expect(p.locator("#gen-where")).to_contain_text("Re-sampled in your browser at T = 0.3")
    assert p.locator("#output-text").input_value() == server_text(weights, PRIME, 0.3)
    expect(p.locator("#confidence")).to_contain_text("temperature 0.3")    # the colours follow once it rests
    p.screenshot(path=str(ARTIFACTS / "static-site.png"), full_page=True)
    with p.expect_download() as info:
        p.click("#model-download")
    assert info.value.suggested_filename == "shakespeare.safetensors"
    assert open(info.value.path(), "rb").read() == weights.read_bytes()
    assert requests and all(url.startswith(base) or url.startswith("blob:") for url in requests)


def test_the_page_follows_a_dark_system_theme_and_fits_a_phone(site, page):
    p, base, _ = page
    for scheme, size in (("dark", (1200, 900)), ("light", (390, 844))):
        p.emulate_media(color_scheme=scheme)
        p.set_viewport_size({"width": size[0], "height": size[1]})
        p.reload()
        expect(p.locator("#model option")).to_have_count(2)
        assert p.evaluate("document.body.classList.contains('dark')") is (scheme == "dark")
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= size[0], f"the page is {width} px wide on a {size[0]} px screen"
        if size[0] < 700:                                # a phone: the slider right under the output it re-samples
            output, slider = p.locator("#output").bounding_box(), p.locator("#temperature-box").bounding_box()
            assert 0 <= slider["y"] - (output["y"] + output["height"]) < 40
            p.fill("#length", "200")
            p.click("#generate-btn")                     # the colours and their legend drawn fit the phone too
            expect(p.locator("#confidence .charrnn-swatch").first).to_be_visible()
            width = p.evaluate("document.documentElement.scrollWidth")
            assert width <= size[0], f"after generating, the page is {width} px wide on a {size[0]} px screen"
        p.screenshot(path=str(ARTIFACTS / f"static-site-{scheme}-{size[0]}.png"), full_page=True)


def test_a_visitor_trains_on_their_text_in_the_page_then_generates_from_and_downloads_it(page, tmp_path):
    p, base, requests = page
    p.set_viewport_size({"width": 1200, "height": 1000})
    p.reload()
    text = corpus_text(200)
    p.fill("#train-text", text)
    p.fill("#train-seconds", "6")
    p.fill("#train-hidden", "32")
    p.click("#train-btn")
    expect(p.locator("#train-status")).to_contain_text("Training LSTM 1 x 32 in this browser: step")
    expect(p.locator("#train-status")).to_contain_text("the kept model is step", timeout=120_000)
    expect(p.locator("#train-status")).to_contain_text("It is chosen above")
    assert p.locator("#train-plot path").count() == 1 and p.locator("#train-plot circle").count() >= 1
    expect(p.locator("#train-sample")).not_to_have_value("")
    expect(p.locator("#model")).to_have_value("trained-here")
    expect(p.locator("#model option:checked")).to_have_text("your model (trained here on pasted text)")
    p.fill("#prime-text", "the ")
    p.fill("#length", "80")
    p.click("#generate-btn")
    expect(p.locator("#gen-where")).to_contain_text("Generated in your browser")
    assert p.locator("#output-text").input_value().startswith("the ")
    with p.expect_download() as info:
        p.click("#model-download")
    assert info.value.suggested_filename == "trained-here.safetensors"
    info.value.save_as(tmp_path / "trained-here.safetensors")
    model, vocab, header = load_checkpoint(tmp_path / "trained-here.safetensors")
    assert vocab.chars == sorted(set(text)) and header["data"]["name"] == "pasted text"
    assert header["best_step"] == header["step"] > 0 and model.config.hidden == 32
    p.screenshot(path=str(ARTIFACTS / "static-site-trained.png"), full_page=True)
    assert all(url.startswith(base) or url.startswith("blob:") for url in requests)
