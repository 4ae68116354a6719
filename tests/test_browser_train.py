"""The Train tab in a real browser, as a newcomer meets it: Debian's Chromium driven by Playwright (never
`playwright install`), at a desktop size (1300 x 1000) and a phone's (390 x 844).

Each test pins down a point of the issues "A page that explains itself" (4 to 9) and "Keep the best model, stop
when it stops learning" (1 to 3); screenshots go to test-artifacts/ (gitignored) for a person to look at.
"""
from __future__ import annotations

import json
import re

import pytest
from app_fixtures import TINY_TRAINING, corpus_text, launched, make_checkpoint
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from charrnn.runs.store import RunDir
from webui.train import actions
from webui.train.forms import FIELD_HINTS, FORM_FIELDS, PAGE_FIELDS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1300, "height": 1000}
PHONE = {"width": 390, "height": 844}
POLLED = ("#train-status", "#train-progress", "#loss-plot", "#latest-sample", "#earlier-samples", "#run-banner")
VALIDATION_POINT = "#loss-plot g.mark-symbol path[aria-label$='split: validation']"
KEPT_POINT = "#loss-plot g.mark-symbol path[aria-label$='split: kept model']"


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app over an empty checkpoints folder (the bundled model is offered as always)."""
    with launched(tmp_path_factory.mktemp("checkpoints")) as served:
        yield served


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """The app over a folder holding one finished run, "memorised", whose validation loss rose after step 600 while
    its training loss kept falling, with long samples."""
    root = tmp_path_factory.mktemp("overfit")
    directory = root / "memorised"
    make_checkpoint(directory, corpus_text(), step=600, best_step=600, best_val_loss=1.7, val_loss=1.7)
    records = [{"step": 10, "train_loss": 3.5, "elapsed": 0.5, "chars_per_s": 9000.0,
                "precision": {"choice": "bf16", "how": "measured", "rates": {"bf16": 30000.0, "float32": 20000.0}}}]
    word = "honorificabilitudinitatibus" * 3                                  # one word wider than a phone
    for i, (train, val) in enumerate([(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.1, 1.75), (0.9, 1.85)]):
        step = 200 * (i + 1)
        records += [{"step": step - 100, "train_loss": train + 0.1, "elapsed": step / 50, "chars_per_s": 9000.0},
                    {"step": step, "train_loss": train, "val_loss": val, "val_bpc": val / 0.693, "elapsed": step / 40,
                     "chars_per_s": 9000.0, "best_step": min(step, 600), "best_val_loss": min(val, 1.7),
                     "sample": f"ROMEO:\nsample {i}: {word} and so on, line after line of it\n" * 3}]
    (directory / RunDir.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    RunDir(directory).write_status("finished", step=1000, best_step=600, best_val_loss=1.7)
    with launched(root) as served:
        yield served


def open_page(browser, url: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#start-btn")
    return page


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browser-train-{name}.png"), full_page=True)


def shown(page, selector: str) -> bool:
    """Some element matching ``selector`` is drawn: it has a box, and neither it nor any element around it is
    transparent or hidden."""
    return page.evaluate("""(s) => [...document.querySelectorAll(s)].some(e => {
        const r = e.getBoundingClientRect();
        if (!(r.width > 0 && r.height > 0)) return false;
        for (let a = e; a; a = a.parentElement) { const c = getComputedStyle(a);
            if (c.opacity === '0' || c.visibility === 'hidden' || c.display === 'none') return false; }
        return true; })""", selector)


def start_elsewhere(served, name: str, key=None) -> str:
    """Start a run on pasted text as another visitor would (the page under test did not start it); ``key``: that
    visitor's browser key (None: a run nobody owns, as from a script without a key)."""
    values = {k: TINY_TRAINING[k] for k in FORM_FIELDS}
    return actions.start_training(served.ctx, None, "paste", None, None, corpus_text(), TINY_TRAINING["preset"],
                                  values, name, key)


# --- 5 and 2: a newcomer is told what everything is -------------------------------------------------
def test_a_newcomer_is_told_what_each_field_preset_and_loss_means(browser, served):
    page = open_page(browser, served.url, DESKTOP)
    expect(page.locator("#train-intro")).to_contain_text("The Generate tab already works")
    for name in (*FORM_FIELDS, *PAGE_FIELDS):
        expect(page.locator(f"#{name.replace('_', '-')}")).to_contain_text(FIELD_HINTS[name])
    expect(page.locator("#preset input")).to_have_value(re.compile(r"^auto: fits your text, up to 2 min"))
    expect(page.locator("#patience input")).to_have_value("5")                        # early stopping is on
    expect(page.locator("#corpus-info")).to_contain_text("A good loss for this text")
    expect(page.locator("#corpus-info")).to_contain_text("ln 65 = 4.17")
    expect(page.locator("#plot-help")).to_contain_text("nats per character")
    expect(page.locator("#model-info")).to_contain_text("stopping early after 5 checks")
    shoot(page, "newcomer")

    page.locator("#minutes input").fill("0.5")                  # auto trains a smaller model under a minute
    expect(page.locator("#hidden input")).to_have_value("256")
    expect(page.locator("#model-info")).to_contain_text("LSTM 1 x 256")
    page.locator("#minutes input").fill("3")
    expect(page.locator("#hidden input")).to_have_value("384")
    page.close()


# --- 6: a refusal stays where the buttons are ----------------------------------------------------------
def test_a_refused_start_stays_in_the_message_area_after_its_toast_fades(browser, served):
    page = open_page(browser, served.url, DESKTOP)
    page.get_by_text("Paste text", exact=True).click()
    page.locator("#pasted textarea").fill("short text")
    expect(page.locator("#corpus-info")).to_contain_text("pasted text")
    page.click("#start-btn")
    expect(page.locator(".toast-body").first).to_contain_text("at least")              # the toast, as before
    expect(page.locator(".toast-body")).to_have_count(0)                               # ... until it fades
    expect(page.locator("#train-message")).to_contain_text("⚠️ the text has 10 characters; at least")
    assert not shown(page, "#train-message .error"), "an Error badge covers the message"
    shoot(page, "refused")
    page.close()


# --- 4, 7, 8 and 1: a run in progress ---------------------------------------------------------------
def test_a_run_in_progress_is_named_drawn_with_points_and_polled_without_progress_text(browser, served):
    assert "Started run **elsewhere**" in start_elsewhere(served, "elsewhere")
    page = open_page(browser, served.url, DESKTOP)                # a second browser: it did not start the run
    page.evaluate("""(ids) => { window.progressSeen = [];
        const look = () => { for (const id of ids) { const e = document.querySelector(id); if (!e) continue;
            const m = /queue: \\d|processing|^\\d+\\.\\ds$/m.exec(e.innerText);
            if (m) window.progressSeen.push(id + ': ' + m[0]); } };
        new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                             attributes: true}); }""", list(POLLED))
    expect(page.locator("#run-banner")).to_contain_text("Training now: elsewhere")
    expect(page.locator("#run-banner")).to_contain_text("The form is for your next run")
    expect(page.locator("#start-btn")).to_be_disabled()
    expect(page.locator("#stop-btn")).to_be_visible()            # started from the CLI: the operator's, ours to stop

    page.wait_for_selector(VALIDATION_POINT, state="attached")                   # the first validation check
    assert shown(page, VALIDATION_POINT), "a validation check is drawn as a point, before there is a line"
    page.wait_for_selector(KEPT_POINT, state="attached")
    assert shown(page, KEPT_POINT), "the kept model is marked on the plot"
    expect(page.locator("#train-progress")).to_contain_text(re.compile(r"Kept model: step [\d,]+, validation loss"))
    expect(page.locator("#train-progress")).to_contain_text("Precision:")
    first = page.locator("#train-progress").inner_text()
    expect(page.locator("#train-progress")).not_to_have_text(first)              # a few polls later
    expect(page.locator("#train-status")).to_contain_text("Its settings: on pasted text")    # read-only, once saved
    expect(page.locator("#train-status")).to_contain_text("batch 8 x 32, learning rate 0.01 · 2 min")
    shoot(page, "in-progress")
    assert page.evaluate("window.progressSeen") == []

    page.click("#stop-btn")
    expect(page.locator("#train-status")).to_contain_text("Stopped: elsewhere")
    expect(page.locator("#start-btn")).to_be_enabled()
    expect(page.locator("#stop-btn")).to_be_hidden()
    message = page.locator("#train-message")                     # what the Stop click said gives way to what happened
    expect(message).to_contain_text(re.compile(r"Run elsewhere stopped at step [\d,]+, with a final checkpoint"))
    expect(message).not_to_contain_text("Stopping")
    expect(page.locator("#run-banner")).to_be_hidden()
    assert page.evaluate("window.progressSeen") == []

    page.get_by_role("tab", name="Generate").click()                             # 1: the picker's description
    expect(page.locator("#checkpoint-info")).to_contain_text(re.compile(r"kept model from [\d,]+ steps of training: "
                                                                        r"the run's best validation loss"))
    shoot(page, "stopped-generate")
    page.close()


# --- issue 16: a run another browser started is not this browser's to stop --------------------------------
def test_a_run_another_browser_started_can_be_watched_but_not_stopped_here(browser, served):
    assert "Started run **theirs**" in start_elsewhere(served, "theirs", key="their-browser-key")
    page = open_page(browser, served.url, DESKTOP)
    expect(page.locator("#run-banner")).to_contain_text("Training now: theirs")
    expect(page.locator("#run-banner")).to_contain_text("started in another browser: only that browser can stop it")
    expect(page.locator("#stop-btn")).to_be_hidden()             # not this browser's to stop: no dead button
    expect(page.locator("#start-btn")).to_be_disabled()
    expect(page.locator("#train-status")).to_contain_text("theirs")
    shoot(page, "theirs")
    assert "Stopping **theirs**" in actions.stop_training(served.ctx, None, "their-browser-key")
    expect(page.locator("#train-status")).to_contain_text("Stopped: theirs")
    expect(page.locator("#start-btn")).to_be_enabled()
    page.close()


# --- 3: overfitting, said beside the plot --------------------------------------------------------------
def test_overfitting_is_said_in_plain_words_beside_the_plot(browser, memorised):
    page = open_page(browser, memorised.url, DESKTOP)
    note = page.locator("#train-progress")
    expect(note).to_contain_text("learn the text by heart (overfitting)")
    expect(note).to_contain_text("the kept model is step 600's, the best one")
    expect(note).to_contain_text("more text, more dropout")
    expect(note).to_contain_text("Precision: bf16")
    page.wait_for_selector(KEPT_POINT, state="attached")
    assert shown(page, KEPT_POINT) and shown(page, VALIDATION_POINT)
    plot, beside = (page.locator(s).bounding_box() for s in ("#loss-plot", "#train-progress"))
    assert beside["x"] >= plot["x"] + plot["width"] - 1 and beside["y"] < plot["y"] + plot["height"]   # beside it
    shoot(page, "overfitting")
    page.close()


# --- 9: a phone ----------------------------------------------------------------------------------
def test_on_a_phone_the_samples_stack_and_the_timeline_fits_the_screen(browser, memorised):
    page = open_page(browser, memorised.url, PHONE)
    expect(page.locator("#earlier-samples table")).to_contain_text("honorificabilitudinitatibus")
    latest, earlier = (page.locator(s).bounding_box() for s in ("#latest-sample", "#earlier-samples"))
    assert earlier["y"] >= latest["y"] + latest["height"] - 1, "the earlier samples come below the latest one"
    table = page.locator("#earlier-samples table").bounding_box()
    assert table["x"] >= 0 and table["x"] + table["width"] <= PHONE["width"], "the timeline table is cut off"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#earlier-samples").scroll_into_view_if_needed()
    shoot(page, "phone")
    page.close()
