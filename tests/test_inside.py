"""Inside the model: distributions under temperature, confidence, side-by-side temperatures, activations."""
import math

import pytest
import torch

from charrnn.config import ModelConfig
from charrnn.inside import (
    activations,
    correlations,
    entropy_bits,
    generate_at_temperatures,
    next_char_distribution,
    next_char_logits,
    readable,
    suggest_units,
    text_features,
    top_distribution,
)
from charrnn.model import CharRNN
from charrnn.sample import Stepper, generate_with_probs
from charrnn.vocab import Vocab

TEXT = 'He said "yes" to me.\nSHE SAID NO.\nand then the end\n' * 3


@pytest.fixture
def model_vocab():
    vocab = Vocab.from_text(TEXT)
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=16, layers=2)).eval()
    return model, vocab


def test_distribution_is_the_softmax_of_logits_over_temperature(model_vocab):
    model, vocab = model_vocab
    logits = next_char_logits(model, vocab, "He sa")
    top, _ = top_distribution(logits, vocab, 0.5, k=len(vocab))
    expected = torch.softmax(logits / 0.5, -1)
    for ch, p in top:
        assert p == pytest.approx(float(expected[vocab.stoi[ch]]), rel=1e-5)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)


def test_lower_temperature_sharpens_and_lowers_entropy(model_vocab):
    model, vocab = model_vocab
    cold, h_cold = next_char_distribution(model, vocab, "He sa", 0.3)
    warm, h_warm = next_char_distribution(model, vocab, "He sa", 1.0)
    hot, h_hot = next_char_distribution(model, vocab, "He sa", 2.0)
    assert cold[0][1] > warm[0][1] > hot[0][1]
    assert h_cold < h_warm < h_hot <= math.log2(len(vocab)) + 1e-6


def test_zero_temperature_is_one_hot_with_zero_entropy(model_vocab):
    model, vocab = model_vocab
    top, h = next_char_distribution(model, vocab, "He", 0.0, k=3)
    assert top[0][1] == 1.0 and top[1][1] == 0.0 and h == 0.0


def test_entropy_of_uniform_is_log2_n():
    assert entropy_bits(torch.full((8,), 1 / 8)) == pytest.approx(3.0)


def test_readable_shows_whitespace():
    assert readable(" ") == "␣" and readable("\n") == "⏎" and readable("a") == "a"


def test_sampled_probability_matches_the_distribution_sampled_from(model_vocab):
    model, vocab = model_vocab
    pairs = list(generate_with_probs(model, vocab, "He", 5, 0.7, seed=3))
    stepper = Stepper(model)
    logits = stepper.prime(vocab.encode("He").long())
    for ch, p in pairs:
        assert p == pytest.approx(float(torch.softmax(logits / 0.7, -1)[vocab.stoi[ch]]), rel=1e-4)
        logits = stepper.step(vocab.stoi[ch])


def test_side_by_side_uses_one_seed_and_greedy_is_repeatable(model_vocab):
    model, vocab = model_vocab
    out = generate_at_temperatures(model, vocab, "He", 30, [0.0, 0.8, 1.6], seed=5)
    assert set(out) == {0.0, 0.8, 1.6} and all(len(v) == 30 for v in out.values())
    again = generate_at_temperatures(model, vocab, "He", 30, [0.8], seed=5)
    assert out[0.8] == again[0.8]
    # colder sampling gives its characters higher probability on average
    mean_p = {t: sum(p for _, p in v) / len(v) for t, v in out.items()}
    assert mean_p[0.0] == 1.0 and mean_p[0.0] > mean_p[1.6]


def test_activations_match_the_fused_forward_state(model_vocab):
    model, vocab = model_vocab
    acts = activations(model, vocab, "He said", layer=-1)
    assert acts["hidden"].shape == (7, 16) and acts["cell"].shape == (7, 16)
    _, _, (h, c) = model(vocab.encode("He said").long()[None])
    assert torch.allclose(acts["hidden"][-1], h[-1, 0], atol=1e-5)
    assert torch.allclose(acts["cell"][-1], c[-1, 0], atol=1e-5)


def test_text_features_mark_quotes_positions_and_upper_case_lines():
    f = text_features('a "b" c\nXY Z\nq')
    assert f["inside quotes"].tolist()[:6] == [0, 0, 1, 1, 0, 0]
    assert f["position in line"].tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    assert f["after a newline"].tolist()[8] == 1
    assert f["upper-case line"].tolist()[8:12] == [1, 1, 1, 1] and f["upper-case line"][0] == 0


def test_correlation_finds_a_unit_that_copies_a_feature():
    feature = torch.tensor([0, 1, 0, 1, 1, 0], dtype=torch.float32)
    acts = torch.randn(6, 4)
    acts[:, 2] = 3 * feature - 1
    r = correlations(acts, feature)
    assert int(r.abs().argmax()) == 2 and r[2] == pytest.approx(1.0, abs=1e-5)


def test_suggest_units_names_a_unit_per_varying_feature(model_vocab):
    model, vocab = model_vocab
    found = suggest_units(model, vocab, TEXT)
    assert {d["feature"] for d in found} == {"inside quotes", "position in line", "after a newline",
                                             "upper-case line"}
    assert all(0 <= d["unit"] < 16 and -1 <= d["r"] <= 1 for d in found)


def test_curly_and_angle_quotes_open_and_close_a_quote():
    f = text_features("a “bc” d «e» f")
    assert f["inside quotes"].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0]   # like a straight quote


def test_invisible_characters_are_named_by_their_code_point():
    assert [readable(c) for c in " \n\u202f\u200bé\x07"] == ["␣", "⏎", "U+202F", "U+200B", "é", "U+0007"]
