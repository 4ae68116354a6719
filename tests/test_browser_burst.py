"""Stop during a GPU burst, in Chromium: on an app whose Start trains in bursts (as on ZeroGPU; here on the CPU),
Stop is there while this page's burst trains, and ends it: Gradio cancels the event, the burst closes and saves,
and the run is stopped with its steps kept, ready for Resume."""
from __future__ import annotations

import pytest
from app_fixtures import TINY_TRAINING, corpus_text, launched
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect

from charrnn.runs.burst import training_now
from charrnn.runs.store import RunDir


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("checkpoints"), gpu_bursts=True, max_params=50_000) as served:
        yield served


def test_stop_ends_this_pages_burst_and_the_run_is_saved_for_resume(browser, served, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url)
    corpus = tmp_path / "phrases.txt"
    corpus.write_text(corpus_text(lines=20_000), encoding="utf-8")     # 20 passes take minutes
    page.get_by_text("Upload a .txt file", exact=True).click()
    page.set_input_files("#upload input[type=file]", str(corpus))
    expect(page.locator("#corpus-info")).to_contain_text("phrases.txt")
    for field in ("hidden", "seq_len", "batch_size", "lr"):
        page.locator(f"#{field.replace('_', '-')} input").fill(str(TINY_TRAINING[field]))
    page.locator("#burst-seconds input").fill("60")
    page.locator("#run-name textarea, #run-name input").first.fill("bursting")
    expect(page.locator("#stop-btn")).to_be_hidden()                     # nothing of ours trains yet
    page.click("#start-btn")
    expect(page.locator("#train-status")).to_contain_text("at step")      # training, a record came back
    run = RunDir(served.root / "bursting")
    assert training_now(run)
    page.click("#stop-btn")
    expect(page.locator("#train-message")).to_contain_text("Stopped: the burst saved its steps")
    expect(page.locator("#stop-btn")).to_be_hidden()
    expect(page.locator("#train-status")).to_contain_text("Stopped")
    status = run.status_as_written()
    assert status["state"] == "stopped" and not training_now(run)
    assert run.resume_step() == status["step"] == run.records()[-1]["step"] > 0
    page.screenshot(path=str(ARTIFACTS / "browser-burst-stopped.png"), full_page=True)
    page.close()
