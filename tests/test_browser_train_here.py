"""Training in this browser from the app's Train tab, in Chromium: the visitor takes the text they pasted, trains in
the page (nothing reaches the server: no run folder, no trainer), watches the loss and samples, generates from the
model in the page and downloads a file charrnn loads."""
from __future__ import annotations

import pytest
from app_fixtures import corpus_text, launched
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from charrnn.runs.store import load_checkpoint


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("checkpoints")) as served:
        yield served


def test_a_visitor_trains_in_their_browser_generates_and_downloads_and_the_server_trains_nothing(browser, served,
                                                                                                 tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url)
    text = corpus_text(200)
    page.get_by_text("Paste text", exact=True).click()
    page.locator("#pasted textarea").fill(text)
    page.locator("#browser-train-section").get_by_text("Or train in this browser").click()
    section = page.locator("#browser-train")
    expect(section.locator(".bt-recipe")).to_contain_text("LSTM 1 x auto")     # mounted: the recipe is drawn
    section.locator(".bt-use-pasted").click()
    expect(section.locator(".bt-text")).to_have_value(text)
    expect(section.locator(".bt-text-info")).to_contain_text(f"{len(text):,} characters")
    section.locator(".bt-seconds").fill("6")
    section.locator(".bt-hidden").fill("32")
    section.locator(".bt-train").click()
    expect(section.locator(".bt-status")).to_contain_text("in this browser: step")
    expect(section.locator(".bt-status")).to_contain_text("the kept model is step", timeout=120_000)
    assert section.locator(".bt-plot circle").count() >= 1
    expect(section.locator(".bt-sample")).not_to_have_value("")
    expect(section.locator(".bt-after")).to_be_visible()
    section.locator(".bt-prime").fill("the ")
    section.locator(".bt-generate").click()
    expect(section.locator(".bt-output")).not_to_have_value("")
    assert section.locator(".bt-output").input_value().startswith("the ")
    with page.expect_download() as info:
        section.locator(".bt-download").click()
    info.value.save_as(tmp_path / "mine.safetensors")
    model, vocab, header = load_checkpoint(tmp_path / "mine.safetensors")
    assert vocab.chars == sorted(set(text)) and model.config.hidden == 32 and header["best_step"] > 0
    assert list(served.root.iterdir()) == [] or all(p.name.startswith(".") for p in served.root.iterdir())
    assert served.ctx.jobs.proc is None                                          # the server trained nothing
    page.screenshot(path=str(ARTIFACTS / "browser-train-here.png"), full_page=True)

    section.locator(".bt-seconds").fill("-3")                  # a second run: what it changed is said
    section.locator(".bt-train").click()
    expect(section.locator(".bt-after")).to_be_hidden()        # the last run's model and text are not this one's
    assert section.locator(".bt-output").input_value() == ""
    expect(section.locator(".bt-status")).to_contain_text("seconds -3 is outside 5 to 3600: 5 used")
    expect(section.locator(".bt-status")).to_contain_text("the kept model is step", timeout=120_000)
    expect(section.locator(".bt-train")).to_be_enabled()
    page.close()


@pytest.mark.parametrize("theme, width", [("dark", 1300), ("light", 390)])
def test_the_section_reads_in_the_dark_theme_and_fits_a_phone(browser, served, theme, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url + ("?__theme=dark" if theme == "dark" else ""))
    page.locator("#browser-train-section").get_by_text("Or train in this browser").click()
    section = page.locator("#browser-train")
    expect(section.locator(".bt-recipe")).to_contain_text("LSTM 1 x")
    box = section.bounding_box()
    assert box["x"] + box["width"] <= width                                  # nothing runs off a phone's screen
    if theme == "dark":                                                      # the text boxes follow the theme
        colour = section.locator(".bt-text").evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), colour
    section.screenshot(path=str(ARTIFACTS / f"browser-train-here-{theme}-{width}.png"))
    page.close()
