"""Streaming text generation from a trained model, one character at a time.

The prime is fed in one fused call; each new character is then one small
recurrent step carrying the state. For an LSTM the embedding's input
projection is precomputed into a (V, 4H) table, so a step is one lookup, one
matrix-vector product and a few pointwise ops per layer.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .model import CharRNN
from .vocab import Vocab

DEFAULT_STARTS = ("\n", " ")
MAX_LENGTH = 1_000_000
MAX_TOP_K_NOTE = "top_k must be between 1 and the vocabulary size"


def default_start(vocab: Vocab) -> str:
    """Where an empty prime starts: a newline (start of a line), else a space, else the first character."""
    for c in DEFAULT_STARTS:
        if c in vocab.stoi:
            return c
    return vocab.chars[0]


class Stepper:
    """Runs the model one character at a time, carrying the recurrent state."""

    def __init__(self, model: CharRNN):
        self.model = model
        self.cfg = model.config
        self.state = None
        self.fast = self.cfg.cell == "lstm"
        if self.fast:
            rnn = model.rnn
            with torch.no_grad():
                emb = model.embed.weight                                         # (V, E)
                self.table = torch.addmm(rnn.bias_ih_l0 + rnn.bias_hh_l0, emb, rnn.weight_ih_l0.t())  # (V, 4H)
                self.w_hh = [getattr(rnn, f"weight_hh_l{k}").t().contiguous() for k in range(self.cfg.layers)]
                self.w_ih = [None] + [getattr(rnn, f"weight_ih_l{k}").t().contiguous()
                                      for k in range(1, self.cfg.layers)]
                self.bias = [None] + [getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}")
                                      for k in range(1, self.cfg.layers)]
                self.head_w = model.head.weight.t().contiguous()                 # (H, V)
                self.head_b = model.head.bias

    @torch.no_grad()
    def prime(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ids (T,) in one fused call; return the logits (V,) after the last one."""
        logits, _, state = self.model(ids[None, :], state=self.state)            # (1, T, V)
        self.state = state
        return logits[0, -1]

    @torch.no_grad()
    def step(self, idx: int) -> torch.Tensor:
        """Feed one character id; return the next-character logits (V,)."""
        if not self.fast:
            return self.prime(torch.tensor([idx], device=self.head_device))
        h, c = self.state
        h, c = list(h.unbind(0)), list(c.unbind(0))                              # L x (1, H)
        x = self.table[idx:idx + 1]                                              # (1, 4H)
        for k in range(self.cfg.layers):
            gates = torch.addmm(x, h[k], self.w_hh[k]) if k == 0 else \
                torch.addmm(torch.addmm(self.bias[k], x, self.w_ih[k]), h[k], self.w_hh[k])
            i, f, g, o = gates.chunk(4, dim=1)
            c[k] = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
            h[k] = torch.sigmoid(o) * torch.tanh(c[k])
            x = h[k]
        self.state = (torch.stack(h), torch.stack(c))
        return torch.addmm(self.head_b, x, self.head_w)[0]

    @property
    def head_device(self):
        return self.model.head.weight.device


def next_distribution(logits: torch.Tensor, temperature: float, top_k: int | None = None) -> torch.Tensor:
    """Probabilities (V,) of the next character: softmax(logits / T), stable for small T; T=0 is one-hot argmax."""
    logits = logits.float()
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if temperature <= 0:
        return F.one_hot(logits.argmax(), logits.numel()).float()
    return torch.softmax(logits / temperature, dim=-1)


def check_sampling_args(vocab: Vocab, length: int, temperature: float, top_k: int | None) -> None:
    """Refuse arguments that cannot be sampled with, saying the allowed range."""
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be a whole number from 0 to {MAX_LENGTH:,}, got {length!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or not 1 <= top_k <= len(vocab)):
        raise ValueError(f"{MAX_TOP_K_NOTE} ({len(vocab)}), got {top_k!r}")


def generate_with_probs(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
                        temperature: float = 0.8, top_k: int | None = None, seed: int | None = None,
                        unknown: str = "error") -> Iterator[tuple[str, float]]:
    """Yield (character, probability it was sampled with) for exactly ``length`` new characters."""
    check_sampling_args(vocab, length, temperature, top_k)
    prime = vocab.clean(prime, unknown) or default_start(vocab)
    model.eval()
    device = model.head.weight.device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed if seed is not None else torch.seed())
    stepper = Stepper(model)
    logits = stepper.prime(vocab.encode(prime).long().to(device))
    for _ in range(length):
        probs = next_distribution(logits, temperature, top_k)
        idx = int(torch.multinomial(probs, 1, generator=gen)) if temperature > 0 else int(probs.argmax())
        yield vocab.chars[idx], float(probs[idx])
        logits = stepper.step(idx)


def generate(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
             temperature: float = 0.8, top_k: int | None = None, seed: int | None = None,
             unknown: str = "error") -> Iterator[str]:
    """Yield exactly ``length`` new characters, one at a time, continuing ``prime``."""
    for ch, _ in generate_with_probs(model, vocab, prime, length, temperature, top_k, seed, unknown):
        yield ch
