"""charrnn.runs.runner: the kept model is the best one, patience ends a run, exact resume, old run directories.

Most tests script the validation loss by step (``script_validation``) so which step is best is known; the
torchrun test overfits for real, on random letters, where the validation loss can only rise after a while.
"""
import json
import os
import random
import subprocess
import sys

import pytest
import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import CorpusError
from charrnn.runs.jobs import budget, resumable_runs
from charrnn.runs.runner import BestSoFar, Run
from charrnn.runs.store import RunDir, load_checkpoint, read_header
from charrnn.runs.weights import read_json

TINY = dict(batch_size=4, seq_len=16, warmup=5, eval_every=10, sample_every=1000, checkpoint_every=1000,
            log_every=5, sample_length=20, eval_chars=2000, device="cpu")


def configs(iterations: int, **train) -> tuple[ModelConfig, TrainConfig]:
    return ModelConfig(embed=8, hidden=16), TrainConfig(**{**TINY, "iterations": iterations, **train})


def weights_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def script_validation(run: Run, loss_at, snapshots: dict | None = None) -> None:
    """Make the run's evaluations report ``loss_at(step)``, keeping a copy of the weights at each one."""
    trainer = run.trainer

    def validate() -> float:
        trainer.last_val = loss_at(trainer.step)
        trainer.best_val = min(trainer.best_val, trainer.last_val)
        if snapshots is not None:
            snapshots[trainer.step] = weights_of(trainer.model)
        return trainer.last_val

    trainer.validate = validate


def dip_at_40(step: int) -> float:
    """Better, better, worse, best (step 40), then worse again."""
    return {10: 3.0, 20: 2.0, 30: 2.5, 40: 1.5, 50: 2.2, 60: 2.4}[step]


def best_at_20(step: int) -> float:
    """Improves up to step 20, then creeps up for ever."""
    return {10: 3.0, 20: 2.0}.get(step, 2.0 + step / 1000)


# --- the best so far --------------------------------------------------------------------
def test_best_so_far_counts_only_scheduled_evaluations_without_improvement():
    best = BestSoFar(patience=2, eval_every=10)
    assert best.observe({"step": 10, "val_loss": 2.0}) and best.fields() == {"best_step": 10, "best_val_loss": 2.0}
    assert not best.observe({"step": 13, "val_loss": 2.5}) and best.stale == 0     # off schedule: a stop's eval
    assert not best.observe({"step": 20, "val_loss": 2.5}) and best.stale == 1
    assert not best.observe({"step": 20, "val_loss": 2.5}) and best.stale == 1     # the end record repeating it
    assert not best.observe({"step": 25}) and not best.exhausted()                 # no evaluation in it
    assert not best.observe({"step": 30, "val_loss": 2.0}) and best.exhausted()    # equal is no improvement
    assert best.reason() == "validation stopped improving at step 10"
    assert best.observe({"step": 33, "val_loss": 1.0}) and best.stale == 0 and best.step == 33


def test_patience_zero_never_stops():
    best = BestSoFar(patience=0, eval_every=10)
    for step in range(10, 1000, 10):
        best.observe({"step": step, "val_loss": float(step)})
    assert best.stale == 98 and not best.exhausted()


def test_a_resumed_count_that_patience_used_up_starts_afresh():
    cfg = TrainConfig(patience=2, eval_every=10)
    kept = {"step": 20, "val_loss": 1.5}
    assert BestSoFar.resumed(cfg, kept, {"stale": 1, "last_eval_step": 30}).stale == 1
    assert BestSoFar.resumed(cfg, kept, {"stale": 2, "last_eval_step": 40}).stale == 0
    old = BestSoFar.resumed(cfg, {"step": 20, "val_loss": None}, None)           # a run from before the split
    assert (old.step, old.val_loss, old.stale) == (20, float("inf"), 0)


# --- the kept model is the best -------------------------------------------------------------
def test_the_kept_model_is_the_best_validation_loss_and_the_latest_is_where_training_is(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(60))
    snapshots = {}
    script_validation(run, dip_at_40, snapshots)
    records = list(run.train())
    directory = tmp_path / "r"

    model, _, kept = load_checkpoint(directory)
    assert (kept["step"], kept["val_loss"], kept["best_step"], kept["best_val_loss"]) == (40, 1.5, 40, 1.5)
    assert same_weights(weights_of(model), snapshots[40])
    assert read_json(directory / RunDir.META) == kept

    latest_model, _, latest = load_checkpoint(directory / RunDir.LATEST)
    assert (latest["step"], latest["val_loss"], latest["best_step"], latest["best_val_loss"]) == (60, 2.4, 40, 1.5)
    assert same_weights(weights_of(latest_model), weights_of(run.trainer.model))
    assert RunDir(directory).latest_header() == latest and max(RunDir(directory).train_state_steps()) == 60

    status = RunDir(directory).status()
    assert (status["state"], status["step"], status["best_step"], status["best_val_loss"]) == ("finished", 60, 40, 1.5)
    assert "reason" not in status
    assert records[-1]["best_step"] == 40 and records[-1]["best_val_loss"] == 1.5
    assert [(r["step"], r["best_step"]) for r in records if "val_loss" in r] == [
        (10, 10), (20, 20), (30, 20), (40, 40), (50, 40), (60, 40)]
    assert RunDir(directory).records() == records


def test_a_checkpoint_before_any_evaluation_is_kept_until_one_is_better(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(30, eval_every=20, checkpoint_every=5))
    script_validation(run, lambda step: 2.0)
    seen = []
    for rec in run.train():
        if rec["step"] in (5, 15):              # saved at step 5: no evaluation yet, still generate-able
            seen.append((read_header(tmp_path / "r"), RunDir(tmp_path / "r").latest_header()))
    (kept, _), (still_kept, latest) = seen
    assert kept["step"] == kept["best_step"] == 5 and kept["val_loss"] is kept["best_val_loss"] is None
    assert still_kept == kept and (latest["step"], latest["best_step"]) == (15, 5)
    assert read_header(tmp_path / "r")["step"] == 20                 # the first evaluation replaced it


# --- early stopping ---------------------------------------------------------------------------
def test_patience_ends_the_run_as_finished_with_the_reason(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(200, patience=3))
    snapshots = {}
    script_validation(run, best_at_20, snapshots)
    records = list(run.train())
    directory = tmp_path / "r"
    assert run.trainer.step == 50                                      # evaluations at 30, 40, 50 were worse
    assert records[-1]["end"] == "finished"
    assert records[-1]["reason"] == "validation stopped improving at step 20"
    status = RunDir(directory).status()
    assert status["state"] == "finished" and status["reason"] == "validation stopped improving at step 20"
    assert status["step"] == 50 and status["best_step"] == 20 and status["best_val_loss"] == 2.0
    assert read_header(directory)["step"] == 20 and RunDir(directory).latest_header()["step"] == 50
    assert same_weights(weights_of(load_checkpoint(directory)[0]), snapshots[20])
    steps = [r["step"] for r in RunDir(directory).records()]
    assert steps == sorted(set(steps)) and steps[-1] == 50


def test_without_patience_the_run_uses_its_whole_budget(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(80))
    script_validation(run, best_at_20)
    records = list(run.train())
    assert run.trainer.step == 80 and records[-1]["end"] == "finished" and "reason" not in records[-1]
    assert read_header(tmp_path / "r")["step"] == 20


def test_a_run_ended_by_its_limit_of_passes_says_so(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(10_000, max_epochs=2.0))
    records = list(run.train())
    assert run.trainer.step < 10_000 and run.trainer.passes_progress() >= 1.0
    assert records[-1]["end"] == "finished"
    assert records[-1]["reason"] == RunDir(tmp_path / "r").status()["reason"] == (
        "it had read its text 2 times, its limit of passes")


def test_a_run_stopped_and_resumed_stops_early_where_a_straight_run_does(tmp_path, corpus_file):
    straight = Run.create(tmp_path / "straight", corpus_file, *configs(200, patience=3))
    script_validation(straight, best_at_20)
    list(straight.train())

    first = Run.create(tmp_path / "split", corpus_file, *configs(200, patience=3))
    script_validation(first, best_at_20)
    assert list(first.train(lambda: first.trainer.step >= 35))[-1]["end"] == "stopped"
    assert RunDir(tmp_path / "split").status()["state"] == "stopped"
    resumed = Run.resume(tmp_path / "split")
    assert resumed.trainer.step == 35 and resumed.best.step == 20
    script_validation(resumed, best_at_20)
    records = list(resumed.train())

    assert resumed.trainer.step == straight.trainer.step == 50          # the stop's extra evaluation used no patience
    assert records[-1]["reason"] == "validation stopped improving at step 20"
    for name in (RunDir.WEIGHTS, RunDir.LATEST):
        a, _, header_a = load_checkpoint(tmp_path / "straight" / name)
        b, _, header_b = load_checkpoint(tmp_path / "split" / name)
        assert header_a["step"] == header_b["step"]
        for (key, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=f"{name} {key}")


def test_resuming_a_run_that_patience_ended_trains_a_fresh_window(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(200, patience=2))
    script_validation(run, best_at_20)
    list(run.train())
    assert run.trainer.step == 40
    resumed = Run.resume(tmp_path / "r")
    script_validation(resumed, best_at_20)
    records = list(resumed.train())
    assert resumed.trainer.step == 60 and records[-1]["reason"] == "validation stopped improving at step 20"
    assert read_header(tmp_path / "r")["step"] == 20


def test_patience_can_be_changed_on_resume(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *configs(70, patience=2))
    script_validation(run, best_at_20)
    list(run.train())
    resumed = Run.resume(tmp_path / "r", {"patience": 0})
    script_validation(resumed, best_at_20)
    assert list(resumed.train())[-1]["end"] == "finished" and resumed.trainer.step == 70


# --- the corpus: named in the header, found through the run ---------------------------------------
def test_headers_name_the_corpus_by_name_and_size_and_carry_no_local_path(tmp_path, corpus_file, text):
    run = Run.create(tmp_path / "r", corpus_file, *configs(20, checkpoint_every=10), data_name="my text")
    list(run.train())
    directory = tmp_path / "r"
    for header in (read_header(directory), RunDir(directory).latest_header(), read_json(directory / RunDir.META)):
        assert header["data"] == {"name": "my text", "chars": len(text), "bytes": corpus_file.stat().st_size}
        assert str(tmp_path) not in json.dumps(header)
    assert read_json(directory / RunDir.CORPUS_RECORD) == {"path": str(corpus_file.resolve())}
    assert RunDir(directory).corpus_path() == corpus_file.resolve()


def test_a_run_whose_corpus_lies_inside_it_resumes_after_the_folder_moved(tmp_path, text):
    directory = tmp_path / "ck" / "r"
    directory.mkdir(parents=True)
    (directory / "corpus.txt").write_text(text, encoding="utf-8")       # as the app writes pasted text
    first = Run.create(directory, directory / "corpus.txt", *configs(30))
    list(first.train(lambda: first.trainer.step >= 15))
    assert read_json(directory / RunDir.CORPUS_RECORD) == {"path": "corpus.txt"}
    os.rename(tmp_path / "ck", tmp_path / "moved")
    resumed = Run.resume(tmp_path / "moved" / "r")
    assert list(resumed.train())[-1]["end"] == "finished" and resumed.trainer.step == 30


def test_resume_without_a_record_of_the_corpus_asks_for_data_and_records_what_it_is_given(tmp_path, corpus_file):
    first = Run.create(tmp_path / "r", corpus_file, *configs(30))
    list(first.train(lambda: first.trainer.step >= 15))
    (tmp_path / "r" / RunDir.CORPUS_RECORD).unlink()
    with pytest.raises(CorpusError, match="does not record where its corpus is; pass --data"):
        Run.resume(tmp_path / "r")
    moved = corpus_file.rename(tmp_path / "elsewhere.txt")
    resumed = Run.resume(tmp_path / "r", data_path=moved)
    assert RunDir(tmp_path / "r").corpus_path() == moved.resolve()
    assert list(resumed.train())[-1]["end"] == "finished"


# --- run directories from before the kept/latest split ------------------------------------------
def make_legacy(directory, corpus_file) -> int:
    """Rewrite a run as the trainer wrote it before this change: one model.safetensors (the last weights) whose
    header has the corpus path and no best_step, optimizer state without the patience count, no other file."""
    model, vocab, header = load_checkpoint(RunDir(directory).latest)
    header = {k: v for k, v in header.items() if k not in ("format", "model_config", "vocab", "best_step")}
    header["data"] = {"path": str(corpus_file.resolve()), "name": header["data"]["name"],
                      "chars": header["data"]["chars"]}
    RunDir(directory).keep(model, vocab, header)
    state = RunDir(directory).train_state(header["step"])
    state.pop("best")
    torch.save(state, directory / f"train_state-{header['step']}.pt")
    for name in (RunDir.LATEST, RunDir.CORPUS_RECORD):
        (directory / name).unlink()
    return header["step"]


def test_a_run_from_before_the_split_lists_resumes_exactly_and_gains_a_latest_file(tmp_path, corpus_file):
    def falling(step: int) -> float:
        return 3.0 - step / 100

    straight = Run.create(tmp_path / "straight", corpus_file, *configs(40))
    script_validation(straight, falling)
    list(straight.train())
    first = Run.create(tmp_path / "old", corpus_file, *configs(40))
    script_validation(first, falling)
    list(first.train(lambda: first.trainer.step >= 20))
    assert make_legacy(tmp_path / "old", corpus_file) == 20

    listed = {r["name"]: r for r in resumable_runs(tmp_path)}
    assert listed["old"]["latest"] == listed["old"]["header"] and listed["old"]["latest"]["step"] == 20
    assert budget(listed["old"]["latest"], 10, 0) == {"iterations": 30, "minutes": 0}
    assert RunDir(tmp_path / "old").latest == tmp_path / "old" / RunDir.WEIGHTS

    resumed = Run.resume(tmp_path / "old")
    assert resumed.trainer.step == 20 and (resumed.best.step, resumed.best.val_loss) == (20, falling(20))
    script_validation(resumed, falling)
    list(resumed.train())
    assert RunDir(tmp_path / "old").latest_header()["step"] == read_header(tmp_path / "old")["step"] == 40
    assert "path" not in read_header(tmp_path / "old")["data"]
    assert "path" not in RunDir(tmp_path / "old").latest_header()["data"]
    assert RunDir(tmp_path / "old").corpus_path() == corpus_file.resolve()
    a = load_checkpoint(tmp_path / "straight" / RunDir.LATEST)[0]
    b = load_checkpoint(tmp_path / "old" / RunDir.LATEST)[0]
    for (key, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=key)


# --- under torchrun ------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_gloo_ranks_stop_together_when_validation_stops_improving(tmp_path):
    rng = random.Random(0)
    corpus = tmp_path / "letters.txt"           # random letters: nothing to learn, so validation soon gets worse
    corpus.write_text("".join(rng.choice("abcdefgh \n") for _ in range(3000)), encoding="utf-8")
    root = tmp_path / "ck"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "charrnn", "--checkpoints", str(root), "train", "--data", str(corpus), "--name", "ddp",
           "--preset", "quick", "--hidden", "128", "--embed", "16", "--batch-size", "8", "--seq-len", "32",
           "--iterations", "2000", "--minutes", "0", "--lr", "0.01", "--warmup", "0", "--eval-every", "10",
           "--eval-chars", "0", "--patience", "3", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]

    run = root / "ddp"
    status = RunDir(run).status()
    records = RunDir(run).records()
    vals = {r["step"]: r["val_loss"] for r in records if "val_loss" in r}
    best = min(vals, key=vals.get)
    assert status["state"] == "finished" and status["reason"] == f"validation stopped improving at step {best:,}"
    assert status["step"] < 2000 and status["step"] == records[-1]["step"]
    assert sorted(vals)[-3:] == [status["step"] - 20, status["step"] - 10, status["step"]]
    assert read_header(run)["step"] == best and read_header(run)["val_loss"] == vals[best]
    assert RunDir(run).latest_header()["step"] == status["step"]
    assert sorted(p.name for p in root.iterdir()) == ["ddp"]
