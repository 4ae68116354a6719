"""The views of a text generated in the page, in Chromium (Debian's, driven by Playwright): the page colours it itself,
to the HTML the server's ``confidence_html`` draws, so the longest generation at the default temperature sends no
request over the app's cap and the confidence view never stays on "Generating…"; the first Generate shows the model
downloading; on a phone the temperature slider sits right under the output; in the dark theme the text boxes are dark
panels whose last line shows; no console errors, a reload mid-generation included. Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import re

import pytest
from app_fixtures import launched
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from webui.generate.view import confidence_html
from webui.prime import DEFAULT_PRIME

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
BUNDLED = "shakespeare (bundled)"


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app as it ships: the bundled model, the longest generation 5,000 characters, requests capped at 64 KiB."""
    with launched(tmp_path_factory.mktemp("checkpoints")) as served:
        yield served


class Watched:
    """A page of the app on the Generate tab, with every POST's size, every response's status and every console
    error or uncaught exception recorded from the start."""

    def __init__(self, browser, served, viewport=DESKTOP, theme="light"):
        self.posts, self.statuses, self.errors = [], [], []
        self.page = page = browser.new_page(viewport=viewport)
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", lambda r: self.posts.append((r.url, len(r.post_data_buffer or b"")))
                if r.method == "POST" else None)
        page.on("response", lambda r: self.statuses.append((r.url, r.status)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(served.url + ("?__theme=dark" if theme == "dark" else ""))
        page.wait_for_selector("#start-btn")
        self.open_generate()

    def open_generate(self):
        self.page.get_by_role("tab", name="Generate").click()
        self.page.wait_for_selector("#generate-btn")
        expect(self.page.locator("#checkpoint input")).to_have_value(BUNDLED)

    def generate(self, length: int):
        self.page.locator("#length input[type=number]").fill(str(length))
        self.page.locator("#length input[type=number]").press("Enter")
        self.page.click("#generate-btn")

    def box(self, selector: str) -> dict:
        return self.page.locator(selector).first.bounding_box()


@pytest.fixture
def watched(browser, served):
    w = Watched(browser, served)
    yield w
    w.page.close()


WATCH_CONFIDENCE = """() => { window.seen = [];
  const view = document.querySelector('#confidence');
  new MutationObserver(() => window.seen.push(view.innerText.slice(0, 60)))
    .observe(view, {childList: true, subtree: true, characterData: true}); }"""


def test_the_longest_generation_is_coloured_in_the_page_under_the_request_cap(watched, served):
    page, cap = watched.page, served.settings.max_event_body
    assert page.input_value("#temperature input[type=number]") == "0.8"            # the default temperature
    page.evaluate(WATCH_CONFIDENCE)
    watched.generate(5000)
    expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(5000)
    expect(page.locator("#confidence")).to_contain_text("Sampled at temperature 0.8")
    expect(page.locator("#confidence")).to_contain_text("in 5,000 characters")
    expect(page.locator("#confidence")).not_to_contain_text("Generating")
    assert any("Generating" in s for s in page.evaluate("window.seen"))             # it said so while it worked
    text = page.input_value("#output textarea")
    assert text.startswith(DEFAULT_PRIME) and len(text) == len(DEFAULT_PRIME) + 5000
    # the chart reads the new text: the position slider spans it and starts just after the prime
    expect(page.locator("#position input[type=range]")).to_have_attribute("max", str(len(text)))
    expect(page.locator("#position input[type=number]")).to_have_value(str(len(DEFAULT_PRIME)))
    page.wait_for_timeout(1000)                                   # the chart's request has gone too
    sizes = [size for _, size in watched.posts]
    assert max(sizes) > 5000 and max(sizes) < cap, sizes         # the text went back; nothing near the cap
    assert not [s for s in watched.statuses if s[1] == 413] and watched.errors == []
    page.screenshot(path=str(ARTIFACTS / "browser-page-views-5000.png"), full_page=True)


def test_moving_the_slider_recolours_the_text_in_the_page(watched, served):
    page = watched.page
    watched.generate(5000)
    expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(5000)
    before = len(watched.posts)
    page.locator("#temperature input[type=range]").fill("1.3")
    expect(page.locator("#gen-where")).to_contain_text("Re-sampled in your browser at T = 1.3")
    expect(page.locator("#confidence")).to_contain_text("Sampled at temperature 1.3")     # once it rests
    expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(5000)
    page.wait_for_timeout(1000)
    assert all(size < served.settings.max_event_body for _, size in watched.posts[before:])
    assert watched.errors == []


RECORDS = [      # the text, where its prime ends, each new character's probability: edge cases of the drawing
    {"text": "ROMEO:\nab<c>&'\"\u200b\t x", "start": 7, "temperature": 0.8, "top_k": None,
     "probs": [0.5, 0.0625, 0.3125, 0.999, 0.0004, 1.0, 0.1, 0.09999, 0.2, 0.0, 0.7, 0.55]},   # ties at .3f
    {"text": "\U0001F600é\nhi", "start": 2, "probs": [0.5, 0.25, 0.375], "temperature": 1.25, "top_k": 5},
    {"text": "ab", "start": 0, "probs": [1.0, 1.0], "temperature": 0.0, "top_k": None},           # greedy
    {"text": "xxxxy", "start": 4, "probs": [0.125], "temperature": 0.35000000000000003, "top_k": 3},   # a tie at .2f
]


@pytest.mark.parametrize("record", RECORDS, ids=["escapes-and-ties", "astral-prime", "greedy", "mean-tie"])
def test_the_page_draws_the_html_the_server_draws(watched, record):
    assert watched.page.evaluate("(r) => window.charrnn.confidenceHtml(r)", record) == confidence_html(record)


THROTTLE = {"offline": False, "latency": 20, "downloadThroughput": 20e6 / 8, "uploadThroughput": 20e6 / 8}
WATCH_WHERE = """() => { window.lines = [];
  const box = document.querySelector('#gen-where');
  new MutationObserver(() => {
    const t = box.innerText.trim();
    if (t && window.lines.at(-1) !== t) window.lines.push(t);
  }).observe(box, {childList: true, subtree: true, characterData: true}); }"""


def test_the_first_generate_shows_the_model_loading_then_generates(watched):
    """At 20 Mbit/s the bundled model's 4.9 MB take two seconds: the page counts them, then writes."""
    page = watched.page
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", THROTTLE)
    page.evaluate(WATCH_WHERE)
    watched.generate(300)
    expect(page.locator("#gen-where")).to_contain_text("Generated in your browser", timeout=TIMEOUT_MS)
    lines = page.evaluate("window.lines")
    loading = [line for line in lines if re.fullmatch(r"Loading the model into this page… \d+\.\d of 4\.9 MB", line)]
    counted = [float(line.split("… ")[1].split()[0]) for line in loading]
    assert len(counted) >= 5 and counted == sorted(counted) and counted[-1] >= 4.5, lines   # it counted up
    assert lines.index(loading[-1]) + 1 == lines.index("Generating in your browser…") == len(lines) - 2
    page.evaluate(WATCH_WHERE)
    page.click("#generate-btn")                                   # the model is loaded now: no download to show
    expect(page.locator("#confidence .charrnn-chars span[title]")).to_have_count(300)
    assert not [line for line in page.evaluate("window.lines") if line.startswith("Loading")]


def test_on_a_phone_the_temperature_slider_sits_right_under_the_output(browser, served):
    phone = Watched(browser, served, PHONE)
    try:
        output, slider = phone.box("#output"), phone.box("#temperature")
        assert abs(slider["x"] - output["x"]) < 2 and 0 <= slider["y"] - (output["y"] + output["height"]) < 40
        assert slider["y"] + slider["height"] - output["y"] < PHONE["height"]       # both on one screen
        order = [phone.box(s)["y"] for s in ("#prime", "#generate-btn", "#output", "#temperature", "#gen-where",
                                             "#next-char-plot", "#position")]
        assert order == sorted(order), order
        phone.page.screenshot(path=str(ARTIFACTS / "browser-page-views-phone.png"), full_page=True)
    finally:
        phone.page.close()
    desktop = Watched(browser, served)
    try:
        output, slider = desktop.box("#output"), desktop.box("#temperature")
        assert slider["x"] > output["x"] + output["width"]                           # beside it, as before
    finally:
        desktop.page.close()


BOX = """(selector) => { const box = document.querySelector(selector), view = box.closest('.block');
  const [r, g, b] = getComputedStyle(box).backgroundColor.match(/\\d+/g).map(Number);
  const edge = box.getBoundingClientRect(), frame = view.getBoundingClientRect();
  return {light: (r + g + b) / 3, inside: edge.bottom <= frame.bottom + 0.5,
          scrolls: box.scrollHeight > box.clientHeight, border: getComputedStyle(box).borderBottomWidth}; }"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_boxes_follow_the_theme_and_show_their_last_line(browser, served, theme):
    w = Watched(browser, served, theme=theme)
    try:
        w.generate(3000)
        expect(w.page.locator("#confidence .charrnn-chars span[title]")).to_have_count(3000)
        w.page.locator("#temperature input[type=range]").fill("1.1")
        expect(w.page.locator("#gen-where .charrnn-diff")).to_be_visible()
        for selector in ("#confidence .charrnn-chars", "#gen-where .charrnn-diff"):
            box = w.page.evaluate(BOX, selector)
            assert (box["light"] > 240) == (theme == "light") and (box["light"] < 40) == (theme == "dark"), box
            assert box["inside"] and box["scrolls"] and box["border"] == "1px", (selector, box)  # frame whole
        w.page.screenshot(path=str(ARTIFACTS / f"browser-page-views-{theme}.png"), full_page=True)
        assert w.errors == []
    finally:
        w.page.close()


def test_a_reload_mid_generation_leaves_no_console_error(browser, served):
    for viewport in (DESKTOP, PHONE):
        w = Watched(browser, served, viewport)
        try:
            w.generate(5000)
            w.page.wait_for_function("document.querySelector('#output textarea').value.length > 500")
            w.page.reload()
            w.page.wait_for_selector("#start-btn")
            w.open_generate()
            w.generate(200)
            expect(w.page.locator("#confidence .charrnn-chars span[title]")).to_have_count(200)
            w.page.get_by_role("tab", name="Train").click()
            w.page.get_by_role("tab", name="Generate").click()
            w.page.wait_for_timeout(1000)
            assert w.errors == [], w.errors
        finally:
            w.page.close()
