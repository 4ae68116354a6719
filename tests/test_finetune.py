"""Starting a run from a trained model (``charrnn train --init``): its shape and weights, its vocabulary
extended with the new text's characters, the header saying where it started; bad combinations are one message."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.finetune import BaseMismatch, extended_vocab, from_base, shape_config
from charrnn.model import CharRNN
from charrnn.runs.runner import Run
from charrnn.runs.store import RunDir, load_checkpoint, read_header
from charrnn.vocab import Vocab

BASE_TEXT = "the quick brown fox jumps over the lazy dog.\n" * 40
NEW_TEXT = "Ça va? Über-schnell: ñandú & ßeta!\n" * 40 + BASE_TEXT
TINY = dict(batch_size=4, seq_len=16, iterations=12, warmup=2, eval_every=6, sample_every=1000,
            checkpoint_every=6, log_every=3, eval_chars=500, device="cpu")


def base_run(tmp_path, **model) -> RunDir:
    data = tmp_path / "base.txt"
    data.write_text(BASE_TEXT, encoding="utf-8")
    config = ModelConfig(vocab_size=1, **{"embed": 8, "hidden": 16, **model})
    run = Run.create(tmp_path / "runs" / "base", data, config, TrainConfig(**TINY))
    list(run.train())
    return run.run


def test_the_vocabulary_keeps_the_bases_ids_and_adds_the_new_characters_after_them():
    base = Vocab.from_text("abc ")
    vocab = extended_vocab(base, "cab déjà")
    assert vocab.chars[:4] == base.chars and vocab.chars[4:] == sorted("déj" + "à")


def test_the_bases_characters_keep_their_predictions_and_new_ones_start_average():
    base_vocab = Vocab.from_text("abc ")
    base = CharRNN(ModelConfig(vocab_size=4, embed=8, hidden=16))
    vocab = extended_vocab(base_vocab, "xyz")
    model = from_base(base, base_vocab, vocab, shape_config(base.config, base.config, len(vocab)))
    idx = torch.tensor([[0, 1, 2, 3, 2]])
    base_logits, new_logits = base(idx)[0], model(idx)[0]
    assert torch.equal(new_logits[..., :4], base_logits)                      # the base's own, exactly
    assert torch.allclose(new_logits[..., 4:], base.head.bias.mean().expand(1, 5, 3))   # neither dominant nor dead
    rows = model.embed.weight[4:]
    assert not torch.equal(rows[0], rows[1])                                 # new characters differ from each other


def test_a_run_from_a_base_takes_its_shape_and_weights_and_records_where_it_started(tmp_path):
    base = base_run(tmp_path)
    data = tmp_path / "new.txt"
    data.write_text(NEW_TEXT, encoding="utf-8")
    run = Run.create(tmp_path / "runs" / "tuned", data, ModelConfig(vocab_size=1, embed=64, hidden=512, dropout=0.3),
                     TrainConfig(**TINY), init=base.path)
    model, base_model = run.trainer.model, load_checkpoint(base.path)[0]
    assert (model.config.embed, model.config.hidden, model.config.dropout) == (8, 16, 0.3)   # shape from the base
    assert torch.equal(model.rnn.weight_hh_l0, base_model.rnn.weight_hh_l0)
    list(run.train())
    header = read_header(run.directory)
    sha = hashlib.sha256(base.weights.read_bytes()).hexdigest()
    assert header["init"] == {"name": "base", "sha256": sha, "added_chars": len(set(NEW_TEXT) - set(BASE_TEXT))}
    assert header["vocab"].startswith(read_header(base.path)["vocab"])
    assert RunDir(run.directory).read_config()["init"] == str(base.weights)


def test_a_run_from_a_base_resumes_exactly_and_keeps_saying_where_it_started(tmp_path):
    base = base_run(tmp_path)
    data = tmp_path / "new.txt"
    data.write_text(NEW_TEXT, encoding="utf-8")
    cfg = ModelConfig(vocab_size=1)
    straight = Run.create(tmp_path / "runs" / "straight", data, cfg, TrainConfig(**TINY), init=base.path)
    list(straight.train())
    half = Run.create(tmp_path / "runs" / "half", data, cfg, TrainConfig(**TINY), init=base.path)
    list(half.train(should_stop=lambda: half.trainer.step >= 6))            # stopped half-way, as Stop does
    resumed = Run.resume(tmp_path / "runs" / "half")
    list(resumed.train())
    for a, b in zip(straight.trainer.model.parameters(), resumed.trainer.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert read_header(resumed.directory)["init"] == read_header(straight.directory)["init"]


def test_a_shape_asked_for_that_is_not_the_bases_is_refused_naming_both(tmp_path):
    base = base_run(tmp_path)
    data = tmp_path / "new.txt"
    data.write_text(NEW_TEXT, encoding="utf-8")
    with pytest.raises(BaseMismatch, match="the base model has cell 'lstm', not 'gru'"):
        Run.create(tmp_path / "runs" / "x", data, ModelConfig(vocab_size=1, cell="gru"), TrainConfig(**TINY),
                   init=base.path, asked={"cell": "gru"})
    assert not (tmp_path / "runs" / "x").exists()


def test_a_printable_base_refuses_a_text_outside_it_unless_told_to_fold(tmp_path):
    data = tmp_path / "base.txt"
    data.write_text(BASE_TEXT, encoding="utf-8")
    printable = TrainConfig(**TINY, vocab="printable", unknown="fold")
    base = Run.create(tmp_path / "runs" / "lecture", data, ModelConfig(vocab_size=100, embed=8, hidden=16), printable)
    list(base.train())
    new = tmp_path / "new.txt"
    new.write_text(NEW_TEXT, encoding="utf-8")
    with pytest.raises(BaseMismatch, match="reads only string.printable.*'ß'"):
        Run.create(tmp_path / "runs" / "x", new, ModelConfig(vocab_size=1), TrainConfig(**TINY), init=base.directory)
    folded = Run.create(tmp_path / "runs" / "y", new, ModelConfig(vocab_size=1),
                        TrainConfig(**TINY, unknown="fold"), init=base.directory)
    assert len(folded.trainer.corpus.vocab) == 100


def test_the_cli_starts_from_a_base_by_run_name_and_refuses_a_clashing_shape_in_one_line(tmp_path):
    base = base_run(tmp_path)
    (tmp_path / "new.txt").write_text(NEW_TEXT, encoding="utf-8")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "charrnn", "--checkpoints", str(base.path.parent), "train",
                               "--data", str(tmp_path / "new.txt"), "--preset", "quick", "--iterations", "4",
                               "--minutes", "0", "--quiet", *args], capture_output=True, text=True, timeout=240)

    done = cli("--name", "tuned", "--init", "base")
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_header(base.path.parent / "tuned")["init"]["name"] == "base"
    refused = cli("--name", "clash", "--init", "base", "--hidden", "64")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "the base model has hidden 16, not 64" in refused.stderr
