"""Generation for the page: streamed text with each character's probability, the same prime at several
temperatures, and the next-character distribution after any position. No gradio: refusals are
``UserError``; warnings go to the ``warn`` callback the caller passes (the page shows them as toasts)."""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from charrnn.inside import generate_at_temperatures, next_char_logits, top_distribution
from charrnn.sample import generate_with_probs
from webui.checks import check_generation_args, check_temperature, finite
from webui.context import AppContext
from webui.errors import UserError
from webui.generate.view import distribution_frame, distribution_line, temperature_columns
from webui.models import load_model
from webui.prime import Warn, ignore, usable_prime

TOP_CHARS = 15                            # bars in the next-character chart
SIDE_TEMPERATURES = (0.2, 0.5, 0.8, 1.2, 1.6)
SIDE_LENGTH = 200                         # characters per temperature, side by side


@dataclass
class Generation:
    """A generation as it grows: the prime used, and each new character with the probability it was drawn with."""

    prime: str
    chars: list[str] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.prime + "".join(self.chars)

    def record(self, temperature: float, top_k: int | None) -> dict:
        """What the confidence view draws once the generation is complete."""
        return {"text": self.text, "start": len(self.prime), "probs": list(self.probs),
                "temperature": float(temperature), "top_k": int(top_k) if top_k else None}


def check_top_k(top_k: int | None, vocab) -> None:
    """Refuse a top-k over the vocabulary size, saying the allowed range."""
    if top_k is not None and top_k > len(vocab):
        raise UserError(f"Top-k must be from 1 to {len(vocab)} (this model's vocabulary size); 0 or blank = off.")


def generation_stream(ctx: AppContext, checkpoint, prime, temperature, length, top_k, seed,
                      warn: Warn = ignore, clock: Callable[[], float] = time.monotonic) -> Iterator[Generation]:
    """Validate, then yield the growing Generation: with the prime, every ``settings.stream_seconds``, and at
    the end (one object, updated in place).

    By time, not by characters: the page redraws the text at each update, and an update every few
    characters kept the browser too busy to notice the Stop button.
    """
    prime, temperature, length, top_k, seed = check_generation_args(ctx.settings, prime, temperature, length, top_k,
                                                                    seed)
    model, vocab, _ = load_model(ctx.settings, ctx.models, checkpoint)
    check_top_k(top_k, vocab)
    gen = Generation(usable_prime(vocab, prime, warn, most=ctx.settings.max_prime))
    yield gen
    every, last = ctx.settings.stream_seconds, clock()
    for ch, p in generate_with_probs(model, vocab, gen.prime, length, temperature, top_k, seed):
        gen.chars.append(ch)
        gen.probs.append(p)
        if (now := clock()) - last >= every:
            last = now
            yield gen
    yield gen


def compare_temperatures(ctx: AppContext, checkpoint, prime, seed, warn: Warn = ignore,
                         length: int = SIDE_LENGTH, top_k=None) -> str:
    """One click: the prime continued at each of SIDE_TEMPERATURES with one seed, in columns (each the Output's
    text at that temperature, seed and top-k)."""
    prime, _, length, top_k, seed = check_generation_args(ctx.settings, prime, 1.0, length, top_k, seed)
    model, vocab, _ = load_model(ctx.settings, ctx.models, checkpoint)
    check_top_k(top_k, vocab)
    prime = usable_prime(vocab, prime, warn, most=ctx.settings.max_prime)
    seed = seed or secrets.randbelow(2**31 - 1) + 1          # 0 = random: draw one, shared by every column
    runs = generate_at_temperatures(model, vocab, prime, length, list(SIDE_TEMPERATURES), seed=seed, top_k=top_k)
    return temperature_columns(prime, runs, seed)


def next_char(ctx: AppContext, checkpoint, text, position, temperature) -> tuple[pd.DataFrame, str]:
    """Bars of the likeliest characters after ``position`` characters of ``text``, and a line on them.

    The logits depend on the model and the text read, not on the temperature, so they are
    memoised: moving the temperature slider only redoes the softmax.
    """
    temperature = check_temperature(temperature)
    model, vocab, key = load_model(ctx.settings, ctx.models, checkpoint)
    text = text if isinstance(text, str) else ""
    pos = min(max(int(position), 0), len(text)) if finite(position) else len(text)
    read = vocab.clean(text[:pos][-ctx.settings.max_read:], "fold")
    logits = ctx.logits.get((key, read), lambda: next_char_logits(model, vocab, read))
    dist, entropy = top_distribution(logits, vocab, temperature, k=len(vocab))
    following = text[pos] if pos < len(text) else None
    drawn = [(c, p) for c, p in dist if p > 0]          # at T = 0 one bar: the rest would be labelled at random
    return (distribution_frame(drawn, TOP_CHARS),
            distribution_line(read, following, dict(dist), entropy, temperature, len(vocab)))
