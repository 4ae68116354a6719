"""The model: the fused LSTM is the lecture's LSTMCell loop, the forward contract, and config checks."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.store import RunDir, load_checkpoint


def test_fused_lstm_equals_the_lecture_lstmcell_loop():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=100, embed=100, hidden=128)).eval()
    cell = nn.LSTMCell(100, 128)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(model.rnn, f"{name}_l0"))
    idx = torch.randint(0, 100, (3, 25))                                 # (B, T)
    logits, _, _ = model(idx)

    h = c = torch.zeros(3, 128)
    steps = []
    with torch.no_grad():
        emb = model.embed(idx)                                           # (B, T, E)
        for t in range(idx.size(1)):
            h, c = cell(emb[:, t], (h, c))
            steps.append(model.head(h))                                  # (B, V)
    looped = torch.stack(steps, dim=1)                                   # (B, T, V)
    assert logits.shape == (3, 25, 100)
    torch.testing.assert_close(logits, looped, atol=1e-5, rtol=1e-5)


def test_loss_is_cross_entropy_of_the_logits():
    torch.manual_seed(1)
    model = CharRNN(ModelConfig(vocab_size=20, embed=8, hidden=16))
    x, y = torch.randint(0, 20, (4, 9)), torch.randint(0, 20, (4, 9))
    logits, loss, _ = model(x, y)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.reshape(-1, 20), y.reshape(-1)).item())


def test_untrained_loss_is_near_uniform():
    torch.manual_seed(2)
    model = CharRNN(ModelConfig(vocab_size=50, embed=16, hidden=32))
    x, y = torch.randint(0, 50, (8, 32)), torch.randint(0, 50, (8, 32))
    assert model(x, y)[1].item() == pytest.approx(math.log(50), abs=0.2)


def test_no_targets_means_no_loss():
    model = CharRNN(ModelConfig(vocab_size=5, embed=4, hidden=4))
    assert model(torch.zeros(1, 3, dtype=torch.long))[1] is None


def test_compact_uint8_ids_are_accepted():
    model = CharRNN(ModelConfig(vocab_size=5, embed=4, hidden=4)).eval()
    ids = torch.tensor([[0, 4, 2]])
    torch.testing.assert_close(model(ids.to(torch.uint8))[0], model(ids)[0])


@pytest.mark.parametrize("cell, layers", [("lstm", 1), ("lstm", 2), ("gru", 2), ("rnn", 1)])
def test_carrying_the_state_across_chunks_equals_one_call(cell, layers):
    torch.manual_seed(3)
    model = CharRNN(ModelConfig(vocab_size=12, embed=6, hidden=10, layers=layers, cell=cell)).eval()
    idx = torch.randint(0, 12, (2, 20))
    whole, _, _ = model(idx)
    first, _, state = model(idx[:, :7])
    second, _, _ = model(idx[:, 7:], state=state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-6, rtol=1e-5)


def test_num_params_counts_every_weight():
    model = CharRNN(ModelConfig(vocab_size=10, embed=4, hidden=8))
    expected = 10 * 4 + (4 * 8 * (4 + 8) + 2 * 4 * 8) + (8 * 10 + 10)
    assert model.num_params() == expected


@pytest.mark.parametrize("bad", [
    dict(hidden=0), dict(hidden=-5), dict(embed=2.5), dict(layers=9), dict(dropout=1.0), dict(input_dropout=0.95),
    dict(vocab_size=0), dict(cell="transformer"), dict(hidden=True), dict(hidden="128"),
])
def test_config_refuses_values_out_of_range(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_config_error_names_the_field_and_the_allowed_range():
    with pytest.raises(ValueError, match=r"hidden=0 is out of range; allowed 1 to 4096"):
        ModelConfig(hidden=0)


def test_config_round_trips_through_a_dict():
    cfg = ModelConfig(vocab_size=33, embed=7, hidden=9, layers=2, dropout=0.1, cell="gru")
    assert ModelConfig(**cfg.to_dict()) == cfg


def test_input_dropout_drops_embedding_numbers_in_training_only():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=20, embed=16, hidden=8, input_dropout=0.5))
    idx = torch.randint(0, 20, (4, 12))
    seen = []
    model.drop_in.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out)))
    model.train()
    model(idx)
    embedded, dropped = seen[-1]
    zeroed = (dropped == 0) & (embedded != 0)
    assert 0.3 < zeroed.float().mean().item() < 0.7                     # about half dropped
    kept = dropped != 0
    assert torch.allclose(dropped[kept], embedded[kept] * 2)           # the rest scaled by 1 / (1 - p)
    model.eval()
    first, _, _ = model(idx)
    again, _, _ = model(idx)
    assert torch.equal(first, again) and torch.equal(seen[-1][0], seen[-1][1])   # evaluation drops nothing


def test_a_checkpoint_from_before_input_dropout_loads_with_it_off(tmp_path):
    """A checkpoint written before input_dropout existed names no such field in its header: it loads with it off."""
    from charrnn.vocab import Vocab

    vocab = Vocab.from_text("abc def\n")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=4, hidden=8, dropout=0.3))
    old = {k: v for k, v in model.config.to_dict().items() if k != "input_dropout"}
    RunDir(tmp_path).keep(model, vocab, {"model_config": old, "step": 1})
    loaded, _, header = load_checkpoint(tmp_path)
    assert "input_dropout" not in header["model_config"]
    assert loaded.config.input_dropout == 0.0 and loaded.config.dropout == 0.3
    pairs = zip(loaded.state_dict().values(), model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
