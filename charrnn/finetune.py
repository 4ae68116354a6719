"""Start a run from a trained model: the base's shape and weights, its vocabulary extended with a text's new
characters.

The base's characters keep their ids; a new character's embedding row starts at the mean of the base's rows (a
little noise apart, so new characters differ) and its output row at zero weights with the mean output bias: it is
predicted as often as an average character, neither dominant nor dead, until training tells it apart.
"""
from __future__ import annotations

import torch

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.vocab import Vocab

SHAPE = ("cell", "embed", "hidden", "layers")      # what a run started from a base takes from it


class BaseMismatch(ValueError):
    """The base model cannot start this run; the message says why."""


def extended_vocab(base: Vocab, text: str) -> Vocab:
    """The base's characters, in their order, then the text's characters the base lacks (sorted)."""
    return Vocab(base.chars + sorted(set(text) - set(base.chars)))


def shape_config(base: ModelConfig, run: ModelConfig, vocab_size: int, asked: dict | None = None) -> ModelConfig:
    """The run's config on the base's shape: cell, sizes and layers from the base, dropout from the run.

    ``asked``: the model settings the user gave explicitly; one that contradicts the base is refused."""
    for name in SHAPE:
        wanted = (asked or {}).get(name)
        if wanted is not None and wanted != getattr(base, name):
            raise BaseMismatch(f"the base model has {name} {getattr(base, name)!r}, not {wanted!r}: a run started "
                               f"from it takes its shape (leave {name} unset, or train from zero)")
    return ModelConfig(**{**run.to_dict(), **{k: getattr(base, k) for k in SHAPE}, "vocab_size": vocab_size})


def from_base(base: CharRNN, base_vocab: Vocab, vocab: Vocab, config: ModelConfig, seed: int = 0) -> CharRNN:
    """A model of ``config`` holding ``base``'s weights; ``vocab`` starts with ``base_vocab``'s characters."""
    if vocab.chars[:len(base_vocab)] != base_vocab.chars:
        raise BaseMismatch("the run's vocabulary must begin with the base's characters, in the base's order")
    model = CharRNN(config)
    target, n = model.state_dict(), len(base_vocab)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in base.state_dict().items():
            if key == "embed.weight":                                            # (V, E)
                target[key][:n] = value
                noise = torch.randn(len(vocab) - n, value.size(1), generator=gen) * value.std(0) * 0.1
                target[key][n:] = value.mean(0) + noise
            elif key == "head.weight":                                           # (V, H)
                target[key][:n], target[key][n:] = value, 0.0
            elif key == "head.bias":                                             # (V,)
                target[key][:n], target[key][n:] = value, value.mean()
            else:
                target[key].copy_(value)
    model.load_state_dict(target)
    return model
