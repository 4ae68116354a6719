"""webui.models: the checkpoints offered, resolving a picker value, and the model cache. No gradio: refusals are
UserError. Generating from them (webui.generation) is tested in test_generation.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
from app_fixtures import app_settings, corpus_text, make_checkpoint

from charrnn.model import CharRNN
from charrnn.runs.store import PROJECT_DIR, RunDir, read_header
from charrnn.vocab import Vocab
from webui.errors import UserError
from webui.models import (
    BUNDLED_KEY,
    ModelCache,
    checkpoint_signature,
    checkpoint_summaries,
    default_checkpoint,
    list_checkpoints,
    load_model,
    picked_checkpoint,
    resolve_checkpoint,
    run_directory,
)
from webui.owners import record_owner
from webui.settings import Settings


@pytest.fixture
def settings(tmp_path):
    return app_settings(tmp_path)


# --- the checkpoints offered --------------------------------------------------------------
def test_bundled_model_is_offered_when_the_checkpoints_folder_is_elsewhere(settings):
    make_checkpoint(settings.bundled, corpus_text())
    make_checkpoint(settings.root / "older", corpus_text())
    time.sleep(0.01)                                   # distinct file times, so "newest first" has an order
    make_checkpoint(settings.root / "newer", corpus_text())
    listed = list_checkpoints(settings)
    keys = [r["key"] for r in listed]
    assert keys[:2] == ["newer", "older"] and BUNDLED_KEY in keys
    assert next(r["label"] for r in listed if r["key"] == BUNDLED_KEY) == "shakespeare (bundled)"
    same = Settings(root=settings.bundled.parent, bundled=settings.bundled, data_dir=settings.data_dir)
    assert [r["key"] for r in list_checkpoints(same)] == ["shakespeare"]     # not listed twice


def test_a_training_run_is_labelled_so(settings):
    make_checkpoint(settings.root / "live", corpus_text())
    RunDir(settings.root / "live").write_status("running", pid=1)          # pid 1 is no trainer: reads interrupted
    assert [r["label"] for r in list_checkpoints(settings)] == ["live"]
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "charrnn", "train"])
    try:
        RunDir(settings.root / "live").write_status("running", pid=proc.pid)
        assert [r["label"] for r in list_checkpoints(settings)] == ["live (training)"]
    finally:
        proc.kill()
        proc.wait()


def test_the_default_checkpoint_is_the_newest_idle_run_else_the_bundled_model_else_a_training_run(settings):
    assert default_checkpoint(settings) is None
    make_checkpoint(settings.bundled, corpus_text())
    assert default_checkpoint(settings) == BUNDLED_KEY
    make_checkpoint(settings.root / "older", corpus_text())
    time.sleep(0.01)
    make_checkpoint(settings.root / "newer", corpus_text())
    os.utime(settings.bundled / RunDir.WEIGHTS)              # a bundled file touched later still comes after runs
    assert list_checkpoints(settings)[0]["key"] == BUNDLED_KEY and default_checkpoint(settings) == "newer"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "charrnn", "train"])
    try:
        RunDir(settings.root / "newer").write_status("running", pid=proc.pid)      # its checkpoint is still changing
        assert default_checkpoint(settings) == "older"
        RunDir(settings.root / "older").write_status("running", pid=proc.pid)
        assert default_checkpoint(settings) == BUNDLED_KEY
        shutil.rmtree(settings.bundled)
        assert default_checkpoint(settings) in ("newer", "older")            # only training runs: one of them
    finally:
        proc.kill()
        proc.wait()


def test_checkpoint_summaries_say_what_a_script_needs_to_pick_one(settings):
    make_checkpoint(settings.bundled, corpus_text(), step=20)
    path = make_checkpoint(settings.root / "run", corpus_text(), step=30, best_val_loss=1.25, best_step=25)
    RunDir(settings.root / "run").write_status("finished")
    run, bundled = checkpoint_summaries(settings)
    assert run == {"key": "run", "label": "run", "corpus": "tiny.txt", "corpus_chars": len(corpus_text()), "base": None,
                   "params": read_header(path)["params"], "bytes": path.stat().st_size, "cell": "lstm",
                   "layers": 1, "hidden": 16, "steps": 30, "kept_step": 25, "val_loss": 1.25, "state": "finished",
                   "default": True}
    assert bundled["key"] == BUNDLED_KEY and bundled["steps"] == bundled["kept_step"] == 20
    assert not bundled["default"] and bundled["val_loss"] == 2.5
    json.dumps(checkpoint_summaries(settings))                   # plain JSON for the API
    make_checkpoint(settings.root / "fresh", corpus_text(), best_val_loss=float("inf"))
    assert checkpoint_summaries(settings)[0]["val_loss"] is None  # no validation yet


def test_picker_values_resolve_only_to_checkpoints_the_app_offers(settings):
    path = make_checkpoint(settings.root / "tiny", corpus_text())
    assert resolve_checkpoint(settings, "tiny") == path
    assert run_directory(settings, BUNDLED_KEY) == settings.bundled
    assert run_directory(settings, "tiny") == settings.root / "tiny"
    for key, message in (("../../etc", "invalid run name"), ("nope", "no such checkpoint"),
                         (None, "No checkpoint chosen"), ("", "No checkpoint chosen"),
                         (BUNDLED_KEY, "no such checkpoint")):
        with pytest.raises(UserError, match=message):
            resolve_checkpoint(settings, key)
    with pytest.raises(UserError, match="invalid run name"):
        run_directory(settings, "a/b")


def test_a_new_run_is_picked_else_the_choice_stands_else_the_newest():
    assert picked_checkpoint(["new", "a", "b"], "a", ["a", "b"], {"new"}) == "new"
    assert picked_checkpoint(["new", "a", "b"], "a", ["a", "b"], set()) == "a"   # another visitor's: not followed
    assert picked_checkpoint(["a", "b"], "b", ["a", "b"]) == "b"
    assert picked_checkpoint(["a", "b"], "gone", ["a", "b"], default="b") == "b"
    assert picked_checkpoint(["a", "b"], None, [], {"a"}, default="b") == "b"   # a newcomer opens on the default
    assert picked_checkpoint([], None, []) is None


def test_the_default_checkpoint_is_the_callers_own_then_the_operators_then_the_bundled(tmp_path):
    settings = Settings(root=tmp_path / "runs", bundled=PROJECT_DIR / "checkpoints" / "shakespeare")
    assert default_checkpoint(settings, key="alice") == BUNDLED_KEY            # a newcomer on a fresh Space
    make_checkpoint(settings.root / "alices", corpus_text())
    record_owner(settings.root / "alices", "alice")
    assert default_checkpoint(settings, key="alice") == "alices"
    assert default_checkpoint(settings, key="bob") == BUNDLED_KEY              # never another visitor's run
    assert default_checkpoint(settings) == BUNDLED_KEY
    make_checkpoint(settings.root / "operators", corpus_text())                # from the CLI: no owner
    assert default_checkpoint(settings, key="bob") == "operators"
    assert default_checkpoint(settings, key="alice") == "alices"
    with_password = Settings(root=settings.root, bundled=settings.bundled, password="pw")
    assert default_checkpoint(with_password, key="bob") == "operators"         # newest of all: every run is theirs


def test_the_checkpoint_signature_changes_when_a_checkpoint_is_written(settings):
    assert checkpoint_signature(settings) == ()
    make_checkpoint(settings.root / "a", corpus_text())
    (settings.root / "no-weights").mkdir()
    first = checkpoint_signature(settings)
    assert [name for name, _ in first] == ["a"]
    time.sleep(0.01)
    make_checkpoint(settings.root / "a", corpus_text(), seed=1)
    assert checkpoint_signature(settings) != first


# --- loading ----------------------------------------------------------------------------
def test_model_cache_reloads_a_rewritten_checkpoint_and_stays_bounded(settings):
    cache = ModelCache(size=2)
    path = make_checkpoint(settings.root / "a", corpus_text(), seed=0)
    first = cache.get(path)
    assert cache.get(path) is first
    time.sleep(0.01)
    make_checkpoint(settings.root / "a", corpus_text(), seed=1)
    second = cache.get(path)
    assert second is not first and not torch.equal(first[0].head.weight, second[0].head.weight)
    assert len(cache.lru) == 1                                          # the older version is dropped
    for name in ("b", "c"):
        cache.get(make_checkpoint(settings.root / name, corpus_text()))
    assert len(cache.lru) == 2 and all(key[0] != str(path) for key in cache.lru.items)


def test_load_model_names_the_exact_checkpoint_file(settings):
    path = make_checkpoint(settings.root / "tiny", corpus_text())
    cache = ModelCache()
    model, vocab, key = load_model(settings, cache, "tiny")
    assert isinstance(model, CharRNN) and vocab.chars == Vocab.from_text(corpus_text()).chars
    assert key == (str(path), path.stat().st_mtime_ns)


def test_a_corrupt_checkpoint_is_refused_not_a_traceback(settings):
    (settings.root / "broken").mkdir(parents=True)
    (settings.root / "broken" / RunDir.WEIGHTS).write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        load_model(settings, ModelCache(), "broken")             # generating from it: test_generation.py


def test_a_checkpoint_gone_from_the_disk_is_refused(settings):
    path = make_checkpoint(settings.root / "tiny", corpus_text())
    path.unlink()
    with pytest.raises(UserError, match="gone"):
        ModelCache().get(path)
