"""auto's start: the base model where a probe on the run's own held-out split says it knows the text, else zero;
the header and the first record say which and why; set sizes, no base or a refusing base mean zero."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.runs import startpoint
from charrnn.runs.runner import Run
from charrnn.runs.store import RunDir, read_header
from charrnn.runs.weights import read_weights_header

BASE_TEXT = "the quick brown fox jumps over the lazy dog.\n" * 60
LIKE_BASE = "the lazy dog jumps over the quick brown fox.\n" * 60
UNLIKE = "".join(chr(0x0410 + (i * 7919) % 32) for i in range(2700))     # Cyrillic the base never read, no pattern
TINY = dict(batch_size=4, seq_len=16, iterations=12, warmup=2, eval_every=6, sample_every=1000,
            checkpoint_every=6, log_every=3, eval_chars=500, device="cpu", lr=0.02)


@pytest.fixture
def base(tmp_path, monkeypatch):
    data = tmp_path / "base.txt"
    data.write_text(BASE_TEXT, encoding="utf-8")
    run = Run.create(tmp_path / "runs" / "base", data, ModelConfig(vocab_size=1, embed=8, hidden=32),
                     TrainConfig(**{**TINY, "iterations": 150}))
    list(run.train())
    monkeypatch.setenv("CHARRNN_BASE_MODEL", str(run.directory))
    return run.run


def new_run(tmp_path, text: str, name: str, asked: dict | None = None) -> Run:
    data = tmp_path / f"{name}.txt"
    data.write_text(text, encoding="utf-8")
    return Run.create(tmp_path / "runs" / name, data, ModelConfig(vocab_size=1, **(asked or {})),
                      TrainConfig(**TINY), init=startpoint.AUTO, asked=asked)


def test_unigram_entropy_is_the_character_frequencies_entropy():
    ids = torch.tensor([0, 0, 1, 2])                     # p = 1/2, 1/4, 1/4
    assert startpoint.unigram_entropy(ids, 5) == pytest.approx(1.5 * math.log(2))


def test_auto_starts_from_the_base_on_a_text_it_knows_and_from_zero_on_one_it_does_not(base, tmp_path, monkeypatch):
    known, unknown = new_run(tmp_path, LIKE_BASE, "known"), new_run(tmp_path, UNLIKE, "unknown")
    assert known.start["ratio"] < unknown.start["ratio"]
    cut = (known.start["ratio"] + unknown.start["ratio"]) / 2
    monkeypatch.setattr(startpoint, "BASE_RATIO", cut)
    known, unknown = new_run(tmp_path, LIKE_BASE, "known2"), new_run(tmp_path, UNLIKE, "unknown2")
    assert known.start["choice"] == "base" and unknown.start["choice"] == "zero"
    assert known.trainer.model.config.hidden == 32 and known.started_from["name"] == "base"
    assert unknown.started_from is None and unknown.trainer.model.config.hidden != 32
    assert known.start["how"] == "measured" and "knows this kind of text" in known.start["why"]
    for run in (known, unknown):
        records = list(run.train())
        assert records[0]["start"] == run.start and not any("start" in r for r in records[1:])
        assert read_header(run.directory)["start"] == run.start
    assert read_header(known.directory)["init"]["name"] == "base"
    assert "init" not in read_header(unknown.directory)


def test_the_probe_counts_in_the_runs_time(base, tmp_path):
    run = new_run(tmp_path, LIKE_BASE, "timed")
    assert run.trainer.setup_seconds >= run.start["seconds"] > 0


def test_a_set_size_that_is_not_the_bases_means_zero_without_a_probe(base, tmp_path):
    run = new_run(tmp_path, LIKE_BASE, "sized", {"hidden": 48})
    assert run.start["choice"] == "zero" and run.start["how"] == "asked" and "hidden" in run.start["why"]
    assert run.trainer.model.config.hidden == 48


def test_no_base_model_means_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARRNN_BASE_MODEL", "none")
    run = new_run(tmp_path, LIKE_BASE, "alone")
    assert run.start == {"choice": "zero", "how": "no base model"} and run.started_from is None


def test_a_resumed_run_keeps_saying_where_it_started(base, tmp_path):
    run = new_run(tmp_path, LIKE_BASE, "again")
    list(run.train())
    resumed = Run.resume(RunDir(run.directory), {"iterations": 18})
    records = list(resumed.train())
    assert not any("start" in r for r in records)
    assert read_header(run.directory)["start"] == run.start


def test_the_bundled_base_is_an_english_lstm_with_its_provenance_beside_it():
    header = read_weights_header(startpoint.BUNDLED_BASE / RunDir.WEIGHTS)
    assert header["model_config"]["cell"] == "lstm" and set("abcdefghijklmnopqrstuvwxyz,.") <= set(header["vocab"])
    sources = (startpoint.BUNDLED_BASE / "SOURCES.md").read_text(encoding="utf-8")
    for package in ("r-cran-janeaustenr", "wordnet-base", "dict-devil"):
        assert package in sources
    assert (startpoint.BUNDLED_BASE / RunDir.WEIGHTS).stat().st_size < 8 << 20


def test_the_cli_decides_for_the_auto_preset_and_not_for_a_fixed_one(base, tmp_path):
    (tmp_path / "text.txt").write_text(LIKE_BASE, encoding="utf-8")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "charrnn", "--checkpoints", str(tmp_path / "runs"), "train",
                               "--data", str(tmp_path / "text.txt"), "--iterations", "4", "--minutes", "0",
                               "--batch-size", "4", "--seq-len", "16", "--quiet", *args],
                              capture_output=True, text=True, timeout=240)

    auto = cli("--name", "a", "--preset", "auto")
    assert auto.returncode == 0, auto.stderr[-2000:]
    assert "auto starts from" in auto.stderr and read_header(tmp_path / "runs" / "a")["start"]["how"] == "measured"
    fixed = cli("--name", "q", "--preset", "quick")
    assert fixed.returncode == 0 and "start" not in read_header(tmp_path / "runs" / "q")
    told = cli("--name", "n", "--preset", "auto", "--init", "none")
    assert told.returncode == 0 and "start" not in read_header(tmp_path / "runs" / "n")
