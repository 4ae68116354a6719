"""One seed, one text, in every Python engine: the CLI (`charrnn generate --seed`), the Output's stream
(generation_stream), Compare temperatures' column and charrnn.sample write the same characters for the same
seed, prime, temperature, top-k and length: on the bundled model and on tiny LSTM, GRU and RNN models, with
primes the model has to fold. (The page's text against these: tests/test_browser_one_stream.py.)"""
from __future__ import annotations

import pytest
import torch
from app_fixtures import corpus_text
from html_reading import columns

from charrnn.cli import main
from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.store import RunDir, load_checkpoint
from charrnn.sample import generate
from charrnn.vocab import Vocab
from webui.context import AppContext
from webui.generate.generation import SIDE_TEMPERATURES, compare_temperatures, generation_stream
from webui.models import BUNDLED_KEY, resolve_checkpoint
from webui.settings import Settings

# (prime, temperature, length, top-k, seed): the case, a prime to fold, top-k, a seed past 2^53, greedy
BUNDLED_CASES = [("ROMEO:", 0.8, 200, None, 1), ("Łódź ø Привет", 0.8, 200, None, 1),
                 ("“Hark!” — JULIET…", 1.2, 200, 10, 2**60 + 3), ("ROMEO:", 0.0, 120, None, 1)]
TINY_CASES = [("the cat", 0.8, 150, None, 1), ("Thé ñ ß", 1.6, 150, 5, 42)]
CELLS = ("lstm", "gru", "rnn")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """An app context offering the bundled model and tiny runs named after their cells."""
    root = tmp_path_factory.mktemp("one-stream") / "ckpts"
    vocab = Vocab.from_text(corpus_text())
    for cell in CELLS:
        torch.manual_seed(0)
        model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=16, layers=2, cell=cell))
        (root / cell).mkdir(parents=True)
        RunDir(root / cell).keep(model, vocab, {"run": cell, "step": 1})
    return AppContext(Settings(root=root))


def cli_text(ctx, key, prime, temperature, length, top_k, seed, capsys) -> str:
    weights = resolve_checkpoint(ctx.settings, key)
    args = ["--checkpoints", str(ctx.settings.root), "generate", "--checkpoint", str(weights), "--prime", prime,
            "--temperature", str(temperature), "--length", str(length), "--seed", str(seed), "--unknown", "fold",
            *(["--top-k", str(top_k)] if top_k else [])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n")
    return out[:-1]


def every_engine(ctx, key, prime, temperature, length, top_k, seed, capsys) -> dict[str, str]:
    """The prime used and the text after it, as each engine writes it."""
    model, vocab, _ = load_checkpoint(resolve_checkpoint(ctx.settings, key))
    used = vocab.clean(prime, "fold")
    texts = {"charrnn.sample": used + "".join(generate(model, vocab, used, length, temperature, top_k, seed)),
             "CLI": cli_text(ctx, key, prime, temperature, length, top_k, seed, capsys),
             "Output": list(generation_stream(ctx, key, prime, temperature, length, top_k or 0, seed))[-1].text}
    if temperature in SIDE_TEMPERATURES:
        column = columns(compare_temperatures(ctx, key, prime, seed, length=length, top_k=top_k))[f"{temperature:g}"]
        texts["Compare temperatures"] = used + column
    return texts


@pytest.mark.parametrize("prime, temperature, length, top_k, seed", BUNDLED_CASES)
def test_every_engine_writes_the_same_text_with_the_bundled_model(ctx, capsys, prime, temperature, length, top_k,
                                                                   seed):
    texts = every_engine(ctx, BUNDLED_KEY, prime, temperature, length, top_k, seed, capsys)
    assert len(set(texts.values())) == 1, texts
    assert len(texts["CLI"]) > length


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("prime, temperature, length, top_k, seed", TINY_CASES)
def test_every_engine_writes_the_same_text_with_tiny_models(ctx, capsys, cell, prime, temperature, length, top_k,
                                                             seed):
    texts = every_engine(ctx, cell, prime, temperature, length, top_k, seed, capsys)
    assert len(set(texts.values())) == 1, texts


def test_every_column_of_compare_temperatures_is_the_outputs_text_at_its_temperature(ctx):
    got = columns(compare_temperatures(ctx, BUNDLED_KEY, "ROMEO:", 1, length=100))
    for t in SIDE_TEMPERATURES:
        gen = list(generation_stream(ctx, BUNDLED_KEY, "ROMEO:", t, 100, 0, 1))[-1]
        assert "".join(gen.chars) == got[f"{t:g}"], t
