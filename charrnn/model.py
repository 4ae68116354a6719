"""The character model: embedding -> recurrent layer(s) -> linear over the vocabulary.

Training runs one fused ``nn.LSTM`` (or GRU / RNN) call over a whole (B, T)
batch. ``nn.LSTM`` layer 0 holds exactly the weights of the lecture's
``nn.LSTMCell``, so this is the lecture's model, trained faster.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from charrnn.config import ModelConfig

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


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

