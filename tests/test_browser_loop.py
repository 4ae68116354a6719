"""A whole training run in the page (webui/train/static/loop.js with trainer.js, session.js, weights.js), in
Chromium: records as charrnn's trainer writes them, the loss falling, checks on the held-out part, the kept model
(the best check) written as charrnn's file that loads through its full check and whose validation loss torch
computes as the page did; Stop ends a run at the next step with its kept model."""
from __future__ import annotations

import base64
import math

import pytest
from app_fixtures import corpus_text
from browser_fixtures import script_page

from charrnn.data import Corpus
from charrnn.runs.store import PROJECT_DIR, load_checkpoint
from charrnn.train import evaluate

STATIC = PROJECT_DIR / "webui" / "train" / "static"
SCRIPTS = ("trainer.js", "session.js", "weights.js", "loop.js")
CFG = dict(embed=8, hidden=16, layers=1, dropout=0.0, input_dropout=0.0, batch_size=4, seq_len=16, lr=0.01,
           warmup=5, decay="cosine", min_lr_ratio=0.1, weight_decay=0.0, grad_clip=1.0, seconds=0, max_epochs=2,
           eval_every=20, eval_chars=0, patience=0, log_every=5, seed=3, name="in-page")
RUN = """async ([text, cfg, stopAfter]) => {
  const seen = [];
  const records = () => seen.filter((m) => m.type === "record").length;
  const done = await CharrnnLoop.run(text, cfg, {post: (m) => seen.push(m), stopped: () => records() >= stopAfter});
  const bytes = CharrnnWeights.safetensors(done.tensors, done.header);
  let s = ""; for (const b of bytes) s += String.fromCharCode(b);
  return {records: seen.filter((m) => m.type === "record"), models: seen.filter((m) => m.type === "model").length,
          end: done.end, reason: done.reason, header: done.header, file: btoa(s)};
}"""


@pytest.fixture(scope="module")
def page():
    yield from script_page(*(STATIC / name for name in SCRIPTS))


def test_a_run_in_the_page_learns_keeps_its_best_and_leaves_a_file_charrnn_loads(page, tmp_path):
    text = corpus_text(60)
    out = page.evaluate(RUN, [text, CFG, 10**9])
    records = out["records"]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)) and out["end"] == "finished"
    train = Corpus.from_text(text).train
    assert records[-1]["chars_seen"] >= CFG["max_epochs"] * len(train)           # ended by its passes
    checks = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in checks[:-1]] == list(range(20, 20 * len(checks), 20))
    assert checks[-1]["val_loss"] < checks[0]["val_loss"] < math.log(len(set(text)))      # it learns
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    best = min(checks, key=lambda r: r["val_loss"])
    assert out["header"]["best_step"] == best["step"] and out["header"]["best_val_loss"] == best["val_loss"]
    assert out["models"] == len(checks)                                           # the page may sample each check
    measured = records[0]["kernels"]                     # measured on the run's first batch, the faster one kept
    assert set(measured["chars_per_s"]) == {"JavaScript", "WebAssembly"}
    assert measured["chose"] == max(measured["chars_per_s"], key=measured["chars_per_s"].get)
    assert all("kernels" not in r for r in records[1:])

    path = tmp_path / "in-page.safetensors"
    path.write_bytes(base64.b64decode(out["file"]))
    model, vocab, header = load_checkpoint(path)
    assert header["step"] == best["step"] and vocab.chars == sorted(set(text))
    corpus = Corpus.from_text(text, vocab)
    torch_val = evaluate(model, corpus.val, CFG["seq_len"], CFG["batch_size"], CFG["eval_chars"])
    assert torch_val == pytest.approx(best["val_loss"], rel=1e-5)     # the kept model is the one that was checked


def test_stop_ends_the_run_at_the_next_step_with_its_kept_model(page, tmp_path):
    out = page.evaluate(RUN, [corpus_text(60), {**CFG, "max_epochs": 50}, 5])
    assert out["end"] == "stopped" and out["reason"] == "Stop was pressed"
    assert out["records"][-1]["step"] <= 5 * CFG["log_every"] + 1 and out["records"][-1]["end"] == "stopped"
    path = tmp_path / "stopped.safetensors"
    path.write_bytes(base64.b64decode(out["file"]))
    assert load_checkpoint(path)[2]["best_step"] == out["records"][-1]["step"]      # checked as it ended


@pytest.mark.parametrize("seconds, chosen", [(2, 128), (10**5, 384)])
def test_auto_sizes_the_model_by_the_steps_it_measures_it_can_train_in_the_budget(page, seconds, chosen):
    """hidden "auto": the largest size whose step, timed here as the run starts, fits MIN_STEPS steps in the time
    (2 s: none does, so the smallest; a day: the largest)."""
    out = page.evaluate(RUN, [corpus_text(20), {**CFG, "hidden": "auto", "seconds": seconds, "max_epochs": 0.2,
                                                "eval_every": 5}, 10**9])
    sizing = out["records"][0]["sizing"]
    sizes, least = page.evaluate("[CharrnnLoop.SIZES, CharrnnLoop.MIN_STEPS]")
    assert sizing["hidden"] == chosen == out["header"]["model_config"]["hidden"] and sizing["auto"]
    tried = sorted((int(h) for h in sizing["tried"]), reverse=True)
    assert tried == sizes[:sizes.index(chosen) + 1]                          # largest first, stopping at the fit
    for h in tried[:-1]:
        assert sizing["tried"][str(h)]["steps_in_budget"] < least
    assert chosen == sizes[-1] or sizing["tried"][str(chosen)]["steps_in_budget"] >= least
