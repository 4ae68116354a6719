"""The app in a real browser: Debian's Chromium driven by Playwright (never `playwright install`).

Screenshots go to test-artifacts/ (gitignored) for a person to look at.
"""
from __future__ import annotations

import re

import pytest
from app_fixtures import TINY_TRAINING, corpus_text, launched
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from charrnn.config import PRESETS
from webui.generate.generation import SIDE_TEMPERATURES
from webui.train.forms import PRESET_PURPOSES

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("checkpoints")) as served:
        yield served.url


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#start-btn")
    yield page
    page.close()


def value_of(page, selector: str) -> str:
    return page.locator(selector).input_value()


def wait_js(page, expression: str, arg=None) -> None:
    page.wait_for_function(expression, arg=arg, timeout=TIMEOUT_MS)


def test_generate_tab_streams_text_at_the_chosen_temperature(page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_role("tab", name="Generate").click()
    page.wait_for_selector("#generate-btn")
    expect(page.locator("#checkpoint input")).not_to_have_value("")                  # the bundled model
    page.locator("#temperature input[type=range]").fill("1.3")
    assert value_of(page, "#temperature input[type=number]") == "1.3"
    page.locator("#prime textarea").fill("ROMEO:")
    page.click("#generate-btn")
    expect(page.locator("#output textarea")).to_have_value(re.compile(r"^ROMEO:[\s\S]{500}$"), timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "browser-generate.png"), full_page=True)


BARS = "#next-char-plot g.mark-rect path"      # Vega's bars, each labelled 'next character: T; probability: 0.17'
TOP_BAR_P = ("() => { const b = document.querySelector('" + BARS + "');"
             " const m = b && /probability: ([0-9.e-]+)/.exec(b.getAttribute('aria-label') || '');"
             " return m ? parseFloat(m[1]) : null; }")


def test_inside_the_model_bars_follow_the_temperature_colours_and_temperatures_side_by_side(page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_role("tab", name="Generate").click()
    page.wait_for_selector("#generate-btn")
    wait_js(page, f"document.querySelectorAll('{BARS}').length >= 10")             # drawn from the first data
    expect(page.locator("#next-char-info")).to_contain_text("temperature 0.8")
    warm = page.evaluate(TOP_BAR_P)
    page.locator("#temperature input[type=range]").fill("0.2")
    expect(page.locator("#next-char-info")).to_contain_text("temperature 0.2")
    wait_js(page, f"(warm) => ({TOP_BAR_P})() > warm", warm)                        # the likeliest bar grew
    page.screenshot(path=str(ARTIFACTS / "browser-inside-cold.png"), full_page=True)

    page.locator("#length input[type=number]").fill("300")
    page.click("#generate-btn")
    expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(300)   # one per new character
    expect(page.locator("#next-char-info")).to_contain_text("The text goes on with")

    page.click("#compare-btn")
    expect(page.locator("#compare .charrnn-temperature")).to_have_count(len(SIDE_TEMPERATURES))
    expect(page.locator("#compare")).to_contain_text("T = 1.6")
    page.screenshot(path=str(ARTIFACTS / "browser-inside.png"), full_page=True)

    page.get_by_role("tab", name="Inside a unit").click()
    expect(page.locator("#unit-view")).to_contain_text("unit")                     # suggested and shown on opening
    assert page.locator("#unit-view .charrnn-chars span[title]").count() > 1000
    expect(page.locator("#suggestions")).to_contain_text("upper-case line")
    page.screenshot(path=str(ARTIFACTS / "browser-inside-unit.png"), full_page=True)


def test_train_tab_shows_a_run_learning_survives_a_reload_and_stops(page, url):
    t = TINY_TRAINING
    page.get_by_text("Paste text", exact=True).click()
    page.locator("#pasted textarea").fill(corpus_text())
    expect(page.locator("#corpus-info")).to_contain_text("pasted text")
    page.locator("#preset input").click()        # quick: no limit of passes over the text, so it trains until Stop
    page.get_by_role("option", name=f"quick: {PRESET_PURPOSES['quick']}", exact=True).click()
    expect(page.locator("#hidden input")).to_have_value(str(PRESETS["quick"][0]["hidden"]))
    for field, value in (("hidden", t["hidden"]), ("seq-len", t["seq_len"]), ("batch-size", t["batch_size"]),
                         ("lr", t["lr"]), ("minutes", t["minutes"]), ("patience", 0)):   # runs until Stop
        page.locator(f"#{field} input").fill(str(value))
    page.locator("#run-name textarea, #run-name input").first.fill("browser-run")
    page.click("#start-btn")

    expect(page.locator("#train-status")).to_contain_text("Training browser-run")
    wait_js(page, "document.querySelectorAll('#loss-plot g.mark-line path').length > 0")       # a drawn curve
    first_curve = page.locator("#loss-plot g.mark-line path").first.get_attribute("d")
    wait_js(page, "(d) => { const p = document.querySelector('#loss-plot g.mark-line path');"
                  " return p && p.getAttribute('d') !== d; }", first_curve)                   # and it grows
    expect(page.locator("#latest-sample textarea")).not_to_have_value("")
    first_sample = value_of(page, "#latest-sample textarea")
    expect(page.locator("#latest-sample textarea")).not_to_have_value(first_sample)          # a newer sample
    wait_js(page, "[...document.querySelectorAll('#loss-plot g.mark-line path')]"
                  ".filter(p => (p.getAttribute('d') || '').length > 20).length >= 2")     # train and validation
    page.screenshot(path=str(ARTIFACTS / "browser-train.png"), full_page=True)

    page.goto(url)                                   # a reload shows the running job again
    page.wait_for_selector("#start-btn")
    expect(page.locator("#train-status")).to_contain_text("Training browser-run")
    wait_js(page, "document.querySelectorAll('#loss-plot g.mark-line path').length > 0")

    page.click("#stop-btn")
    expect(page.locator("#train-status")).to_contain_text("Stopped: browser-run")
    page.screenshot(path=str(ARTIFACTS / "browser-stopped.png"), full_page=True)
