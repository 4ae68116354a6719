"""The app's handlers, called in-process (no server): validation, the one-job lock, following a run, generation."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import gradio as gr
import pytest
import torch
from app_fixtures import TINY_TRAINING, corpus_text, is_prefix_chain, kill_trainers, make_checkpoint, wait_for

import app
from charrnn import checkpoint as ck
from charrnn.data import min_corpus_chars
from charrnn.model import CharRNN, ModelConfig
from charrnn.presets import PRESETS
from charrnn.runner import build_corpus


@pytest.fixture
def settings(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "tiny.txt").write_text(corpus_text(), encoding="utf-8")
    return app.Settings(root=(tmp_path / "ckpts").resolve(), bundled=tmp_path / "bundled" / "shakespeare",
                        data_dir=data)


@pytest.fixture
def slot(settings):
    slot = app.JobSlot()
    yield slot
    kill_trainers(settings.root, slot)


@pytest.fixture
def fake_trainer(settings):
    """A sleeping process that looks like a trainer (charrnn on its command line), and a run whose status names it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "charrnn"],
                            start_new_session=True)
    directory = settings.root / "busy"
    directory.mkdir(parents=True)
    ck.write_status(directory, "running", pid=proc.pid, iterations=100, minutes=0)
    yield proc
    proc.kill()
    proc.wait()


def start(settings, slot, **changes):
    kwargs = dict(password=None, source="paste", bundled_name=None, upload=None, pasted=corpus_text(),
                  run_name="tiny", **TINY_TRAINING)
    return app.start_training(settings, slot, **{**kwargs, **changes})


def records(n: int, every: int = 10) -> list[dict]:
    out = []
    for i in range(1, n + 1):
        rec = {"step": i * every, "train_loss": 4.0 / i, "chars_per_s": 1000.0, "elapsed": float(i), "progress": i / n}
        if i % 10 == 0:
            rec |= {"val_loss": 4.2 / i, "val_bpc": 4.2 / i / math.log(2), "sample": f"sample <{i}>"}
        out.append(rec)
    return out


# --- following a run ------------------------------------------------------------------
def test_loss_frame_is_typed_thinned_and_keeps_the_ends():
    frame = app.loss_frame(records(2000) + [{"step": 20010, "train_loss": float("nan")}])
    assert {str(t) for t in frame.dtypes} >= {"int64", "float64"}
    train = frame[frame.split == "train"]
    val = frame[frame.split == "validation"]
    assert len(train) == app.PLOT_POINTS[0] and len(val) == app.PLOT_POINTS[1]
    assert train.step.iloc[0] == 10 and train.step.iloc[-1] == 20000      # NaN dropped, ends kept
    assert frame.loss.notna().all()


def test_plot_gets_nothing_before_the_first_loss_and_both_splits_after():
    assert app.plot_value([]) is None                          # not an empty frame: it would never draw
    assert app.loss_frame([]).dtypes["step"] == "int64"
    early = app.plot_value(records(3))                          # train losses only, so far
    assert set(early.split) == {"train", "validation"}
    assert early[early.split == "validation"].loss.isna().all() and early.dtypes["loss"] == "float64"
    assert len(app.plot_value(records(30))) == len(app.loss_frame(records(30)))


def test_samples_are_listed_oldest_first_escaped_and_the_latest_shown_apart():
    recs = records(50)
    html = app.samples_html(recs)
    assert html.index("step 100<") < html.index("step 200<")
    assert "&lt;10&gt;" in html and "<10>" not in html
    assert "sample <50>" not in html                          # the latest is in its own box
    latest = app.latest_sample(recs)
    assert latest["value"] == "sample <50>" and "step 500" in latest["label"]


def test_progress_line_gives_step_total_speed_and_eta_while_running():
    line = app.progress_line(records(10)[:5], {"state": "running", "iterations": 200})
    assert "step **50** / 200" in line and "1,000 chars/s" in line and "ETA" in line
    done = app.progress_line(records(20), {"state": "finished"})
    assert "ETA" not in done and "validation loss" in done


# --- corpus ---------------------------------------------------------------------------
def test_bundled_corpus_is_described_with_size_and_characters(settings):
    line, stats = app.describe_corpus(settings, "bundled", "tiny.txt", None, None)
    text = corpus_text()
    assert f"{len(text):,} characters" in line and stats == {"chars": len(text), "distinct": len(set(text))}


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01binary\x00", "binary"),
    (b"caf\xe9 au lait", "not valid UTF-8"),
])
def test_bad_uploads_are_refused_with_the_reason(settings, tmp_path, content, message):
    path = tmp_path / "upload.txt"
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        app.read_corpus(settings, "upload", None, str(path), None)
    line, stats = app.describe_corpus(settings, "upload", None, str(path), None)
    assert message in line and stats is None


def test_oversized_upload_and_paste_are_refused_naming_the_limit(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "MAX_CORPUS_BYTES", 1000)
    path = tmp_path / "big.txt"
    path.write_text("a" * 2000)
    with pytest.raises(gr.Error, match="limit"):
        app.read_corpus(settings, "upload", None, str(path), None)
    with pytest.raises(gr.Error, match="limit"):
        app.read_corpus(settings, "paste", None, None, "a" * 2000)


@pytest.mark.parametrize("source, bundled, pasted, message", [
    ("paste", None, "   ", "Paste some text"),
    ("upload", None, None, "Upload a .txt"),
    ("bundled", "../etc/passwd", None, "No bundled corpus"),
    ("ftp", None, None, "Unknown corpus source"),
])
def test_missing_or_unknown_corpus_choices_are_refused(settings, source, bundled, pasted, message):
    with pytest.raises(gr.Error, match=message):
        app.read_corpus(settings, source, bundled, None, pasted)


# --- configuration --------------------------------------------------------------------
def test_preset_fields_fill_the_form_from_presets():
    for name, (model_kw, train_kw) in PRESETS.items():
        hidden, layers, seq_len, batch, lr, *_ = app.preset_fields(name)
        assert (hidden, layers, seq_len, batch, lr) == (model_kw["hidden"], model_kw["layers"], train_kw["seq_len"],
                                                        train_kw["batch_size"], train_kw["lr"])


def test_parameter_count_is_that_of_the_model_built_from_the_config():
    line = app.describe_model({"chars": 5000, "distinct": 30}, "quick", 96, 2, 32, 8, 0.01, 0, 1.0)
    expected = CharRNN(ModelConfig(vocab_size=30, embed=PRESETS["quick"][0]["embed"], hidden=96, layers=2))
    assert f"**{expected.num_params():,} parameters**" in line


@pytest.mark.parametrize("changes, message", [
    (dict(hidden=0), "hidden=0 is out of range; allowed 1 to 4096"),
    (dict(layers=9), "allowed 1 to 8"),
    (dict(lr=5.0), "lr=5.0 is out of range"),
    (dict(seq_len=-3), "seq_len=-3 is out of range"),
    (dict(iterations=0, minutes=0), "iterations > 0 or minutes > 0"),
    (dict(preset="huge"), "Unknown preset"),
    (dict(batch_size=4096, seq_len=4096), "characters per batch"),
    (dict(hidden=4096, layers=8), "at most 20,000,000"),
])
def test_out_of_range_settings_are_refused_before_spawning(settings, slot, changes, message):
    with pytest.raises(gr.Error, match=message):
        start(settings, slot, **changes)
    assert slot.proc is None and not (settings.root / "tiny").exists()


def test_too_short_corpus_is_refused_naming_the_minimum(settings, slot):
    with pytest.raises(gr.Error, match=f"at least {min_corpus_chars(32, 0.1)} are needed"):
        start(settings, slot, pasted="too short for training", seq_len=32)
    assert slot.proc is None


def test_invalid_run_names_and_existing_runs_are_refused(settings, slot):
    with pytest.raises(gr.Error, match="invalid run name"):
        start(settings, slot, run_name="../escape")
    make_checkpoint(settings.root / "taken", corpus_text())
    with pytest.raises(gr.Error, match="already exists"):
        start(settings, slot, run_name="taken")


def test_training_controls_need_the_password_when_one_is_set(settings, slot):
    settings.password = "s3cret"
    for call in (lambda pw: start(settings, slot, password=pw), lambda pw: app.stop_training(settings, slot, pw),
                 lambda pw: app.resume_training(settings, slot, pw, "x", 0, 0)):
        with pytest.raises(gr.Error, match="password"):
            call("wrong")
    with pytest.raises(gr.Error, match="No training run is in progress"):
        app.stop_training(settings, slot, "s3cret")        # right password: past the check


# --- the one-job lock -----------------------------------------------------------------
def test_a_second_start_is_refused_while_a_trainer_runs(settings, slot, fake_trainer):
    assert app.active_job(settings, slot) == {"name": "busy", "pid": fake_trainer.pid}
    with pytest.raises(gr.Error, match="in progress: busy"):
        start(settings, slot)
    view = app.poll(settings, slot, {}, None, None)
    assert "**Training** busy" in view[4]                     # the refused tab is shown the running job


def test_stale_running_status_or_a_reused_pid_does_not_block(settings, slot):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name, pid in (("dead", 2**22 + 12345), ("reused", other.pid)):
            (settings.root / name).mkdir(parents=True)
            ck.write_status(settings.root / name, "running", pid=pid)
        assert app.active_job(settings, slot) is None
        assert app.run_state(settings, slot, "reused")["state"] == "interrupted"
    finally:
        other.kill()
        other.wait()


def test_stop_sends_sigterm_to_the_running_trainer(settings, slot, fake_trainer):
    message = app.stop_training(settings, slot, None)
    assert "Stopping **busy**" in message
    assert fake_trainer.wait(timeout=30) == -signal.SIGTERM


def test_a_killed_trainer_leaves_its_run_interrupted_and_the_app_serving(settings, slot):
    message = start(settings, slot)
    assert "Started run **tiny**" in message
    assert (settings.root / "tiny" / "corpus.txt").read_text(encoding="utf-8") == corpus_text()
    wait_for(lambda: app.run_state(settings, slot, "tiny")["state"] == "running", what="the trainer to run")
    with pytest.raises(gr.Error, match="in progress: tiny"):
        start(settings, slot, run_name="second")
    os.killpg(slot.proc.pid, signal.SIGKILL)
    slot.proc.wait(timeout=30)
    assert app.active_job(settings, slot) is None
    plot, _, _, _, status, *_ = app.poll(settings, slot, {}, None, None)
    assert status.startswith("**Interrupted**: tiny")
    assert "train.log" not in status and (settings.root / "tiny" / "train.log").exists()


def test_a_trainer_that_fails_at_start_up_shows_its_error(settings, slot, monkeypatch):
    # let a too-short text past the app's check, so that the trainer itself refuses it
    monkeypatch.setattr(app, "build_corpus", lambda text, cfg: build_corpus(corpus_text(), cfg))
    start(settings, slot, pasted="short")
    slot.proc.wait(timeout=60)
    status = app.poll(settings, slot, {}, None, None)[4]
    assert "ended before training began (exit status 2)" in status and "error:" in status


# --- resume ---------------------------------------------------------------------------
def test_resume_budget_counts_from_what_the_run_has_done():
    header = {"step": 300, "elapsed": 120.0, "train_config": {"iterations": 300, "minutes": 0.0}}
    assert app.budget_args(header, 200, 0) == ["--iterations", "500", "--minutes", "0"]
    assert app.budget_args(header, 0, 1.5) == ["--minutes", "3.5", "--iterations", "0"]
    with pytest.raises(gr.Error, match="whole budget"):
        app.budget_args(header, 0, 0)
    stopped = {**header, "step": 100}
    assert app.budget_args(stopped, 0, 0) == []
    with pytest.raises(gr.Error, match="more minutes must be"):
        app.budget_args(header, 0, -1)


def test_only_runs_with_their_optimizer_state_can_be_resumed(settings, slot):
    make_checkpoint(settings.root / "no-state", corpus_text())
    assert app.resumable_runs(settings.root) == []
    with pytest.raises(gr.Error, match="No resumable run"):
        app.resume_training(settings, slot, None, "no-state", 10, 0)


# --- checkpoints and generation ---------------------------------------------------------
def test_bundled_model_is_offered_when_the_checkpoints_folder_is_elsewhere(settings):
    make_checkpoint(settings.bundled, corpus_text())
    make_checkpoint(settings.root / "older", corpus_text())
    time.sleep(0.01)
    make_checkpoint(settings.root / "newer", corpus_text())
    keys = [r["key"] for r in app.list_checkpoints(settings)]
    assert keys[:2] == ["newer", "older"] and app.BUNDLED_KEY in keys
    same = app.Settings(root=settings.bundled.parent.resolve(), bundled=settings.bundled, data_dir=settings.data_dir)
    assert [r["key"] for r in app.list_checkpoints(same)] == ["shakespeare"]     # not listed twice


def test_checkpoint_is_described_from_its_header(settings):
    make_checkpoint(settings.root / "tiny", corpus_text(), step=1234)
    line = app.describe_checkpoint(settings, "tiny")
    assert "tiny.txt" in line and "1,234 steps" in line and "validation loss 2.500" in line
    assert "parameters" in line


def test_poll_skips_what_did_not_change_and_selects_a_new_run(settings, slot):
    make_checkpoint(settings.root / "first", corpus_text())
    first = app.poll(settings, slot, {}, None, None)
    assert first[5]["value"] == "first"
    again = app.poll(settings, slot, first[-1], "first", None)
    assert all(out == gr.skip() for out in again[:-1])
    make_checkpoint(settings.root / "second", corpus_text())
    third = app.poll(settings, slot, again[-1], "first", None)
    assert third[5]["value"] == "second" and [c[1] for c in third[5]["choices"]][0] == "second"


def generated(settings, key="tiny", prime="the ", temperature=0.8, length=100, top_k=0, seed=1):
    return list(app.generate_text(settings, app.ModelCache(), key, prime, temperature, length, top_k, seed))


def test_generation_streams_growing_text_of_the_asked_length(settings):
    make_checkpoint(settings.root / "tiny", corpus_text())
    texts = generated(settings, length=100)
    assert len(texts) >= 100 // app.STREAM_EVERY and is_prefix_chain(texts)
    assert texts[0] == "the " and len(texts[-1]) == 4 + 100
    assert generated(settings, seed=7) == generated(settings, seed=7)


def test_unknown_prime_characters_are_folded_or_dropped_with_a_warning(settings):
    make_checkpoint(settings.root / "tiny", corpus_text())
    with pytest.warns(UserWarning, match="does not know 'é', '€'"):
        texts = generated(settings, prime="the café€ ", length=20)
    assert texts[0] == "the cafe "               # é folds to e; € folds to EUR, not in the vocabulary: dropped


@pytest.mark.parametrize("changes, message", [
    (dict(temperature=-0.1), "Temperature must be"),
    (dict(temperature=float("nan")), "Temperature must be"),
    (dict(temperature=2.5), "from 0 to 2"),
    (dict(temperature="hot"), "Temperature must be"),
    (dict(length=0), "Length must be a whole number from 1 to 5,000"),
    (dict(length=10**9), "Length must be"),
    (dict(length=2.5), "Length must be"),
    (dict(top_k=-1), "Top-k must be"),
    (dict(top_k=500), "Top-k must be from 1 to"),
    (dict(seed=-5), "Seed must be"),
    (dict(prime="x" * 20_000), "at most 10,000"),
    (dict(key="../../etc"), "invalid run name"),
    (dict(key="nope"), "no such checkpoint"),
    (dict(key=None), "No checkpoint chosen"),
    (dict(key=app.BUNDLED_KEY), "no such checkpoint"),
])
def test_bad_generation_requests_are_refused_with_a_clear_message(settings, changes, message):
    make_checkpoint(settings.root / "tiny", corpus_text())
    with pytest.raises(gr.Error, match=message):
        generated(settings, **changes)


def test_a_corrupt_checkpoint_is_refused_not_a_traceback(settings):
    (settings.root / "broken").mkdir(parents=True)
    (settings.root / "broken" / ck.WEIGHTS).write_bytes(b"not a safetensors file")
    with pytest.raises(gr.Error, match="not a readable safetensors file"):
        generated(settings, key="broken")
    assert "⚠️" in app.describe_checkpoint(settings, "broken")


def test_model_cache_reloads_a_rewritten_checkpoint_and_stays_bounded(settings):
    cache = app.ModelCache(size=2)
    path = make_checkpoint(settings.root / "a", corpus_text(), seed=0)
    first = cache.get(path)
    assert cache.get(path) is first
    time.sleep(0.01)
    make_checkpoint(settings.root / "a", corpus_text(), seed=1)
    second = cache.get(path)
    assert second is not first and not torch.equal(first[0].head.weight, second[0].head.weight)
    for name in ("b", "c"):
        cache.get(make_checkpoint(settings.root / name, corpus_text()))
    assert len(cache.items) == 2 and all(key[0] != str(path) for key in cache.items)
