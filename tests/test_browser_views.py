"""The Generate and Inside tabs in a real browser, in the light and the dark theme (``?__theme=dark``), on a desktop
(1300 x 1000) and a phone (390 x 844): Stop pressed mid-stream with the mouse, the coloured views readable (WCAG
contrast from getComputedStyle), the prime following the chosen model, hints in plain words, one bar at T = 0,
temperatures side by side stacking on a phone, a refused generation leaving clear views, and Suggest units saying
when it suggests the same units again.

Debian's Chromium driven by Playwright (never `playwright install`); screenshots go to test-artifacts/.
"""
from __future__ import annotations

import pytest
from app_fixtures import corpus_text, launched, make_checkpoint
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from charrnn.runs.store import RunDir
from webui.generate.generation import SIDE_TEMPERATURES
from webui.passages import model_passage, model_prime
from webui.prime import DEFAULT_PRIME

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP, PHONE = {"width": 1300, "height": 1000}, {"width": 390, "height": 844}
BUNDLED = "shakespeare (bundled)"
OWN = corpus_text()          # the "cats" run's own text: "the cat sat on the mat 0" ...
ADDED = "QWERTY\nasdf\n"     # the vocabulary of "added", a model added from a file whose text is not here


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


LONG = 50_000        # this app's longest generation (Settings.max_length): seconds of text, so Stop lands mid-stream


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An app with the bundled model and "cats" (the newest, so the one the page starts on) with its own text."""
    root = tmp_path_factory.mktemp("checkpoints")
    make_checkpoint(root / "added", ADDED, data={"name": "elsewhere.txt", "chars": len(ADDED), "path": ""})
    RunDir(root / "added").write_status("uploaded", file="added.safetensors")      # as webui.transfer.add_model
    make_checkpoint(root / "cats", OWN)
    (root / "cats" / "corpus.txt").write_text(OWN, encoding="utf-8")
    with launched(root, max_length=LONG) as served:
        yield served


def open_page(browser, served, viewport=DESKTOP, theme="light"):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url + ("?__theme=dark" if theme == "dark" else ""))
    page.wait_for_selector("#start-btn")
    page.get_by_role("tab", name="Generate").click()
    page.wait_for_selector("#generate-btn")
    expect(page.locator("#checkpoint input")).to_have_value("cats")                  # filled by the first poll
    return page


@pytest.fixture
def page(browser, served):
    page = open_page(browser, served)
    yield page
    page.close()


def choose_model(page, label: str) -> None:
    page.locator("#checkpoint input").click()
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.locator("#checkpoint input")).to_have_value(label)


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def output_length(page) -> int:
    return len(page.locator("#output textarea").input_value())


# --- 1. Stop, clicked with the mouse mid-stream, stops the text --------------------------------
def test_stop_clicked_mid_stream_stops_the_text_and_the_confidence_view_says_so(page, served):
    """The bundled model writes thousands of characters a second: an update every few characters kept the page
    too busy to hear Stop, and the text grew to its full length."""
    choose_model(page, BUNDLED)
    expect(page.locator("#prime textarea")).to_have_value(DEFAULT_PRIME)
    page.locator("#length input[type=number]").fill(str(LONG))
    page.click("#generate-btn")
    expect(page.locator("#confidence")).to_contain_text("Generating")
    page.wait_for_function("document.querySelector('#output textarea').value.length > 300", timeout=TIMEOUT_MS)
    page.click("#gen-stop-btn")                                                     # a real mouse click
    expect(page.locator("#confidence")).to_contain_text("Stopped")
    page.wait_for_timeout(1500)                      # room for an update already sent; then nothing more may come
    stopped = output_length(page)
    page.wait_for_timeout(3000)                      # generating, the model would write thousands more
    assert output_length(page) == stopped < len(DEFAULT_PRIME) + LONG
    expect(page.locator("#confidence")).to_contain_text("Stopped")
    shoot(page, "browser-views-stopped")


# --- 2. and 9. readable in both themes; temperatures side by side stack on a phone ------------
CONTRAST = """(selector) => {
  const parse = (c) => { const m = /rgba?\\(([^)]+)\\)/.exec(c); if (!m) return null;
                         const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(parseFloat);
                         return {rgb: p.slice(0, 3), alpha: p.length > 3 ? p[3] : 1}; };
  const luminance = (rgb) => { const l = rgb.map((v) => { v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const background = (el) => { for (let n = el; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor); if (c && c.alpha > 0) return c.rgb; }
    return [255, 255, 255]; };
  const found = [...document.querySelectorAll(selector)].filter((el) => el.textContent.trim());
  let worst = null;
  for (const el of found) {
    const ink = parse(getComputedStyle(el).color), bg = background(el);
    const [a, b] = [luminance(ink.rgb), luminance(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (!worst || ratio < worst.ratio) worst = {ratio, text: el.textContent, ink: ink.rgb, bg};
  }
  return {count: found.length, worst};
}"""

COLOURED = {   # every coloured character and swatch of the views, and the prime before them
    "confidence": "#confidence .charrnn-chars span, #confidence .charrnn-swatch",
    "temperatures": "#compare .charrnn-chars span, #compare .charrnn-swatch",
    "unit": "#unit-view .charrnn-chars span, #unit-view .charrnn-swatch",
}
LAYOUT = """() => {
  const grid = document.querySelector('#compare .charrnn-columns');
  const columns = [...grid.querySelectorAll('.charrnn-temperature')].map((c) => c.getBoundingClientRect());
  return {gridWidth: grid.clientWidth, overflow: grid.scrollWidth - grid.clientWidth,
          right: document.querySelector('#compare').getBoundingClientRect().right, viewport: window.innerWidth,
          lefts: columns.map((r) => Math.round(r.left)), tops: columns.map((r) => Math.round(r.top)),
          widths: columns.map((r) => r.width)};
}"""


def assert_readable(page, view: str) -> None:
    measured = page.evaluate(CONTRAST, COLOURED[view])
    assert measured["count"] > 10, view
    assert measured["worst"]["ratio"] >= 4.5, (view, measured["worst"])


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_coloured_views_are_readable_and_fit_the_screen(browser, served, theme, screen):
    page = open_page(browser, served, DESKTOP if screen == "desktop" else PHONE, theme)
    try:
        is_dark = page.evaluate("document.body.classList.contains('dark')")
        assert is_dark == (theme == "dark")                                         # the theme asked for
        choose_model(page, BUNDLED)
        page.locator("#length input[type=number]").fill("300")
        page.click("#generate-btn")
        expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(300)
        assert_readable(page, "confidence")
        prime = page.evaluate(CONTRAST, "#confidence .charrnn-prime")            # the greyed prime
        assert prime["count"] == 1 and prime["worst"]["ratio"] >= 4.5, prime

        page.click("#compare-btn")
        expect(page.locator("#compare .charrnn-temperature")).to_have_count(len(SIDE_TEMPERATURES))
        assert_readable(page, "temperatures")
        layout = page.evaluate(LAYOUT)
        assert layout["overflow"] <= 1 and layout["right"] <= layout["viewport"] + 1, layout   # nothing cut off
        if screen == "phone":                                                       # stacked, each full width
            assert len(set(layout["lefts"])) == 1 and layout["tops"] == sorted(set(layout["tops"])), layout
            assert min(layout["widths"]) >= 0.9 * layout["gridWidth"], layout
        else:                                                                       # side by side, in one row
            assert len(set(layout["tops"])) == 1 and layout["lefts"] == sorted(set(layout["lefts"])), layout
        shoot(page, f"browser-views-generate-{theme}-{screen}")

        page.get_by_role("tab", name="Inside a unit").click()
        expect(page.locator("#unit-view .charrnn-chars span[title]").first).to_be_visible()
        assert_readable(page, "unit")
        shoot(page, f"browser-views-inside-{theme}-{screen}")
    finally:
        page.close()


# --- 3. the prime follows the chosen model --------------------------------------------------
def test_the_prime_is_the_start_of_a_line_of_the_chosen_models_own_text(page, served):
    own = model_prime(served.settings, served.ctx.models, "cats")
    assert own.startswith("the cat") and own != DEFAULT_PRIME
    expect(page.locator("#prime textarea")).to_have_value(own)                      # the page starts on "cats"
    choose_model(page, BUNDLED)
    expect(page.locator("#prime textarea")).to_have_value(DEFAULT_PRIME)            # ROMEO: for the bundled model
    page.locator("#prime textarea").fill("my own words")
    choose_model(page, "cats")
    page.get_by_role("tab", name="Inside a unit").click()
    own_passage = model_passage(served.settings, served.ctx.models, "cats")[0]
    expect(page.locator("#unit-text textarea")).to_have_value(own_passage)          # its text
    page.get_by_role("tab", name="Generate").click()
    expect(page.locator("#prime textarea")).to_have_value("my own words")            # an edited prime is kept


def test_a_model_added_from_a_file_gets_a_prime_and_a_passage_it_wrote_and_says_why(page, served):
    written = model_prime(served.settings, served.ctx.models, "added")
    assert written and set(written) <= set(ADDED)                                   # from its own vocabulary
    choose_model(page, "added")
    expect(page.locator("#prime textarea")).to_have_value(written)                  # not an empty prime
    page.get_by_role("tab", name="Inside a unit").click()
    passage = model_passage(served.settings, served.ctx.models, "added")[0]
    expect(page.locator("#unit-text textarea")).to_have_value(passage)              # its writing, not Shakespeare
    expect(page.locator("#passage-btn")).to_have_text("A passage it wrote")
    expect(page.locator("#unit-model")).to_contain_text("Its training text is not on this server")
    shoot(page, "browser-views-inside-added")


# --- 5. and 7. plain-English hints where the terms appear; one bar at T = 0 ---------------------
BARS = "#next-char-plot g.mark-rect path"


def test_the_terms_have_plain_english_hints_and_greedy_shows_one_bar(page):
    expect(page.locator("#temperature")).to_contain_text("the scores (logits) are divided by T before the softmax")
    expect(page.locator("#temperature")).to_contain_text("changes from the first pick that differs")
    expect(page.locator("#next-char-info")).to_contain_text("how unsure the model is")          # entropy
    page.locator("#temperature input[type=range]").fill("0")
    expect(page.locator("#next-char-info")).to_contain_text("greedy")
    page.wait_for_function(f"document.querySelectorAll('{BARS}').length === 1", timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Inside a unit").click()
    expect(page.locator("#unit-kind")).to_contain_text("the memory squashed to -1..1")      # h = o * tanh(c)
    expect(page.locator("#suggestions")).to_contain_text("how closely the unit follows the feature")   # r
    shoot(page, "browser-views-hints")


# --- a refused generation leaves the views clear; Suggest units says when nothing changed -----
def test_a_refused_generation_leaves_no_error_badge_and_says_nothing_was_generated(page):
    page.locator("#length input[type=number]").fill("40")
    page.click("#generate-btn")
    expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(40)
    before = page.locator("#output textarea").input_value()
    page.locator("#prime textarea").fill("a" * 10_001)
    page.click("#generate-btn")
    expect(page.locator(".toast-body").first).to_contain_text("at most 10,000 characters")
    page.wait_for_timeout(500)                       # the page draws the event's end with the toast; then:
    expect(page.locator("#output")).not_to_contain_text("Error")                     # no bare badge on the box
    expect(page.locator("#confidence")).to_contain_text("Nothing generated: The prime must be text of at most")
    expect(page.locator("#confidence")).not_to_contain_text("Generating")
    assert page.locator("#output textarea").input_value() == before
    shoot(page, "browser-views-refused")


def test_suggest_units_pressed_again_says_it_suggests_the_same_units(page):
    page.get_by_role("tab", name="Inside a unit").click()
    expect(page.locator("#suggestions")).to_contain_text("position in line")      # the first look, on opening
    expect(page.locator("#unit-view")).not_to_contain_text("The same units again")
    page.click("#suggest-btn")
    expect(page.locator("#unit-view")).to_contain_text("The same units again: cell ")
