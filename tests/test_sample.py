"""Sampling: the stepper matches the fused forward, greedy is argmax, seeds repeat, the random stream is
SplitMix64 (the page computes the same numbers), arguments are checked."""
import math
import re

import numpy as np
import pytest
import torch

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.sample import Sampler, Stepper, default_start, generate, generate_with_probs, next_distribution, uniforms
from charrnn.vocab import UnknownCharacterError, Vocab


def sharpened(model: CharRNN, factor: float = 20.0) -> CharRNN:
    """The same model with its output logits scaled, so the top choice is never a near-tie."""
    with torch.no_grad():
        model.head.weight.mul_(factor)
        model.head.bias.mul_(factor)
    return model


def text_of(model, vocab, prime="", length=40, temperature=1.0, seed=0, **kw) -> str:
    return "".join(generate(model, vocab, prime, length, temperature, seed=seed, **kw))


# --- the stepper ---------------------------------------------------------------------
@pytest.mark.parametrize("cell, layers", [("lstm", 1), ("lstm", 2), ("lstm", 3), ("gru", 1), ("gru", 2), ("rnn", 2)])
def test_stepping_one_character_at_a_time_equals_the_fused_forward(cell, layers):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=30, embed=12, hidden=24, layers=layers, cell=cell,
                                dropout=0.2 if layers > 1 else 0.0)).eval()
    ids = torch.randint(0, 30, (40,))
    fused, _, _ = model(ids[None])                                            # (1, T, V)
    stepper = Stepper(model)
    stepped = [stepper.prime(ids[:1])] + [stepper.step(int(i)) for i in ids[1:]]
    torch.testing.assert_close(torch.stack(stepped), fused[0], atol=1e-5, rtol=1e-5)


def test_stepping_after_a_long_prime_continues_its_state():
    torch.manual_seed(1)
    model = CharRNN(ModelConfig(vocab_size=20, embed=8, hidden=16, layers=2)).eval()
    ids = torch.randint(0, 20, (30,))
    fused, _, _ = model(ids[None])
    stepper = Stepper(model)
    stepper.prime(ids[:25])
    for t in range(25, 30):
        torch.testing.assert_close(stepper.step(int(ids[t])), fused[0, t], atol=1e-5, rtol=1e-5)


# --- greedy, seeds, lengths --------------------------------------------------------------
@pytest.mark.parametrize("prime", ["the ", ""])
def test_zero_temperature_picks_the_argmax_at_every_step(model, vocab, prime):
    out = text_of(model, vocab, prime, length=60, temperature=0.0)
    context = (prime or default_start(vocab)) + out
    logits, _, _ = model(vocab.encode(context).long()[None])                 # (1, T, V)
    start = len(prime or default_start(vocab)) - 1
    greedy = logits[0, start:start + len(out)].argmax(-1)
    assert vocab.decode(greedy) == out


def test_zero_temperature_reports_probability_one(model, vocab):
    assert all(p == 1.0 for _, p in generate_with_probs(model, vocab, "the", 20, 0.0))


def test_same_seed_gives_the_same_text(model, vocab):
    assert text_of(model, vocab, "the", seed=42) == text_of(model, vocab, "the", seed=42)


def test_different_seeds_give_different_text(model, vocab):
    texts = {text_of(model, vocab, "the", length=100, seed=s) for s in range(4)}
    assert len(texts) == 4


@pytest.mark.parametrize("length", [0, 1, 57])
def test_exactly_length_characters_are_generated(model, vocab, length):
    out = list(generate(model, vocab, "the", length, 1.0, seed=0))
    assert len(out) == length
    assert all(len(ch) == 1 and ch in vocab.stoi for ch in out)


def test_empty_prime_starts_from_the_default_start(model, vocab):
    assert default_start(vocab) == "\n"
    assert text_of(model, vocab, "", seed=3) == text_of(model, vocab, "\n", seed=3)


def test_default_start_falls_back_to_space_then_the_first_character():
    assert default_start(Vocab("ab ")) == " "
    assert default_start(Vocab("xy")) == "x"


def test_sampling_without_a_seed_leaves_the_global_rng_alone(model, vocab):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(generate(model, vocab, "the", 5, 1.0))                               # seed=None
    assert torch.equal(torch.rand(3), expected)


# --- the random stream and the sampling rule ------------------------------------------------
def test_the_stream_is_splitmix64s_outputs_top_53_bits():
    # SplitMix64 seeded 0 begins 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 (as Vigna's splitmix64.c writes it)
    assert uniforms(0, 0, 2).tolist() == [(0xE220A8397B1DCDAF >> 11) / 2**53, (0x6E789E6AA1B965F4 >> 11) / 2**53]


def test_a_block_of_the_stream_is_the_same_numbers_wherever_it_starts():
    whole = uniforms(123, 0, 3000)
    assert np.array_equal(uniforms(123, 1024, 1000), whole[1024:2024])
    assert ((0 <= whole) & (whole < 1)).all() and abs(whole.mean() - 0.5) < 0.02


def test_a_seed_is_taken_modulo_2_to_the_64():
    assert np.array_equal(uniforms(-1, 0, 5), uniforms(2**64 - 1, 0, 5))
    assert np.array_equal(uniforms(2**64 + 7, 0, 5), uniforms(7, 0, 5))
    assert not np.array_equal(uniforms(2**63 - 1, 0, 5), uniforms(2**31 - 1, 0, 5))


@pytest.mark.parametrize("temperature", [0.3, 1.0])
def test_character_n_is_drawn_with_number_n_of_the_stream_by_inverse_cdf(temperature):
    draw = Sampler(temperature, None, seed=5)
    picks = [draw(np.zeros(4, dtype=np.float32))[0] for _ in range(2500)]    # 4 equal chances: pick = floor(4u)
    assert picks == np.floor(4 * uniforms(5, 0, 2500)).astype(int).tolist()   # across blocks of 1024 too


def test_the_pick_is_the_first_running_sum_above_u_times_the_total():
    logits = np.log(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))       # chances 0.1, 0.2, 0.3, 0.4
    draw = Sampler(1.0, None, seed=0)
    for u, want in ((0.0, 0), (0.09, 0), (0.11, 1), (0.29, 1), (0.31, 2), (0.61, 3), (0.999999, 3)):
        idx, p = draw.pick(logits, u)
        assert idx == want and p == pytest.approx((want + 1) / 10)
    assert Sampler(1.0, 2, seed=0).pick(logits, 0.0)[0] == 2                  # top-2: chances 3/7, 4/7


# --- prime characters ----------------------------------------------------------------------
def test_unknown_prime_characters_raise_naming_them(model, vocab):
    with pytest.raises(UnknownCharacterError) as info:
        list(generate(model, vocab, "the €uro café", 5))
    assert info.value.chars == sorted(["€", "é", "f"])
    assert "'€'" in str(info.value)


def test_unknown_prime_characters_can_be_dropped(model, vocab):
    assert text_of(model, vocab, "the€ ", seed=1, unknown="drop") == text_of(model, vocab, "the ", seed=1)


def test_unknown_prime_characters_can_be_folded(model, vocab):
    assert text_of(model, vocab, "thé ", seed=1, unknown="fold") == text_of(model, vocab, "the ", seed=1)


# --- temperature --------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1e-4, 1e-30, 1e-300])
def test_tiny_temperature_is_greedy_without_overflow(model, vocab, temperature):
    sharpened(model)
    pairs = list(generate_with_probs(model, vocab, "the ", 40, temperature, seed=0))
    assert all(math.isfinite(p) and 0 < p <= 1 for _, p in pairs)
    assert "".join(ch for ch, _ in pairs) == text_of(model, vocab, "the ", 40, 0.0)


def test_next_distribution_is_finite_for_huge_logits_and_tiny_temperature():
    logits = torch.tensor([1e4, -1e4, 3e3, 0.0])
    for t in (1e-4, 1e-40, 1e-300):
        probs = next_distribution(logits, t)
        assert torch.isfinite(probs).all()
        assert probs.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_temperature_one_is_the_plain_softmax():
    logits = torch.tensor([2.0, 1.0, 0.5])
    torch.testing.assert_close(next_distribution(logits, 1.0), torch.softmax(logits, -1))


def test_top_k_keeps_only_the_k_likeliest():
    probs = next_distribution(torch.tensor([3.0, 1.0, 2.0, 0.0]), 1.0, top_k=2)
    assert probs[1] == 0 and probs[3] == 0
    assert probs[0] > probs[2] > 0 and probs.sum().item() == pytest.approx(1.0)


def test_top_k_one_samples_the_argmax(model, vocab):
    assert text_of(model, vocab, "the", temperature=1.5, top_k=1, seed=9) == text_of(model, vocab, "the",
                                                                                       temperature=0.0)


# --- argument checks ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(temperature=-0.1), dict(temperature=math.nan), dict(temperature=math.inf), dict(temperature="hot"),
    dict(top_k=0), dict(top_k=-1), dict(top_k=10_000), dict(top_k=2.5),
    dict(length=-1), dict(length=2.5), dict(length="10"), dict(length=10**9),
])
def test_invalid_sampling_arguments_raise_value_error(model, vocab, kwargs):
    args = {"prime": "the", "length": 5, "temperature": 0.8, "top_k": None, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        list(generate(model, vocab, **args))


def test_top_k_equal_to_the_vocabulary_size_is_allowed(model, vocab):
    assert len(list(generate(model, vocab, "the", 5, 1.0, top_k=len(vocab), seed=0))) == 5


def test_top_k_error_names_the_vocabulary_size(model, vocab):
    with pytest.raises(ValueError, match=re.escape(f"({len(vocab)})")):
        list(generate(model, vocab, "the", 5, 1.0, top_k=len(vocab) + 1))
