"""Training: loss falls, records are reported not printed, exact resume, clean stop, divergence kept safe."""
import math
import subprocess
import sys

import pytest
import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Corpus
from charrnn.model import CharRNN
from charrnn.runs.runner import Run
from charrnn.runs.store import RunDir, load_checkpoint, read_header
from charrnn.runs.weights import CheckpointError
from charrnn.train import Trainer, TrainingDiverged, lr_factor

TINY = dict(batch_size=4, seq_len=16, warmup=5, eval_every=10, sample_every=20, checkpoint_every=10,
            log_every=5, sample_length=20, eval_chars=2000, device="cpu")


def tiny_trainer(text: str, seed: int = 0, **train) -> Trainer:
    corpus = Corpus.from_text(text)
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=len(corpus.vocab), embed=8, hidden=16))
    return Trainer(model, corpus, TrainConfig(**{**TINY, "iterations": 20, **train}))


def weights_of(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- the loop ------------------------------------------------------------------------
def test_training_lowers_validation_loss_well_below_uniform(text):
    corpus = Corpus.from_text(text)
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=len(corpus.vocab), embed=16, hidden=64))
    cfg = TrainConfig(batch_size=16, seq_len=32, iterations=200, lr=1e-2, warmup=10, eval_every=50,
                      sample_every=1000, log_every=50, seed=0, device="cpu")
    records = list(Trainer(model, corpus, cfg).fit())
    uniform = math.log(len(corpus.vocab))
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert val[0] < uniform
    assert val[-1] < 0.25 * uniform
    assert records[-1]["end"] == "finished" and records[-1]["step"] == 200


def test_training_is_repeatable_with_the_same_seed(text):
    a, b = tiny_trainer(text, seed=3), tiny_trainer(text, seed=3)
    list(a.fit())
    list(b.fit())
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_fit_yields_records_on_schedule_and_ends_finished(text):
    trainer = tiny_trainer(text, iterations=20)
    records = list(trainer.fit())
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert [("val_loss" in r, "sample" in r) for r in records] == [(False, False), (True, False),
                                                                   (False, False), (True, True)]
    assert "end" not in records[0] and records[-1]["end"] == "finished"
    assert all(math.isfinite(r["train_loss"]) and r["lr"] > 0 for r in records)
    assert records[-1]["val_bpc"] == pytest.approx(records[-1]["val_loss"] / math.log(2))
    assert len(records[-1]["sample"]) == 20


def test_training_reports_and_never_prints(text, capsys):
    list(tiny_trainer(text, iterations=10).fit())
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_should_stop_ends_the_loop_at_the_requested_step(text):
    trainer = tiny_trainer(text, iterations=100)
    records = list(trainer.fit(lambda: trainer.step >= 7))
    assert trainer.step == 7
    assert records[-1]["end"] == "stopped" and records[-1]["step"] == 7


def test_nan_loss_raises_training_diverged_before_the_update(text, monkeypatch):
    trainer = tiny_trainer(text, iterations=50)
    real = trainer.mean_over_ranks
    monkeypatch.setattr(trainer, "mean_over_ranks", lambda v: math.nan if trainer.step >= 12 else real(v))
    with pytest.raises(TrainingDiverged, match="step 13"):
        list(trainer.fit())
    assert trainer.step == 12
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_exploding_loss_raises_training_diverged(text, monkeypatch):
    trainer = tiny_trainer(text, iterations=50)
    monkeypatch.setattr(trainer, "mean_over_ranks", lambda v: 1e3)
    with pytest.raises(TrainingDiverged, match="exploded"):
        list(trainer.fit())


# --- schedule and config ------------------------------------------------------------------
def test_max_epochs_ends_the_run_after_that_many_passes_with_its_learning_rate_decayed(text):
    trainer = tiny_trainer(text, iterations=10_000, max_epochs=2.0, min_lr_ratio=0.1)
    records = list(trainer.fit())
    passes = trainer.chars_seen / len(trainer.corpus.train)
    assert records[-1]["end"] == "finished" and records[-1]["progress"] == 1.0
    assert 2.0 <= passes < 2.0 + TINY["batch_size"] * TINY["seq_len"] / len(trainer.corpus.train) + 1e-9
    assert trainer.step < 10_000 and records[-1]["lr"] == pytest.approx(trainer.cfg.lr * 0.1, rel=0.05)


def test_max_epochs_alone_is_a_limit_and_zero_is_none():
    assert TrainConfig(iterations=0, minutes=0, max_epochs=3).max_epochs == 3
    with pytest.raises(ValueError, match="max_epochs > 0"):
        TrainConfig(iterations=0, minutes=0, max_epochs=0)
    with pytest.raises(ValueError, match="max_epochs"):
        TrainConfig(max_epochs=-1)


def test_lr_warms_up_linearly_then_decays_to_the_floor():
    cfg = TrainConfig(iterations=100, warmup=10, decay="cosine", min_lr_ratio=0.1)
    assert lr_factor(0.0, 0, cfg) == pytest.approx(0.1)
    assert lr_factor(0.09, 9, cfg) == pytest.approx(1.0)
    assert lr_factor(0.5, 50, cfg) == pytest.approx(0.55)
    assert lr_factor(1.0, 100, cfg) == pytest.approx(0.1)
    flat = TrainConfig(iterations=100, warmup=0, decay="none")
    assert lr_factor(0.7, 70, flat) == 1.0


@pytest.mark.parametrize("bad", [dict(lr=-1), dict(lr=0), dict(lr=1.5), dict(lr=math.nan), dict(batch_size=0),
                                 dict(iterations=0, minutes=0), dict(optimizer="sgd"), dict(eval_every=0),
                                 dict(val_fraction=0.9), dict(unknown="ignore")])
def test_train_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_train_config_round_trips_and_ignores_unknown_keys():
    cfg = TrainConfig(lr=1e-3, seq_len=77)
    assert TrainConfig.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg


# --- runs: checkpoints, stop, resume, divergence ----------------------------------------------
def run_config(iterations: int, **train) -> tuple[ModelConfig, TrainConfig]:
    return ModelConfig(embed=8, hidden=16), TrainConfig(**{**TINY, "iterations": iterations, **train})


def test_a_run_writes_its_checkpoint_metrics_plot_and_status(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *run_config(20))
    records = list(run.train())
    assert records[-1]["end"] == "finished"
    for name in (RunDir.WEIGHTS, RunDir.META, RunDir.LATEST, RunDir.CORPUS_RECORD, RunDir.CONFIG, RunDir.METRICS,
                 RunDir.STATUS, *RunDir.PLOTS, "train_state-20.pt"):
        assert (tmp_path / "r" / name).is_file(), name
    assert RunDir(tmp_path / "r").status()["state"] == "finished"
    assert RunDir(tmp_path / "r").latest_header()["step"] == 20
    vals = {r["step"]: r["val_loss"] for r in records if "val_loss" in r}
    kept = read_header(tmp_path / "r")
    assert kept["val_loss"] == min(vals.values()) == vals[kept["step"]]    # the kept model is the best one
    assert RunDir(tmp_path / "r").records() == records


def test_stop_on_request_writes_a_final_checkpoint(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *run_config(100))
    records = list(run.train(lambda: run.trainer.step >= 13))
    assert records[-1]["end"] == "stopped"
    assert RunDir(tmp_path / "r").latest_header()["step"] == 13
    assert (tmp_path / "r" / "train_state-13.pt").is_file()
    assert RunDir(tmp_path / "r").status()["state"] == "stopped"
    model, _, _ = load_checkpoint(tmp_path / "r" / RunDir.LATEST)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), run.trainer.model.parameters(), strict=True))


@pytest.mark.parametrize("carry_state", [False, True])
def test_a_resumed_run_equals_one_straight_run(tmp_path, corpus_file, carry_state):
    n = 20
    straight = Run.create(tmp_path / "straight", corpus_file, *run_config(2 * n, carry_state=carry_state))
    list(straight.train())

    first = Run.create(tmp_path / "split", corpus_file, *run_config(2 * n, carry_state=carry_state))
    list(first.train(lambda: first.trainer.step >= n))
    optimizer_at_stop = first.trainer.optimizer.state_dict()
    resumed = Run.resume(tmp_path / "split")
    assert resumed.trainer.step == n
    for key, state in optimizer_at_stop["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(resumed.trainer.optimizer.state_dict()["state"][key][name], value)
    records = list(resumed.train())
    assert records[0]["step"] > n and records[-1]["end"] == "finished"

    a, _, header_a = load_checkpoint(tmp_path / "straight" / RunDir.LATEST)
    b, _, header_b = load_checkpoint(tmp_path / "split" / RunDir.LATEST)
    assert header_a["step"] == header_b["step"] == 2 * n
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=name)
    assert header_b["val_loss"] == pytest.approx(header_a["val_loss"], rel=1e-5)
    kept_a, kept_b = read_header(tmp_path / "straight"), read_header(tmp_path / "split")
    assert kept_a["step"] == kept_b["step"] and kept_b["val_loss"] == pytest.approx(kept_a["val_loss"], rel=1e-5)

    steps_a = [r["step"] for r in RunDir(tmp_path / "straight").records()]
    steps_b = [r["step"] for r in RunDir(tmp_path / "split").records()]
    assert steps_b == steps_a                                # same steps, none duplicated by the stop


def test_resume_after_stopping_mid_interval_continues_without_duplicate_metrics(tmp_path, corpus_file):
    first = Run.create(tmp_path / "r", corpus_file, *run_config(30))
    list(first.train(lambda: first.trainer.step >= 13))
    list(Run.resume(tmp_path / "r").train())
    steps = [r["step"] for r in RunDir(tmp_path / "r").records()]
    assert steps == sorted(set(steps)) and steps[-1] == 30 and 13 in steps


def test_resume_refuses_a_run_that_is_still_training(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *run_config(10))
    list(run.train())
    # a live process that looks like a trainer (its command line names charrnn)
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "charrnn", "train"])
    try:
        RunDir(tmp_path / "r").write_status("running", pid=trainer.pid)
        with pytest.raises(CheckpointError, match="still training"):
            Run.resume(tmp_path / "r")
    finally:
        trainer.kill()
        trainer.wait()


def test_create_refuses_to_overwrite_an_existing_run(tmp_path, corpus_file):
    run = Run.create(tmp_path / "r", corpus_file, *run_config(5))
    list(run.train())
    with pytest.raises(CheckpointError, match="already exists"):
        Run.create(tmp_path / "r", corpus_file, *run_config(5))


def test_diverging_run_fails_with_reason_and_keeps_the_last_good_checkpoint(tmp_path, corpus_file, monkeypatch):
    run = Run.create(tmp_path / "r", corpus_file, *run_config(100))
    real = run.trainer.mean_over_ranks
    monkeypatch.setattr(run.trainer, "mean_over_ranks",
                        lambda v: math.nan if run.trainer.step >= 25 else real(v))
    with pytest.raises(TrainingDiverged):
        list(run.train())
    status = RunDir(tmp_path / "r").status()
    assert status["state"] == "failed"
    assert "loss became nan at step 26" in status["reason"]
    assert RunDir(tmp_path / "r").latest_header()["step"] == 20     # the last checkpoint before the bad step
    model, _, header = load_checkpoint(tmp_path / "r")
    assert header["step"] <= 20 and status["best_step"] == header["step"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert (tmp_path / "r" / "train_state-20.pt").is_file()


def test_patience_is_a_whole_number_of_evaluations_zero_meaning_off():
    assert TrainConfig().patience == 0
    assert TrainConfig(patience=5).patience == 5
    for bad in (-1, 2.5, "3", 10**7):
        with pytest.raises(ValueError, match="patience"):
            TrainConfig(patience=bad)


# --- state carried across steps --------------------------------------------------------
def states_passed(trainer: Trainer, steps: int) -> list:
    """The recurrent state each training step's forward received, and the state it returned."""
    seen, forward = [], trainer.model.forward

    def spy(idx, targets=None, state=None):
        logits, loss, out = forward(idx, targets, state)
        seen.append((state, out))
        return logits, loss, out
    trainer.model.forward = spy
    for _ in range(steps):
        trainer.train_step()
    return seen


def test_carry_state_hands_each_step_the_state_the_last_one_ended_in(text):
    seen = states_passed(tiny_trainer(text, carry_state=True), 3)
    assert seen[0][0] is None                                     # streams start from zero
    for (_, ended), (given, _) in zip(seen[:-1], seen[1:], strict=True):
        for a, b in zip(ended, given, strict=True):
            assert not b.requires_grad                            # the gradient stops at the step's start
            torch.testing.assert_close(a.detach(), b)


def test_without_carry_state_every_step_starts_from_zero(text):
    assert all(given is None for given, _ in states_passed(tiny_trainer(text), 3))


def test_a_restarted_stream_starts_from_zero_and_the_others_keep_their_state():
    from charrnn.train import restart_streams
    h, c = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    h2, c2 = restart_streams((h, c), torch.tensor([False, True, False]))
    assert torch.equal(h2[:, 1], torch.zeros(2, 5)) and torch.equal(c2[:, 1], torch.zeros(2, 5))
    assert torch.equal(h2[:, [0, 2]], h[:, [0, 2]]) and torch.equal(c2[:, [0, 2]], c[:, [0, 2]])
    g = restart_streams(h, torch.tensor([True, False, False]))    # a GRU's state is one tensor
    assert torch.equal(g[:, 0], torch.zeros(2, 5)) and torch.equal(g[:, 1:], h[:, 1:])
    assert restart_streams((h, c), torch.tensor([True, True, True])) is None


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_carry_state_trains_every_cell(text, cell):
    corpus = Corpus.from_text(text)
    model = CharRNN(ModelConfig(vocab_size=len(corpus.vocab), embed=8, hidden=16, cell=cell, layers=2))
    trainer = Trainer(model, corpus, TrainConfig(**{**TINY, "iterations": 4, "carry_state": True}))
    records = list(trainer.fit())
    assert records[-1]["end"] == "finished" and math.isfinite(records[-1]["val_loss"])
    assert trainer.stream_state.shape == (2, TINY["batch_size"], 16)
