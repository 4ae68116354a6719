"""Where a new run starts: from zero, from a trained model (fine-tuning), or, with ``auto``, whichever its text wants.

``auto`` reads the run's own held-out split with the base model before any training, as the precision probe
measures before it chooses: the base's loss there, against the text's unigram entropy (what a model that knows only
how often each character comes would score). A base that predicts the text better than that (a ratio at most
BASE_RATIO) starts the run; one that does worse (another language) would cost the run its own shape and unlearning
time, so the run starts from zero. Set model sizes also mean zero: the base's shape is fixed.
Measured with ``python -m bench.recipes --starts`` (bench/RESULTS.md, "Starting from the English base"): the ratio
was 0.57-0.64 on English texts (the base gained 0.09-0.14 nats/char), 0.87 on Python source (gained 0.10) and 1.18
on German (lost 0.02).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Corpus
from charrnn.model import CharRNN
from charrnn.runs.store import PROJECT_DIR

AUTO, NONE = "auto", "none"                      # the two ``init`` values that name no model
BUNDLED_BASE = PROJECT_DIR / "models" / "english-base"     # built by scripts/english_base.py
BASE_RATIO = 1.0             # the base predicts the text better than its character frequencies: start from it
SHAPE_KEYS = ("cell", "embed", "hidden", "layers")


def base_model(env=os.environ) -> Path | None:
    """The base ``auto`` weighs: $CHARRNN_BASE_MODEL (a run folder or .safetensors file; ``none``: no base), else
    the bundled English base; None when there is none."""
    spec = env.get("CHARRNN_BASE_MODEL")
    if spec is not None and spec.strip().lower() in ("", NONE):
        return None
    path = Path(spec) if spec else BUNDLED_BASE
    return path if path.exists() else None


def unigram_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    """Nats per character of the text's character frequencies: a model that knows nothing else scores this."""
    counts = torch.bincount(ids.long(), minlength=vocab_size).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def probe(model: CharRNN, corpus: Corpus, cfg: TrainConfig) -> dict:
    """The base's loss on (at most eval_chars of) the held-out split, the text's unigram entropy and their ratio."""
    from charrnn.train import evaluate

    start = time.perf_counter()
    with torch.no_grad():
        loss = evaluate(model, corpus.val, cfg.seq_len, cfg.batch_size, max_chars=cfg.eval_chars)
    entropy = unigram_entropy(corpus.train, len(corpus.vocab))
    return {"base_loss": round(loss, 4), "unigram_entropy": round(entropy, 4),
            "ratio": round(loss / entropy, 4) if entropy > 0 else math.inf,
            "seconds": round(time.perf_counter() - start, 3)}


def decide(measured: dict) -> str:
    return "base" if measured["ratio"] <= BASE_RATIO else "zero"


def why(choice: str, measured: dict) -> str:
    """One line for the run's header and its first record."""
    said = (f"the base scored {measured['base_loss']:.2f} nats/char on this text's held-out part, "
            f"{measured['ratio']:.0%} of what the text's character frequencies alone give")
    return f"{said}: it knows this kind of text" if choice == "base" else \
        f"{said}: it knows too little of this text to help"


def asked_shape(asked: dict | None, model_cfg: ModelConfig, base: ModelConfig) -> str | None:
    """The model setting the user gave that the base's shape contradicts, if any."""
    for key in SHAPE_KEYS:
        wanted = (asked or {}).get(key)
        if wanted is not None and wanted != getattr(base, key):
            return key
    return None
