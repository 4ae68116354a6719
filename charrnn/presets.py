"""Named recipes: a model config and a train config that go together.

``seed`` is the lecture exactly. ``quick`` and ``default`` are tuned for 2 CPU
cores with ``bench/quality.py`` (figures in the README); ``auto``, the default, fits
its model to the size of the text and the budget (``auto_recipe``).
"""
from __future__ import annotations

from .model import ModelConfig
from .train import TrainConfig

PRESETS: dict[str, tuple[dict, dict]] = {
    "seed": (
        dict(embed=100, hidden=128, layers=1, dropout=0.0, cell="lstm"),
        dict(batch_size=1, seq_len=200, iterations=5000, optimizer="adam", lr=0.005, warmup=0,
             decay="none", grad_clip=0.0, vocab="printable", unknown="fold", sample_prime="Th",
             sample_temperature=0.8, eval_every=250, eval_chars=20_000, sample_every=250,
             checkpoint_every=500, log_every=10),
    ),
    # Tuned on 2 CPU cores with bench/quality.py. At these budgets the number of
    # optimizer steps matters most: small batches (16 x 64 = 1,024 chars) run 30-60
    # steps/s and beat large ones. bf16 autocast (where native) buys ~1.4x throughput, which
    # pays for hidden 512; dropout 0.2 keeps it from overfitting over a 10-minute budget.
    "quick": (
        dict(embed=64, hidden=256, layers=1, dropout=0.0, cell="lstm"),
        dict(batch_size=16, seq_len=64, iterations=0, minutes=0.5, lr=4e-3, warmup=20, autocast="auto",
             eval_every=200, eval_chars=20_000, sample_every=200, checkpoint_every=500),
    ),
    "default": (
        dict(embed=64, hidden=512, layers=1, dropout=0.2, cell="lstm"),
        dict(batch_size=16, seq_len=64, iterations=0, minutes=5.0, lr=4e-3, warmup=50, autocast="auto",
             eval_every=500, eval_chars=50_000, sample_every=500, checkpoint_every=500),
    ),
    # Fitted to the text by auto_recipe (below): these are its values for a text of unknown size.
    # 64 streams read on through the text, 16 characters a step, the state carried from step to step.
    # bench/quality.py at 95 s on a 2-vCPU Intel Xeon with AMX (2026-12-03, one run each): H384 32 x 16 1.501
    # (bf16) / 1.503 (float32); 64 x 16 1.472 / 1.482; H512 64 x 16 1.451 / 1.492; 128 streams lost (1.477).
    "auto": (
        dict(embed=64, hidden=384, layers=1, dropout=0.2, input_dropout=0.1, cell="lstm"),
        dict(batch_size=64, seq_len=16, carry_state=True, iterations=0, minutes=2.0, lr=4e-3, warmup=50,
             autocast="auto", eval_every=200, eval_chars=50_000, sample_every=400, checkpoint_every=400,
             patience=5),
    ),
}
DEFAULT_PRESET = "auto"


SMALL_TEXT = 250_000       # characters: below this, a budget of minutes reads the text many times over
SMALL_MAX_EPOCHS = 20.0    # passes over a small text after which auto's schedule ends, unless the minutes end it first
AUTO_MAX_EPOCHS = 8.0      # the same for any larger text
LONG_BUDGET = 5.0          # minutes: from here a larger text trains hidden 512 (dropout 0.25; 0.1 from 3M characters)
INPUT_DROPOUT = 0.1        # every auto run drops this fraction of its input characters' embedding numbers


def auto_recipe(corpus_chars: int, minutes: float) -> tuple[dict, dict]:
    """Model and train settings of the ``auto`` preset for a text of ``corpus_chars`` and a time budget.

    The rule (measured with ``python -m bench.recipes`` and ``bench.quality``, tables in the README): at a
    budget of minutes on 2 cores the model sees its text many times over, so it overfits. A larger text's
    learning-rate schedule ends after AUTO_MAX_EPOCHS passes over it if the minutes have not ended it first,
    so the rate is low while the model is still learning rather than once it has learnt the text by heart, and every
    run drops INPUT_DROPOUT of the embedding's numbers. A small text gets a larger model held back by strong dropout,
    SMALL_MAX_EPOCHS passes, and validation and a sample every 100 steps (its run is short). A larger text over a
    long budget (LONG_BUDGET minutes or more) gets hidden 512; a budget under a minute a smaller model, which learns
    faster. Early stopping (patience 5 evaluations) and keeping the best model catch the rest.
    """
    # 2026-12-03, 2-vCPU Xeon with AMX, 120 s on 85 KB of Debian's English FAQ (kept model, held-out 10%): H384 d0.5
    # 1.322, H512 d0.5 1.309, H512 d0.6 1.305, and with the schedule ending after 20 passes H512 d0.5 1.302, d0.6
    # 1.294, d0.7 1.283, H768 d0.6 1.283 (at 0.43x H512's speed); `default` 1.328. 0.35 for 200k-600k characters was
    # dropped on 2026-12-02 (German, Python source). A later session the same day, same machine (README, "Presets"):
    # input dropout 0.1 / 0.2 took that FAQ from 1.284 to 1.277 / 1.283 and 80 KB of Shakespeare from 1.571 to
    # 1.550 / 1.543; 300 KB of Shakespeare at 2 min ended after 8 passes 1.380, after 20 (patience) 1.399, and at
    # 10 min with H512 d0.25 1.370 / 1.404; Tiny Shakespeare at 10 min with H512 d0.25, input dropout 0.1, 8 passes
    # 1.435 / 1.464 / 1.461 (seeds 1337 / 7 / 42) at lr 4e-3; 1.451 / 1.457 / 1.446 at 3e-3 (the mean 0.002 lower,
    # within the noise; not taken, as the Train tab's form sends its learning rate and would not follow it).
    # The small-text line was 200,000 until bench.recipes at 60 s (same session) gave, small rule / larger rule /
    # `default`: 200 KB of Python source 1.985 / 2.068 / 2.022, the German FAQ (207 KB) 1.348 / 1.369 / 1.326,
    # 300 KB of Shakespeare 1.410 / 1.380 / 1.386.
    small = corpus_chars < SMALL_TEXT
    long_budget = not small and minutes >= LONG_BUDGET
    dropout = 0.7 if small else 0.1 if corpus_chars >= 3_000_000 else 0.25 if long_budget else 0.2
    hidden = 256 if 0 < minutes < 1 else 512 if small or long_budget else 384
    # a small text's run is over in a few hundred steps: check and sample it often enough to see it learn
    train = {"max_epochs": SMALL_MAX_EPOCHS, "eval_every": 100, "sample_every": 100} if small else {
        "max_epochs": AUTO_MAX_EPOCHS}
    return {"hidden": hidden, "dropout": dropout, "input_dropout": INPUT_DROPOUT}, train


def preset_configs(name: str, vocab_size: int, model_overrides: dict | None = None,
                   train_overrides: dict | None = None, corpus_chars: int | None = None
                   ) -> tuple[ModelConfig, TrainConfig]:
    """Build the configs of preset ``name`` with overrides applied (None values are ignored).

    ``auto`` fits its model to ``corpus_chars`` and the time budget when the size is known."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    model_kw, train_kw = PRESETS[name]
    if name == "auto" and corpus_chars:
        minutes = (train_overrides or {}).get("minutes") or train_kw["minutes"]
        fitted_model, fitted_train = auto_recipe(corpus_chars, minutes)
        model_kw, train_kw = {**model_kw, **fitted_model}, {**train_kw, **fitted_train}
    model_kw = {**model_kw, **{k: v for k, v in (model_overrides or {}).items() if v is not None}}
    train_kw = {**train_kw, **{k: v for k, v in (train_overrides or {}).items() if v is not None}}
    if train_kw.get("minutes") and "iterations" not in (train_overrides or {}):
        train_kw.setdefault("iterations", 0)
    return ModelConfig(vocab_size=vocab_size, **model_kw), TrainConfig(**train_kw)


def preset_vocab_kind(name: str, train_overrides: dict | None = None) -> str:
    return (train_overrides or {}).get("vocab") or PRESETS[name][1].get("vocab", "corpus")
