"""charrnn.runs.burst: a run trained in bursts is the run trained straight, a burst closed early leaves a resumable
run with a final status, and the result generates.

Bursts here are bounded by steps, or by a clock that counts calls: no test depends on how fast anything ran.
"""
import itertools

import pytest
import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.runs.burst import train_burst, training_now
from charrnn.runs.jobs import resumable_runs
from charrnn.runs.runner import Run, run_config
from charrnn.runs.store import FINAL_STATES, RunDir, load_checkpoint
from charrnn.runs.weights import CheckpointError
from charrnn.sample import generate

TINY = dict(batch_size=4, seq_len=16, warmup=5, eval_every=10, sample_every=1000, checkpoint_every=1000,
            log_every=5, sample_length=20, eval_chars=2000, device="cpu")
HOUR = 3600.0          # a burst's seconds that never run out here: its steps bound it


def configured(path, corpus_file, iterations: int = 40, **train) -> RunDir:
    """A run folder holding only its run.json, as the app's Start writes it before the first burst."""
    run = RunDir(path)
    run.path.mkdir(parents=True)
    run.write_config(run_config("quick", corpus_file.name, corpus_file, ModelConfig(embed=8, hidden=16),
                                TrainConfig(**{**TINY, "iterations": iterations, **train})))
    return run


def latest_weights(run: RunDir) -> dict:
    model, _, _ = load_checkpoint(run.latest)
    return model.state_dict()


def test_a_run_trained_in_two_bursts_equals_the_run_trained_straight(tmp_path, corpus_file):
    straight = Run.configured(configured(tmp_path / "straight", corpus_file))
    list(straight.train())
    run = configured(tmp_path / "bursts", corpus_file)

    first = list(train_burst(run, HOUR, steps=15))
    assert first[-1]["end"] == "stopped" and first[-1]["step"] == 15
    assert run.status()["state"] == "stopped" and run.resume_step() == 15
    assert "bursts" in [r["name"] for r in resumable_runs(tmp_path)]
    second = list(train_burst(run, HOUR))

    assert second[0]["step"] > 15 and second[-1]["end"] == "finished"
    assert run.status()["state"] == "finished" and run.latest_header()["step"] == straight.trainer.step == 40
    expected = latest_weights(RunDir(tmp_path / "straight"))
    for key, value in latest_weights(run).items():
        torch.testing.assert_close(value, expected[key], atol=1e-6, rtol=1e-5, msg=key)
    assert [r["step"] for r in run.records()] == [r["step"] for r in RunDir(tmp_path / "straight").records()
                                                  if r["step"] <= 15] + [r["step"] for r in second]


def test_a_burst_closed_mid_way_leaves_a_stopped_resumable_run_that_lost_no_step(tmp_path, corpus_file):
    run = configured(tmp_path / "closed", corpus_file, iterations=200)
    burst = train_burst(run, HOUR)
    seen = next(burst)                                      # the first record: step 5, nothing saved yet
    assert training_now(run) and run.status_as_written()["state"] == "running"
    burst.close()

    status = run.status_as_written()
    assert status["state"] == "stopped" and status["state"] in FINAL_STATES and not training_now(run)
    assert run.resume_step() == seen["step"] == 5            # saved where the visitor left it
    assert run.records()[-1]["end"] == "stopped"
    assert "closed" in [r["name"] for r in resumable_runs(tmp_path)]
    more = list(train_burst(run, HOUR, steps=10))
    assert more[-1]["step"] == 15 and run.status()["state"] == "stopped"


def test_a_burst_ends_when_its_seconds_are_spent_and_saves_there(tmp_path, corpus_file):
    run = configured(tmp_path / "timed", corpus_file, iterations=500)
    ticks = itertools.count()                                # a clock one second later at every look
    records = list(train_burst(run, 12.0, clock=lambda: float(next(ticks))))
    step = records[-1]["step"]
    assert records[-1]["end"] == "stopped" and 0 < step < 500
    assert run.status()["state"] == "stopped" and run.resume_step() == step


def test_a_burst_that_ends_the_runs_budget_finishes_it(tmp_path, corpus_file):
    run = configured(tmp_path / "short", corpus_file, iterations=12)
    records = list(train_burst(run, HOUR, steps=100))
    assert records[-1]["end"] == "finished" and run.status()["state"] == "finished"
    assert run.latest_header()["step"] == 12


def test_a_bigger_budget_on_resume_lets_a_finished_run_train_more(tmp_path, corpus_file):
    run = configured(tmp_path / "more", corpus_file, iterations=10)
    list(train_burst(run, HOUR))
    records = list(train_burst(run, HOUR, overrides={"iterations": 20}))
    assert records[-1]["end"] == "finished" and run.latest_header()["step"] == 20


def test_the_result_of_bursts_generates_text(tmp_path, corpus_file, text):
    run = configured(tmp_path / "gen", corpus_file, iterations=20)
    list(train_burst(run, HOUR, steps=10))
    list(train_burst(run, HOUR))
    model, vocab, header = load_checkpoint(run.path)
    assert header["step"] in (10, 20) and header["run"] == "gen"
    out = "".join(generate(model, vocab, "the ", 50, 0.8, seed=1))
    assert len(out) == 50 and set(out) <= set(text)


def test_a_burst_of_a_folder_without_run_json_is_refused(tmp_path):
    (tmp_path / "bare").mkdir()
    with pytest.raises(CheckpointError, match="run.json"):
        next(train_burst(RunDir(tmp_path / "bare"), HOUR))


def test_a_burst_in_progress_reads_as_running_not_interrupted(tmp_path, corpus_file):
    """A burst trains in the app's own process, whose command line names no trainer: its status says so."""
    run = configured(tmp_path / "r", corpus_file)
    bursting = train_burst(run, seconds=600, steps=50)
    next(bursting)
    assert run.status()["state"] == "running" and run.status_as_written().get("burst") is True
    bursting.close()
    assert run.status()["state"] == "stopped"
