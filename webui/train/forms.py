"""Form values -> what the engine takes: the chosen corpus, the model and train configs, generation arguments.

No gradio: every refusal is a ``UserError`` whose message names the value and what is allowed.
The training form's fields are config fields (``FORM_FIELDS``, and ``PAGE_FIELDS`` that only the page sets),
labelled by their ``option`` declarations in the engine, explained in plain words by ``FIELD_HINTS``, and passed
around by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from charrnn.config import PRESETS, ModelConfig, Option, TrainConfig, option_named, preset_configs, preset_vocab_kind
from charrnn.data import CorpusError, check_text, decode_text, read_text
from charrnn.runs.writes import human
from charrnn.vocab import Vocab
from webui.checks import finite
from webui.errors import UserError, esc, no_markup
from webui.settings import Settings

SOURCES = [("Bundled corpus", "bundled"), ("Upload a .txt file", "upload"), ("Paste text", "paste")]
MODEL_FIELDS = ("hidden", "layers")
TRAIN_FIELDS = ("seq_len", "batch_size", "lr", "iterations", "minutes")
FORM_FIELDS = MODEL_FIELDS + TRAIN_FIELDS     # what /start_training takes, in its order
PAGE_FIELDS = ("patience",)                   # what only the page's form sets (API callers get the preset's)
DEFAULT_PATIENCE = 5                          # the form's early stopping for a time-budgeted run

# One line of plain English per field, for someone who has never trained a model.
FIELD_HINTS = {
    "hidden": "How much the model can hold in mind: bigger learns more but trains slower.",
    "layers": "LSTMs stacked on each other; 1 is plenty for a run of minutes.",
    "seq_len": "Characters in a row per step; auto carries what it read on into the next.",
    "batch_size": "Pieces of text per training step: more is steadier but slower.",
    "lr": "How big each learning step is: too high and the loss jumps, too low and it crawls.",
    "iterations": "Training steps to run (0 = no limit: the minutes end it).",
    "minutes": "How long to train (0 = no time limit: the steps end it).",
    "patience": "Checks without a better validation loss before it stops (0 = never).",
}
# Each preset by purpose and time, as the form's dropdown offers it.
PRESET_PURPOSES = {
    "auto": "fits your text, up to 2 min, stops when it stops improving",
    "quick": "a first look, 30 s",
    "long": "a bigger model, 5 min",
    "seed": "the lecture's exact model, a few min",
}


def form_option(name: str) -> Option:
    """The config field behind form field ``name`` (its label, help and type)."""
    return option_named(ModelConfig if name in MODEL_FIELDS else TrainConfig, name)


def preset_values(preset: str, corpus_chars: int | None = None) -> dict:
    """The form's values for ``preset`` (FORM_FIELDS, then PAGE_FIELDS): a budget the preset does not set is 0
    (none), ``auto``'s hidden size is fitted to ``corpus_chars``, and a time-budgeted run stops early by default."""
    model_kw, train_kw = PRESETS[preset]
    values = {name: {**model_kw, **train_kw}.get(name, 0) for name in FORM_FIELDS}
    values["hidden"] = fitted_hidden(preset, corpus_chars, values["minutes"]) or values["hidden"]
    values["patience"] = train_kw.get("patience") or (DEFAULT_PATIENCE if train_kw.get("minutes") else 0)
    return values


def fitted_hidden(preset: str, corpus_chars: int | None, minutes) -> int | None:
    """The hidden size ``preset`` trains for a text of ``corpus_chars`` in ``minutes`` (``auto`` follows both; the
    others have their own); None when the minutes are not a valid budget."""
    if preset not in PRESETS:
        return None
    budget = {"minutes": minutes} if finite(minutes) and minutes > 0 else {}
    try:
        return preset_configs(preset, 1, None, budget, corpus_chars or None)[0].hidden
    except (ValueError, TypeError):
        return None


# --- corpus ---------------------------------------------------------------------------
@dataclass
class CorpusChoice:
    text: str
    name: str
    path: Path | None     # the file to train on; None: write the text into the run directory


def bundled_corpora(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.glob("*.txt")) if data_dir.is_dir() else []


def read_corpus(settings: Settings, source: str, bundled_name: str | None, upload: str | None,
                pasted: str | None) -> CorpusChoice:
    """The text the user chose, or UserError saying what is wrong with it."""
    try:
        if source == "bundled":
            if bundled_name not in bundled_corpora(settings.data_dir):
                raise UserError(f"No bundled corpus named {esc(repr(bundled_name))}; pick one from the list.")
            path = settings.data_dir / bundled_name
            return CorpusChoice(read_text(path), bundled_name, path)
        if source == "upload":
            return read_upload(upload, settings.max_corpus_bytes)
        if source == "paste":
            return read_pasted(pasted, settings.max_corpus_bytes)
    except CorpusError as e:
        raise UserError(no_markup(e)) from None
    raise UserError(f"Unknown corpus source {esc(repr(source))}; use bundled, upload or paste.")


def read_upload(upload: str | None, limit: int) -> CorpusChoice:
    if not upload:
        raise UserError("Upload a .txt file first.")
    path = Path(upload)
    try:
        size = path.stat().st_size
        if size > limit:
            raise UserError(f"{esc(path.name)} is {human(size)}; the limit for uploads is {human(limit)}.")
        raw = path.read_bytes()
    except OSError:
        raise UserError("The uploaded file is no longer on the server; upload it again.") from None
    try:
        return CorpusChoice(decode_text(raw, path.name), path.name, None)
    except CorpusError as e:
        raise UserError(no_markup(e)) from None


def read_pasted(pasted: str | None, limit: int) -> CorpusChoice:
    if not isinstance(pasted, str) or not pasted.strip():
        raise UserError("Paste some text first.")
    try:
        check_text(pasted, "The pasted text")
    except CorpusError as e:
        raise UserError(no_markup(e)) from None
    size = len(pasted.encode("utf-8", errors="replace"))
    if size > limit:
        raise UserError(f"The pasted text is {human(size)}; the limit is {human(limit)} "
                        "(upload a file or use the command line for bigger texts).")
    return CorpusChoice(pasted, "pasted text", None)


@lru_cache(maxsize=16)
def text_stats(text: str) -> dict:
    """Characters and distinct characters of a text (what the model line needs)."""
    return {"chars": len(text), "distinct": len(set(text))}


# --- model and training configuration -------------------------------------------------
def build_configs(settings: Settings, preset: str, vocab_size: int | None, values: dict,
                  corpus_chars: int | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The configs the trainer will use, from a preset (``auto`` fitted to ``corpus_chars``) and the form's
    ``values`` by field name."""
    if preset not in PRESETS:
        raise UserError(f"Unknown preset {esc(repr(preset))}; choose one of {', '.join(PRESETS)}.")
    model = {k: values.get(k) for k in MODEL_FIELDS}
    train = {k: values.get(k) for k in TRAIN_FIELDS + PAGE_FIELDS}      # None (or absent): the preset's value
    try:
        model_cfg, train_cfg = preset_configs(preset, vocab_size, model, train, corpus_chars)
    except (ValueError, TypeError) as e:
        raise UserError(f"Invalid setting: {no_markup(e)}") from None
    if train_cfg.batch_size * train_cfg.seq_len > settings.max_batch_chars:
        raise UserError(f"batch size x sequence length = {train_cfg.batch_size * train_cfg.seq_len:,}; "
                        f"the app allows at most {settings.max_batch_chars:,} characters per batch.")
    return model_cfg, train_cfg


def vocab_size_for(preset: str, stats: dict | None) -> int | None:
    if preset in PRESETS and preset_vocab_kind(preset) == "printable":
        return len(Vocab.printable())
    return stats["distinct"] if stats else None


# --- generation -----------------------------------------------------------------------


