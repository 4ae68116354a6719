"""charrnn.runs.weights: a weights file is checked whole before anything is allocated from its header."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs import weights
from charrnn.runs.store import RunDir, list_runs, load_checkpoint
from charrnn.runs.weights import FORMAT, CheckpointError
from charrnn.vocab import Vocab


def lying_file(path, model_config: dict, vocab: str, tensors: dict | None = None) -> None:
    """A small safetensors file whose charrnn header claims ``model_config``."""
    header = {"format": FORMAT, "model_config": model_config, "vocab": vocab, "step": 1}
    save_file(tensors or {"embed.weight": torch.zeros(2, 2)}, str(path), metadata={"charrnn": json.dumps(header)})


def huge_config() -> dict:
    return ModelConfig(vocab_size=100_000, embed=2048, hidden=2048, layers=2).to_dict()


def test_a_tiny_file_claiming_a_huge_model_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    """D1: a 38 GiB model claimed by a file of a few hundred bytes: refused without allocating it."""
    path = tmp_path / "model.safetensors"
    lying_file(path, huge_config(), "".join(chr(0x20000 + i) for i in range(100_000)))
    built = []
    real_init = CharRNN.__init__

    def counting_init(self, config):
        real_init(self, config)
        if next(self.parameters()).device.type != "meta":
            built.append(config)

    monkeypatch.setattr(CharRNN, "__init__", counting_init)
    with pytest.raises(CheckpointError, match="do not match its model config"):
        load_checkpoint(path)
    assert built == []                                    # only the meta-device model, which holds no memory


def test_a_model_over_the_callers_cap_is_refused_by_its_shapes_alone(tmp_path):
    vocab = Vocab.from_text("abcdefgh")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=32))
    (tmp_path / "run").mkdir()
    RunDir(tmp_path / "run").keep(model, vocab, {"step": 1})
    with pytest.raises(CheckpointError, match=f"a model of {model.num_params():,} parameters; at most 1,000"):
        load_checkpoint(tmp_path / "run", max_params=1000)
    assert load_checkpoint(tmp_path / "run", max_params=model.num_params())[0].num_params() == model.num_params()


def test_a_header_nested_past_the_parsers_depth_is_damage_not_a_crash(tmp_path):
    """D6: deeply nested JSON in a header raised RecursionError, which escaped the listing and stopped the app."""
    run = tmp_path / "nested"
    run.mkdir()
    save_file({"x": torch.zeros(1)}, str(run / RunDir.WEIGHTS), metadata={"charrnn": "[" * 200_000 + "]" * 200_000})
    with pytest.raises(CheckpointError, match="corrupt charrnn header"):
        weights.read_weights_header(run / RunDir.WEIGHTS)
    assert list_runs(tmp_path) == []                       # skipped, and the listing goes on
