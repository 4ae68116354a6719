"""Looking inside a trained model: next-character distributions, temperature, unit activations.

The app draws these; the computations live here so they are tested once.
Activations come from stepping the model one character at a time, which
exposes every step's hidden and cell state (the fused call returns only the last).
"""
from __future__ import annotations

import math
import unicodedata

import torch

from charrnn.model import CharRNN
from charrnn.sample import Stepper, default_start, generate_with_probs, next_distribution
from charrnn.vocab import Vocab

READABLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"}   # other spaces, controls, formats: shown by code


def readable(ch: str) -> str:
    """A visible stand-in for whitespace and other invisible characters (space, newline, tab, U+202F...)."""
    if ch in READABLE:
        return READABLE[ch]
    if unicodedata.category(ch) in INVISIBLE:
        return f"U+{ord(ch):04X}"
    return ch


@torch.no_grad()
def next_char_logits(model: CharRNN, vocab: Vocab, text: str, unknown: str = "drop") -> torch.Tensor:
    """Logits (V,) of the character after ``text`` (an empty text means the default start)."""
    text = vocab.clean(text, unknown) or default_start(vocab)
    model.eval()
    return Stepper(model).prime(vocab.encode(text).long().to(model.head.weight.device)).float().cpu()


def entropy_bits(probs: torch.Tensor) -> float:
    """Shannon entropy of a distribution in bits (0 for a one-hot)."""
    p = probs[probs > 0]
    return max(0.0, float(-(p * p.log2()).sum()))


def next_char_distribution(model: CharRNN, vocab: Vocab, text: str, temperature: float,
                           k: int = 15) -> tuple[list[tuple[str, float]], float]:
    """The ``k`` likeliest next characters with probabilities at ``temperature``, and the entropy in bits."""
    return top_distribution(next_char_logits(model, vocab, text), vocab, temperature, k)


def top_distribution(logits: torch.Tensor, vocab: Vocab, temperature: float,
                     k: int = 15) -> tuple[list[tuple[str, float]], float]:
    """Same as next_char_distribution from precomputed logits (cheap: redrawn as a slider moves)."""
    probs = next_distribution(logits, temperature)
    values, ids = torch.topk(probs, min(k, len(vocab)))
    return [(vocab.chars[i], float(v)) for v, i in zip(values, ids.tolist(), strict=True)], entropy_bits(probs)


def generate_at_temperatures(model: CharRNN, vocab: Vocab, prime: str, length: int,
                             temperatures: list[float], seed: int = 0, unknown: str = "drop",
                             top_k: int | None = None) -> dict[float, list[tuple[str, float]]]:
    """The same prime and seed sampled at each temperature: {T: [(char, prob), ...]}.

    Each column is exactly what ``generate`` (the Output, the CLI, the page) writes at its temperature with
    that seed: character n of every column is drawn with number n of the seed's one stream.
    """
    return {t: list(generate_with_probs(model, vocab, prime, length, t, top_k, seed, unknown))
            for t in temperatures}


@torch.no_grad()
def activations(model: CharRNN, vocab: Vocab, text: str, layer: int = -1,
                unknown: str = "drop") -> dict[str, torch.Tensor]:
    """Per-character hidden and cell activations of one layer: {'hidden': (T, H), 'cell': (T, H)}.

    Row t is the state after reading character t. GRU and RNN have no cell state;
    their 'cell' is their hidden state.
    """
    text = vocab.clean(text, unknown)
    layer = layer % model.config.layers
    stepper = Stepper(model)
    model.eval()
    hidden, cell = [], []
    for idx in vocab.encode(text).tolist():
        if stepper.state is None:
            stepper.prime(torch.tensor([idx], device=model.head.weight.device))
        else:
            stepper.step(idx)
        h, c = stepper.state if isinstance(stepper.state, tuple) else (stepper.state, stepper.state)
        hidden.append(h[layer, 0].float().cpu())
        cell.append(c[layer, 0].float().cpu())
    empty = torch.zeros(0, model.config.hidden)
    return {"hidden": torch.stack(hidden) if hidden else empty, "cell": torch.stack(cell) if cell else empty}


# --- what a unit might track ----------------------------------------------------------
OPEN_QUOTES, CLOSE_QUOTES = "“«„", "”»"      # curly and angle quotes open and close; straight ones toggle


def text_features(text: str) -> dict[str, torch.Tensor]:
    """Simple per-character features of ``text`` (each a (T,) float tensor)."""
    in_quotes, position, after_newline, upper_line = [], [], [], []
    quoted, col = False, 0
    for line in text.split("\n"):
        letters = [c for c in line if c.isalpha()]
        upper_line.extend([bool(letters) and all(c.isupper() for c in letters)] * (len(line) + 1))
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch in OPEN_QUOTES:
            quoted = True
        elif ch in CLOSE_QUOTES:
            quoted = False
        in_quotes.append(quoted)
        position.append(col)
        after_newline.append(i > 0 and text[i - 1] == "\n")
        col = 0 if ch == "\n" else col + 1
    upper_line = upper_line[:len(text)]
    as_tensor = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    return {"inside quotes": as_tensor(in_quotes), "position in line": as_tensor(position),
            "after a newline": as_tensor(after_newline), "upper-case line": as_tensor(upper_line)}


def correlations(acts: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each unit's activation (T, H) with a feature (T,): (H,)."""
    a = acts - acts.mean(0)
    f = feature - feature.mean()
    denom = a.norm(dim=0) * f.norm()
    return torch.where(denom > 0, (a * f[:, None]).sum(0) / denom.clamp_min(1e-12), torch.zeros_like(denom))


def suggest_units(model: CharRNN, vocab: Vocab, text: str, kind: str = "cell",
                  layer: int = -1) -> list[dict]:
    """For each simple feature, the unit whose activation correlates best with it (by |r|)."""
    acts = activations(model, vocab, text, layer)[kind]
    text = vocab.clean(text, "drop")
    found = []
    for name, feature in text_features(text).items():
        if len(acts) < 2 or feature.std() == 0:
            continue
        r = correlations(acts, feature)
        unit = int(r.abs().argmax())
        if math.isfinite(float(r[unit])):
            found.append({"feature": name, "unit": unit, "r": float(r[unit])})
    return sorted(found, key=lambda d: -abs(d["r"]))
