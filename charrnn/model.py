"""The character model: embedding -> recurrent layer(s) -> linear over the vocabulary.

Training runs one fused ``nn.LSTM`` (or GRU / RNN) call over a whole (B, T)
batch. ``nn.LSTM`` layer 0 holds exactly the weights of the lecture's
``nn.LSTMCell``, so this is the lecture's model, trained faster.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .options import option

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@dataclass
class ModelConfig:
    vocab_size: int = 100            # set from the corpus, never a flag
    embed: int = option(100, "embedding size: numbers per input character", label="Embedding size")
    hidden: int = option(128, "hidden units per layer: the model's memory and most of its size",
                         label="Hidden size")
    layers: int = option(1, "recurrent layers stacked on each other")
    dropout: float = option(0.0, "fraction of units dropped in training, against overfitting (0 = off)")
    input_dropout: float = option(0.0, "fraction of the embedding's numbers dropped in training before the "
                                  "recurrent layer reads them, against overfitting (0 = off)")
    cell: str = option("lstm", "recurrent cell", choices=("lstm", "gru", "rnn"))

    def __post_init__(self):
        check_range("vocab_size", self.vocab_size, 1, 1_114_112)
        check_range("embed", self.embed, 1, 4096)
        check_range("hidden", self.hidden, 1, 4096)
        check_range("layers", self.layers, 1, 8)
        check_range("dropout", self.dropout, 0.0, 0.9)
        check_range("input_dropout", self.input_dropout, 0.0, 0.9)
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def check_range(name: str, value, low, high) -> None:
    """Refuse a hyperparameter outside [low, high], naming the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(low, int) and isinstance(high, int) and not isinstance(value, int):
        if float(value) != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not (low <= value <= high):
        raise ValueError(f"{name}={value!r} is out of range; allowed {low} to {high}")


class CharRNN(nn.Module):
    """forward(idx, targets=None, state=None) -> (logits, loss, state)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed)
        self.rnn = CELLS[config.cell](
            config.embed, config.hidden, num_layers=config.layers, batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.drop_in = nn.Dropout(config.input_dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, idx, targets=None, state=None):
        x = self.drop_in(self.embed(idx.long()))          # (B, T, E)
        out, state = self.rnn(x, state)                   # (B, T, H)
        logits = self.head(self.drop(out))                # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1).long())
        return logits, loss, state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def count_params(config: ModelConfig) -> int:
    """Parameters of the model ``config`` describes, built on the meta device (no memory, any size)."""
    with torch.device("meta"):
        return CharRNN(config).num_params()

