"""Precision by measurement: autocast 'auto' times both precisions on the run's own model and batch."""
import time

import pytest
import torch

from charrnn import precision
from charrnn.config import TrainConfig
from charrnn.data import Corpus
from charrnn.precision import choose_precision, probe_rates
from charrnn.runs.store import read_header
from charrnn.train import Trainer


@pytest.fixture
def corpus(text, vocab):
    return Corpus.from_text(text, vocab, 0.1)


def config(**kw) -> TrainConfig:
    return TrainConfig(batch_size=4, seq_len=16, iterations=3, eval_every=1000, sample_every=1000, log_every=1, **kw)


def bf16_runs_here(model, corpus) -> bool:
    copy, opt, gen = precision.probe_setup(model, config())
    return precision.first_step_error(copy, opt, corpus, config(), gen, True) is None


def test_a_set_precision_is_kept_without_measuring(model, corpus, monkeypatch):
    monkeypatch.setattr(precision, "probe_rates", lambda *a, **k: pytest.fail("measured a set precision"))
    assert choose_precision(config(autocast="none"), model, corpus) == {"choice": "float32", "how": "set", "rates": {}}
    monkeypatch.setattr(precision, "first_step_error", lambda *a: None)        # bf16 runs (it may not here)
    assert choose_precision(config(autocast="bf16"), model, corpus) == {"choice": "bf16", "how": "set", "rates": {}}


def test_a_set_bf16_that_does_not_run_here_is_refused_before_the_run_starts(model, corpus, monkeypatch):
    def fails(model, opt, corpus, cfg, gen, bf16, seconds):
        raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive.\nmore")

    monkeypatch.setattr(precision, "probe_steps", fails)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(precision.PrecisionUnavailable, match="bf16 autocast does not run on this machine "
                                                             r"\(could not create a primitive descriptor.*'none'"):
        choose_precision(config(autocast="bf16"), model, corpus)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_auto_measures_every_precision_that_runs_here_and_keeps_the_faster(model, corpus):
    got = choose_precision(config(autocast="auto"), model, corpus)
    runs = bf16_runs_here(model, corpus)
    assert got["how"] == "measured"
    assert set(got["rates"]) == ({"float32", "bf16"} if runs else {"float32"})
    assert ("unavailable" in got) == (not runs)
    assert all(r > 0 for r in got["rates"].values())
    assert got["choice"] == max(got["rates"], key=got["rates"].get)


def test_auto_keeps_float32_and_says_why_when_bf16_does_not_run(model, corpus, monkeypatch):
    real = precision.probe_steps

    def no_bf16(model, opt, corpus, cfg, gen, bf16, seconds):
        if bf16:
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive.")
        return real(model, opt, corpus, cfg, gen, bf16, seconds)

    monkeypatch.setattr(precision, "probe_steps", no_bf16)
    got = choose_precision(config(autocast="auto"), model, corpus)
    assert got["choice"] == "float32" and set(got["rates"]) == {"float32"}
    assert got["unavailable"] == {"bf16": "could not create a primitive descriptor for the LSTM forward "
                                          "propagation primitive."}
    trainer = Trainer(model, corpus, config(autocast="auto"))      # and the run trains, in float32
    assert not trainer.bf16 and len(list(trainer.fit())) == 3


@pytest.mark.parametrize("slow, expected", [("bf16", "float32"), ("float32", "bf16")])
def test_the_slower_precision_loses_whichever_it_is(model, corpus, monkeypatch, slow, expected):
    real = precision.probe_steps

    def steps(model, opt, corpus, cfg, gen, bf16, seconds):
        n, elapsed = real(model, opt, corpus, cfg, gen, False, seconds)   # float32 steps: they run on any machine
        if ("bf16" if bf16 else "float32") == slow:
            elapsed += 0.05 * n                       # each step 50 ms slower: far beyond any noise of a tiny model
        return n, elapsed

    monkeypatch.setattr(precision, "probe_steps", steps)
    assert choose_precision(config(autocast="auto"), model, corpus)["choice"] == expected


def test_measuring_leaves_the_weights_the_random_state_and_the_data_stream_alone(model, corpus):
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    probe_rates(model, corpus, config(autocast="auto"), rounds=1, round_seconds=0.01)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_an_auto_run_trains_exactly_like_a_set_run_of_the_chosen_precision(make_model, vocab, corpus):
    auto = Trainer(make_model(vocab), corpus, config(autocast="auto"))
    chosen = "bf16" if auto.bf16 else "none"
    same = Trainer(make_model(vocab), corpus, config(autocast=chosen))
    assert [r["train_loss"] for r in auto.fit()] == [r["train_loss"] for r in same.fit()]


def test_the_first_record_says_which_precision_and_why(model, corpus):
    trainer = Trainer(model, corpus, config(autocast="auto"))
    records = list(trainer.fit())
    assert records[0]["precision"] == trainer.precision and trainer.precision["how"] == "measured"
    assert trainer.bf16 == (trainer.precision["choice"] == "bf16")
    assert all("precision" not in r for r in records[1:])


def test_the_run_header_records_the_precision_and_its_rates(tmp_path, corpus_file):
    from charrnn.config import ModelConfig
    from charrnn.runs.runner import Run

    run = Run.create(tmp_path / "run", corpus_file, ModelConfig(embed=8, hidden=16), config(autocast="auto"))
    list(run.train(lambda: False))
    header = read_header(tmp_path / "run")
    assert header["precision"] == run.trainer.precision and header["precision"]["how"] == "measured"
    assert set(header["precision"]["rates"]) | set(header["precision"].get("unavailable", {})) == {"float32", "bf16"}


@pytest.mark.parametrize("bf16_seconds, rounds", [(1.0, precision.MAX_ROUNDS), (2.0, 3)])
def test_close_rates_are_measured_longer_and_each_round_swaps_which_goes_first(model, corpus, monkeypatch,
                                                                               bf16_seconds, rounds):
    calls = []

    def steps(model, opt, corpus, cfg, gen, bf16, seconds):
        calls.append(("bf16" if bf16 else "float32", seconds))
        return 10, (bf16_seconds if bf16 else 1.0)          # equal rates, or bf16 at half float32's

    monkeypatch.setattr(precision, "probe_steps", steps)
    rates = probe_rates(model, corpus, config(autocast="auto"), rounds=3, round_seconds=0.2)
    timed = [name for name, seconds in calls if seconds > 0]
    warmups = [name for name, seconds in calls if seconds == 0]
    assert warmups == ["float32"] * precision.WARMUP_STEPS + ["bf16"] * precision.WARMUP_STEPS
    assert len(timed) == 2 * rounds
    assert timed[:4] == ["float32", "bf16", "bf16", "float32"]
    assert rates["float32"] == 10 * 4 * 16 / 1.0 and rates["bf16"] == 10 * 4 * 16 / bf16_seconds


def test_the_time_spent_measuring_counts_in_the_runs_budget(model, corpus, monkeypatch):
    """A 30-second run that spends seconds choosing its precision trains that much less, not 30 seconds more."""
    real = precision.probe_rates

    def slow_probe(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(precision, "probe_rates", slow_probe)
    trainer = Trainer(model, corpus, config(autocast="auto"))
    assert trainer.setup_seconds >= 0.3
    records = list(trainer.fit())
    assert records[-1]["elapsed"] >= 0.3 and trainer.setup_seconds == 0.0
