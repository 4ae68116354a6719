"""Taking a model away and back, and comparing runs, in a real browser: Debian's Chromium driven by Playwright (never
`playwright install`). A run trained on an uploaded text is downloaded, deleted, added back from its .safetensors
file, and generates the same text for the same seed; two runs share one plot; bad model files are refused with a
clear message and leave the checkpoints folder as it was. Screenshots go to test-artifacts/ (gitignored)."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import torch
from app_fixtures import TINY_TRAINING, corpus_text, launched, make_checkpoint, wait_for
from browser_fixtures import ARTIFACTS, TIMEOUT_MS, chromium
from playwright.sync_api import expect
from safetensors.torch import save_file

from charrnn.runs.store import RunDir
from webui.owners import record_owner

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    # a small cap on the models the app trains, so an oversized model file is cheap to make (cap ~1.2 MiB)
    with launched(tmp_path_factory.mktemp("checkpoints"), max_params=50_000) as served:
        yield served


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url)
    page.wait_for_selector("#start-btn")
    yield page
    page.close()


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


def open_transfer(page) -> None:
    page.get_by_role("tab", name="Generate").click()
    page.wait_for_selector("#generate-btn")
    page.get_by_text("Take your model with you").click()
    page.wait_for_selector("#download-btn")


def generated(page, prime: str, length: int, seed: int) -> str:
    """The text the page generates (the output box must not hold a text of that length before)."""
    page.locator("#prime textarea").fill(prime)
    page.locator("#length input[type=number]").fill(str(length))
    page.locator("#seed input").fill(str(seed))
    page.locator("#seed input").press("Tab")
    page.click("#generate-btn")
    expect(page.locator("#output textarea")).to_have_value(re.compile(rf"^{re.escape(prime)}[\s\S]{{{length}}}$"))
    return page.locator("#output textarea").input_value()


def add_model_file(page, path: Path) -> None:
    clear = page.locator("#model-file button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.set_input_files("#model-file input[type=file]", str(path))


def test_a_trained_run_is_downloaded_deleted_added_back_and_generates_the_same_text(page, served, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    corpus = tmp_path / "phrases.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    page.get_by_text("Upload a .txt file", exact=True).click()
    page.set_input_files("#upload input[type=file]", str(corpus))
    expect(page.locator("#corpus-info")).to_contain_text("phrases.txt")
    t = TINY_TRAINING
    for field, value in (("hidden", t["hidden"]), ("seq-len", t["seq_len"]), ("batch-size", t["batch_size"]),
                         ("lr", t["lr"]), ("iterations", 150), ("minutes", 0)):
        page.locator(f"#{field} input").fill(str(value))
    page.locator("#run-name textarea, #run-name input").first.fill("trip")
    page.click("#start-btn")
    expect(page.locator("#train-status")).to_contain_text("Finished: trip")

    open_transfer(page)
    expect(page.locator("#checkpoint input")).to_have_value("trip")                  # the new run is picked
    before = generated(page, "the ", 200, 7)

    page.click("#download-btn")
    links = page.locator("#download-files a")
    expect(links).to_have_count(2)
    saved = {}
    for name in ("trip.zip", "trip.safetensors"):
        with page.expect_download() as info:
            page.locator(f"#download-files a[download='{name}']").click()
        saved[name] = tmp_path / name
        info.value.save_as(saved[name])
    with zipfile.ZipFile(saved["trip.zip"]) as z:
        assert {f"trip/{n}" for n in (RunDir.WEIGHTS, RunDir.META, RunDir.METRICS, "loss.png")} <= set(z.namelist())
        assert z.read(f"trip/{RunDir.WEIGHTS}") == saved["trip.safetensors"].read_bytes()
    page.screenshot(path=str(ARTIFACTS / "browser-transfer-download.png"), full_page=True)

    page.click("#delete-btn")
    expect(page.locator("#confirm-delete-btn")).to_have_text("Yes, delete trip")
    assert (served.root / "trip").is_dir()                                            # asking deletes nothing
    page.click("#confirm-delete-btn")
    expect(page.locator("#transfer-message")).to_contain_text("Deleted trip")
    assert not (served.root / "trip").exists()
    expect(page.locator("#checkpoint input")).not_to_have_value("trip")              # the picker lets it go
    expect(page.locator("#confirm-delete-btn")).to_be_hidden()

    add_model_file(page, saved["trip.safetensors"])
    expect(page.locator("#model-file")).to_contain_text("trip.safetensors")
    page.click("#add-model-btn")
    expect(page.locator("#transfer-message")).to_contain_text("Added trip")
    expect(page.locator("#checkpoint input")).to_have_value("trip")                  # and picks it when it is back
    assert RunDir(served.root / "trip").status()["state"] == "uploaded"
    generated(page, "the ", 50, 7)                               # so the next text is the added-back model's
    assert generated(page, "the ", 200, 7) == before
    page.screenshot(path=str(ARTIFACTS / "browser-transfer-added-back.png"), full_page=True)


def choose_model(page, label: str) -> None:
    page.locator("#checkpoint input").click()
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.locator("#checkpoint input")).to_have_value(label)


def test_delete_is_offered_only_where_it_can_work_and_a_refusal_is_a_plain_line(page, served):
    make_checkpoint(served.root / "theirs", corpus_text())
    record_owner(served.root / "theirs", "another-browsers-key")
    make_checkpoint(served.root / "operators", corpus_text(), seed=1)          # no owner: anyone's (no password)
    open_transfer(page)
    delete = page.locator("#delete-btn")
    choose_model(page, "shakespeare (bundled)")
    expect(delete).to_be_hidden()                                              # never for the bundled model
    choose_model(page, "theirs")
    expect(delete).to_be_hidden()                                              # nor for another visitor's run
    choose_model(page, "operators")
    expect(delete).to_be_visible()
    page.click("#delete-btn")
    expect(page.locator("#confirm-delete-btn")).to_have_text("Yes, delete operators")
    record_owner(served.root / "operators", "another-browsers-key")            # it changes hands meanwhile
    page.click("#confirm-delete-btn")
    message = page.locator("#transfer-message")
    expect(message).to_contain_text("Only the browser that started or added operators can delete it")
    expect(message).to_contain_text("Nothing was deleted")
    assert "**" not in message.inner_text() and (served.root / "operators").is_dir()
    expect(message.get_by_text("Error", exact=True)).to_have_count(0)          # no error badge over the line
    expect(page.locator(".toast-body")).to_have_count(0)                       # and no toast
    expect(page.locator("#confirm-delete-btn")).to_be_hidden()
    choose_model(page, "theirs")
    choose_model(page, "operators")
    expect(delete).to_be_hidden()                                              # it is theirs now
    page.screenshot(path=str(ARTIFACTS / "browser-transfer-delete-refused.png"), full_page=True)


def test_with_a_password_delete_is_offered_for_any_run_and_a_wrong_password_is_refused_at_once(browser, tmp_path):
    with launched(tmp_path / "checkpoints", password="sesame") as locked:
        make_checkpoint(locked.root / "theirs", corpus_text())
        record_owner(locked.root / "theirs", "another-browsers-key")
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(locked.url)
            page.wait_for_selector("#start-btn")
            open_transfer(page)
            choose_model(page, "theirs")
            expect(page.locator("#delete-btn")).to_be_visible()
            page.locator("#transfer-password input").fill("wrong")
            page.click("#delete-btn")
            expect(page.locator("#transfer-message")).to_contain_text("need the password")
            expect(page.locator("#confirm-delete-btn")).to_be_hidden()             # refused at the first click
            page.locator("#transfer-password input").fill("sesame")
            page.click("#delete-btn")
            page.click("#confirm-delete-btn")
            expect(page.locator("#transfer-message")).to_contain_text("Deleted theirs")
            assert not (locked.root / "theirs").exists()
        finally:
            page.close()


def fake_run(root: Path, name: str, losses: list[float], batch: int) -> None:
    make_checkpoint(root / name, corpus_text(), step=10 * len(losses),
                    train_config={"batch_size": batch, "seq_len": 32, "lr": 0.004, "iterations": 10 * len(losses)})
    for i, loss in enumerate(losses, 1):
        RunDir(root / name).append_metrics({"step": 10 * i, "train_loss": loss, "val_loss": loss})


CURVES = "#compare-plot g.mark-line path"


def test_two_runs_are_compared_on_one_plot_by_step_and_by_characters(page, served):
    ARTIFACTS.mkdir(exist_ok=True)
    fake_run(served.root, "narrow", [3.0, 2.6, 2.3, 2.1], batch=8)
    fake_run(served.root, "wide", [2.9, 2.3, 2.0], batch=32)
    page.get_by_text("5. Compare runs").click()
    for run in ("narrow", "wide"):
        page.locator("#compare-runs input").click()
        page.get_by_role("option", name=run, exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_function(f"[...document.querySelectorAll('{CURVES}')]"
                           ".filter(p => (p.getAttribute('d') || '').length > 10).length >= 2", timeout=TIMEOUT_MS)
    expect(page.locator("#compare-plot")).to_contain_text("narrow")                  # both in the legend
    expect(page.locator("#compare-plot")).to_contain_text("wide")
    expect(page.locator("#compare-table")).to_contain_text("8 × 32")
    expect(page.locator("#compare-table")).to_contain_text("32 × 32")
    by_step = page.locator(CURVES).first.get_attribute("d")
    page.locator("#compare-runs-section").screenshot(path=str(ARTIFACTS / "browser-compare-step.png"))
    page.get_by_label("characters seen").check()
    expect(page.locator("#compare-plot")).to_contain_text("characters seen")
    page.wait_for_function(f"(d) => document.querySelector('{CURVES}').getAttribute('d') !== d", arg=by_step,
                           timeout=TIMEOUT_MS)                                          # redrawn on the new axis
    page.locator("#compare-runs-section").screenshot(path=str(ARTIFACTS / "browser-compare-chars.png"))


class Planted:
    def __reduce__(self):
        return (print, ("unpickled",))


def bad_model_files(folder: Path, good: Path) -> list[tuple[Path, str]]:
    """Each bad model file, and what the page must say about it."""
    folder.mkdir()
    notes = folder / "notes.txt"
    notes.write_text("not a model", encoding="utf-8")
    pickle = folder / "pickled.safetensors"
    torch.save({"weights": Planted()}, pickle)
    truncated = folder / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-200])
    foreign = folder / "foreign.safetensors"
    save_file({"encoder.weight": torch.zeros(8, 8)}, str(foreign), metadata={"format": "pt"})
    big = folder / "big.safetensors"
    big.write_bytes(good.read_bytes() + b"\0" * (2 << 20))
    huge = folder / "huge.safetensors"
    huge.write_bytes(b"\0" * (11 << 20))
    return [(notes, "Only .safetensors allowed"),
            (pickle, "pickled.safetensors is not a safetensors file"),
            (truncated, "truncated.safetensors is cut short"),
            (foreign, "foreign.safetensors is a safetensors file, but not a charrnn model"),
            (big, "big.safetensors is 2.0 MiB; the app takes models up to 1.2 MiB"),
            (huge, "exceed the maximum allowed size")]


def test_bad_model_files_get_a_clear_message_and_nothing_is_written(page, served, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    good = make_checkpoint(tmp_path / "good", corpus_text())
    bad = bad_model_files(tmp_path / "bad", good)
    open_transfer(page)
    wait_for(lambda: page.locator("#checkpoint input").input_value(), what="the picker to fill")
    before = tree(served.root)
    for path, message in bad:
        add_model_file(page, path)
        page.click("#add-model-btn")
        expect(page.locator(".toast-body", has_text=message).first).to_be_visible()
        assert tree(served.root) == before, path.name
    page.screenshot(path=str(ARTIFACTS / "browser-transfer-bad-uploads.png"), full_page=True)
