"""What a run is configured by: the model and train configs, their named presets, and ``auto``'s recipe.

Each config field is declared once (``option``) with its help text; the command line's flags and the app's form
fields are derived from it.

``option(default, help)`` declares a field; ``options(cls)`` lists a config class's
fields with their flag, type, choices and help; ``config_argv(cfg)`` turns a config
back into the flags that rebuild it (how the app hands a run to the trainer process).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields

CELL_KINDS = ("lstm", "gru", "rnn")
MAX_ITERATIONS = 10_000_000               # the most steps a run trains
PRINTABLE_SIZE = 100                      # characters of string.printable, the lecture's vocabulary


def option(default, help: str, *, label: str | None = None, choices: tuple | None = None):
    """A config field with its one-line help (and a form label and allowed values, where they help)."""
    return field(default=default, metadata={"help": help, "label": label, "choices": choices})


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: object
    help: str
    label: str
    choices: tuple | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def parse(self):
        """The flag's value parser: the field's type, except that a bool reads true/false (not bool('False'))."""
        return parse_bool if self.type is bool else self.type


def options(cls) -> list[Option]:
    """The fields of config dataclass ``cls`` declared with ``option``, in declaration order."""
    return [Option(f.name, type(f.default), f.default, f.metadata["help"],
                   f.metadata["label"] or f.name.replace("_", " ").capitalize(), f.metadata["choices"])
            for f in fields(cls) if "help" in f.metadata]


def option_named(cls, name: str) -> Option:
    return next(o for o in options(cls) if o.name == name)


def config_argv(cfg, skip: tuple[str, ...] = ()) -> list[str]:
    """``--flag=value`` for every option of ``cfg`` (``=`` so a value starting with '-' stays a value)."""
    return [f"{o.flag}={format_value(getattr(cfg, o.name))}" for o in options(type(cfg)) if o.name not in skip]


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not true or false: {text!r}")


parse_bool.__name__ = "true or false"      # argparse names the type in its error: "invalid true or false value"


def format_value(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass
class TrainConfig:
    batch_size: int = option(64, "text portions trained on at once in each step")
    seq_len: int = option(128, "characters per portion: how far back the gradient reaches", label="Sequence length")
    iterations: int = option(2000, "training steps (0 = no step limit: the time budget ends the run)")
    minutes: float = option(0.0, "wall-clock budget in minutes (0 = no time limit)")
    max_epochs: float = option(0.0, "passes over the training text after which the run ends, its learning rate "
                               "decayed, when that comes before the iterations or the minutes (0 = no limit)")
    optimizer: str = option("adamw", "optimizer", choices=("adam", "adamw"))
    lr: float = option(3e-3, "peak learning rate: how big each step is", label="Learning rate")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup: int = option(50, "steps of linear learning-rate warm-up")
    decay: str = option("cosine", "learning-rate decay over the iterations or the time budget",
                        choices=("cosine", "linear", "none"))
    min_lr_ratio: float = option(0.1, "the decayed learning rate's floor, as a fraction of the peak")
    grad_clip: float = option(1.0, "gradient norm clip (0 = off)")
    carry_state: bool = option(False, "read the text as continuing streams and carry the recurrent state from "
                               "one step to the next (as validation reads it), instead of random portions "
                               "that each start from zero")
    eval_every: int = option(200, "steps between validation passes")
    eval_chars: int = option(200_000, "validation characters per evaluation (0 = all)")
    patience: int = option(0, "evaluations without a better validation loss before the run ends (0 = off)")
    sample_every: int = option(200, "steps between samples")
    sample_prime: str = option("", "text the samples start from (default: a new line)")
    sample_temperature: float = option(0.8, "temperature of the samples")
    sample_length: int = option(200, "characters per sample")
    checkpoint_every: int = option(500, "steps between checkpoints")
    log_every: int = option(10, "steps between progress records")
    seed: int = option(1337, "random seed")
    device: str = option("auto", "auto | cpu | cuda | mps")
    threads: int = option(0, "torch intra-op threads (0 = torch's default)")
    # bf16 autocast of the training forward (weights, optimizer and validation stay float32)
    autocast: str = option("none", "bf16 autocast of the training forward (auto: time a few steps of each "
                           "precision at the start and keep the faster)", choices=("none", "bf16", "auto"))
    val_fraction: float = option(0.1, "fraction of the text held out for validation (its end)")
    vocab: str = option("corpus", "vocabulary: the corpus's characters or string.printable",
                        choices=("corpus", "printable"))
    unknown: str = option("error", "characters outside a printable vocabulary: refuse, drop or transliterate",
                          choices=("error", "drop", "fold"))
    max_loss_factor: float = option(3.0, "a loss above this many times ln(vocabulary) counts as exploding")

    def __post_init__(self):
        check_range("batch_size", self.batch_size, 1, 4096)
        check_range("seq_len", self.seq_len, 1, 4096)
        check_range("iterations", self.iterations, 0, MAX_ITERATIONS)
        check_range("minutes", self.minutes, 0.0, 60.0 * 24 * 7)
        check_range("max_epochs", self.max_epochs, 0.0, 1e6)
        if self.iterations == 0 and self.minutes == 0 and self.max_epochs == 0:
            raise ValueError("give iterations > 0, minutes > 0 or max_epochs > 0, or the run would never end")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise ValueError(f"lr={self.lr!r} is out of range; allowed greater than 0 up to 1")
        check_range("grad_clip", self.grad_clip, 0, 1e6)
        check_range("val_fraction", self.val_fraction, 0.01, 0.5)
        for name in ("eval_every", "sample_every", "checkpoint_every", "log_every"):
            check_range(name, getattr(self, name), 1, 10_000_000)
        check_range("warmup", self.warmup, 0, 10_000_000)
        check_range("threads", self.threads, 0, 1024)
        if not DEVICE.match(str(self.device)):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        check_range("patience", self.patience, 0, 1_000_000)
        if not isinstance(self.carry_state, bool):
            raise ValueError(f"carry_state must be true or false, got {self.carry_state!r}")
        for opt in options(TrainConfig):
            if opt.choices and getattr(self, opt.name) not in opt.choices:
                raise ValueError(f"{opt.name} must be one of {opt.choices}, got {getattr(self, opt.name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


PRESETS: dict[str, tuple[dict, dict]] = {
    "seed": (
        dict(embed=100, hidden=128, layers=1, dropout=0.0, cell="lstm"),
        dict(batch_size=1, seq_len=200, iterations=5000, optimizer="adam", lr=0.005, warmup=0,
             decay="none", grad_clip=0.0, vocab="printable", unknown="fold", sample_prime="Th",
             sample_temperature=0.8, eval_every=250, eval_chars=20_000, sample_every=250,
             checkpoint_every=500, log_every=10),
    ),
    # Small batches (16 x 64): at a budget of minutes the number of optimizer steps matters most. Measured with
    # bench.quality on 2 CPU cores (bench/RESULTS.md, "Recipes").
    "quick": (
        dict(embed=64, hidden=256, layers=1, dropout=0.0, cell="lstm"),
        dict(batch_size=16, seq_len=64, iterations=0, minutes=0.5, lr=4e-3, warmup=20, autocast="auto",
             eval_every=200, eval_chars=20_000, sample_every=200, checkpoint_every=500),
    ),
    "long": (
        dict(embed=64, hidden=512, layers=1, dropout=0.2, cell="lstm"),
        dict(batch_size=16, seq_len=64, iterations=0, minutes=5.0, lr=4e-3, warmup=50, autocast="auto",
             eval_every=500, eval_chars=50_000, sample_every=500, checkpoint_every=500),
    ),
    # Fitted to the text by auto_recipe (below): these are its values for a text of unknown size.
    # 64 streams read on through the text, 16 characters a step, the state carried from step to step: 64 streams
    # beat 32 and 128 in bf16 and in float32 (bench.quality; bench/RESULTS.md, "Carrying the state").
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

    The rule (measured with ``python -m bench.recipes`` and ``bench.quality``, figures in bench/RESULTS.md): at a
    budget of minutes on 2 cores the model sees its text many times over, so it overfits. A larger text's
    learning-rate schedule ends after AUTO_MAX_EPOCHS passes over it if the minutes have not ended it first,
    so the rate is low while the model is still learning rather than once it has learnt the text by heart, and every
    run drops INPUT_DROPOUT of the embedding's numbers. A small text gets a larger model held back by strong dropout,
    SMALL_MAX_EPOCHS passes, and validation and a sample every 100 steps (its run is short). A larger text over a
    long budget (LONG_BUDGET minutes or more) gets hidden 512; a budget under a minute a smaller model, which learns
    faster. Early stopping (patience 5 evaluations) and keeping the best model catch the rest.
    """
    # auto's rule, chosen with bench.recipes and bench.quality (bench/RESULTS.md, "Recipes"). The learning rate stays
    # the preset's: 3e-3 was within the noise between seeds, and the Train tab's form sends its learning rate.
    small = corpus_chars < SMALL_TEXT
    long_budget = not small and minutes >= LONG_BUDGET
    dropout = 0.7 if small else 0.1 if corpus_chars >= 3_000_000 else 0.25 if long_budget else 0.2
    hidden = 256 if 0 < minutes < 1 else 512 if small or long_budget else 384
    # a small text's run is over in a few hundred steps: check and sample it often enough to see it learn
    train = {"max_epochs": SMALL_MAX_EPOCHS, "eval_every": 100, "sample_every": 100} if small else {
        "max_epochs": AUTO_MAX_EPOCHS}
    return {"hidden": hidden, "dropout": dropout, "input_dropout": INPUT_DROPOUT}, train


def preset_configs(name: str, vocab_size: int | None, model_overrides: dict | None = None,
                   train_overrides: dict | None = None, corpus_chars: int | None = None
                   ) -> tuple[ModelConfig, TrainConfig]:
    """Build the configs of preset ``name`` with overrides applied (None values are ignored).

    ``auto`` fits its model to ``corpus_chars`` and the time budget when the size is known. ``vocab_size`` None:
    the vocabulary's size is the corpus's, set when the text is encoded (a printable vocabulary's is known now)."""
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
    train_cfg = TrainConfig(**train_kw)
    if vocab_size is None:
        vocab_size = PRINTABLE_SIZE if train_cfg.vocab == "printable" else 1
    return ModelConfig(vocab_size=vocab_size, **model_kw), train_cfg


def preset_vocab_kind(name: str, train_overrides: dict | None = None) -> str:
    return (train_overrides or {}).get("vocab") or PRESETS[name][1].get("vocab", "corpus")


DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)\Z")


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
        if self.cell not in CELL_KINDS:
            raise ValueError(f"cell must be one of {sorted(CELL_KINDS)}, got {self.cell!r}")

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
