"""The checkpoints the app offers for generation, and loading them (cached) from a picker value.

A picker value is a run name under the checkpoints folder, or ``BUNDLED_KEY`` for the model
shipped with the app; nothing else resolves, so no request reaches a file outside them.
"""
from __future__ import annotations

import math
from pathlib import Path

from charrnn.model import CharRNN
from charrnn.runs.store import RunDir, checkpoint_file, list_runs, load_checkpoint, read_header, run_dirs
from charrnn.runs.weights import CheckpointError
from charrnn.vocab import Vocab
from webui.checks import as_dict, finite, whole
from webui.errors import UserError, esc, no_markup
from webui.lru import LRU
from webui.owners import owned_by, owner_digest
from webui.settings import Settings

BUNDLED_KEY = "bundled/shakespeare"      # picker value of the shipped model ('/' is never in a run name)


def list_checkpoints(settings: Settings) -> list[dict]:
    """Runs with a checkpoint, newest first, plus the bundled model when the checkpoints folder is elsewhere."""
    found = [{**r, "key": r["name"], "label": r["name"] + tuned_words(r["header"])} for r in list_runs(settings.root)]
    bundled = settings.bundled / RunDir.WEIGHTS
    if settings.bundled.parent.resolve() != settings.root and bundled.is_file():
        try:
            header = read_header(bundled)
        except CheckpointError:
            header = None
        if header is not None:
            found.append({"name": settings.bundled.name, "path": settings.bundled, "header": header,
                          "mtime": bundled.stat().st_mtime, "status": {"state": "finished"},
                          "key": BUNDLED_KEY, "label": f"{settings.bundled.name} (bundled)"})
    for r in found:
        if r["status"].get("state") == "running":
            r["label"] += " (training)"
    return sorted(found, key=lambda r: r["mtime"], reverse=True)


def default_checkpoint(settings: Settings, listed: list[dict] | None = None, key=None):
    """The key /generate (and a new page's picker) uses when the caller names none: the caller's own newest run
    (``key``: the browser's, see ``webui.owners``), else the operator's newest (a run with no recorded owner: from
    the CLI, or from any page while a training password is set), else the bundled model; runs in training come
    last. Another visitor's run is never anyone else's default. None when there is no checkpoint at all."""
    listed = list_checkpoints(settings) if listed is None else listed
    idle = [r for r in listed if r["key"] != BUNDLED_KEY and r["status"].get("state") != "running"]
    mine = [r for r in idle if owned_by(r["path"], key)]
    operator = [r for r in idle if settings.password or owner_digest(r["path"]) is None]
    bundled = [r for r in listed if r["key"] == BUNDLED_KEY]
    ordered = mine + operator + bundled + [r for r in listed if r not in idle or r in mine or r in operator]
    return ordered[0]["key"] if ordered else None


def yours(settings: Settings, listed: list[dict], key) -> set[str]:
    """The runs a browser with ``key`` may take as its own: those it owns and the operator's (no recorded owner;
    every run while a password is set)."""
    return {r["key"] for r in listed if r["key"] != BUNDLED_KEY
            and (settings.password or owned_by(r["path"], key) or owner_digest(r["path"]) is None)}


def checkpoint_summaries(settings: Settings) -> list[dict]:
    """What a script needs to pick a checkpoint (the /list_checkpoints endpoint), newest first: plain JSON values.

    ``val_loss`` is the kept model's validation loss (the best one seen; None before the first validation),
    ``default`` marks the checkpoint /generate uses when none is named."""
    listed = list_checkpoints(settings)
    default = default_checkpoint(settings, listed)
    return [summary(r, r["key"] == default) for r in listed]


def summary(r: dict, default: bool) -> dict:
    header, cfg, data = r["header"], r["header"].get("model_config", {}), r["header"].get("data", {})
    val = header.get("best_val_loss")
    try:
        size = (r["path"] / RunDir.WEIGHTS).stat().st_size
    except OSError:
        size = None
    return {"key": r["key"], "label": r["label"], "corpus": str(data.get("name", "")),
            "corpus_chars": data.get("chars"), "base": base_name(header), "params": header.get("params"), "bytes": size,
            "cell": cfg.get("cell"), "layers": cfg.get("layers"), "hidden": cfg.get("hidden"),
            "steps": header.get("step"), "kept_step": header.get("best_step", header.get("step")),
            "val_loss": val if isinstance(val, float) and math.isfinite(val) else None,
            "state": r["status"].get("state"), "default": default}


def base_name(header: dict) -> str | None:
    """The model a run was fine-tuned from, as its header records it (None: trained from zero)."""
    name = as_dict(header.get("init")).get("name")
    return name if isinstance(name, str) and name else None


def tuned_words(header: dict) -> str:
    """What the picker adds to a fine-tuned run's name: its base and its text."""
    base = base_name(header)
    if base is None:
        return ""
    text = as_dict(header.get("data")).get("name")
    return f" ({base} fine-tuned on {text})" if isinstance(text, str) and text else f" (fine-tuned {base})"


def checkpoint_signature(settings: Settings) -> tuple:
    """(run, mtime) of every checkpoint file, cheap enough to compute on every poll."""
    sig = []
    for d in run_dirs(settings.root):
        try:
            sig.append((d.name, d.weights.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(sig))


def run_directory(settings: Settings, key) -> Path:
    """The run directory of a picker value (the bundled run or one under the checkpoints folder)."""
    if key == BUNDLED_KEY:
        return settings.bundled
    try:
        return RunDir.of(settings.root, key).path
    except CheckpointError as e:
        raise UserError(no_markup(e)) from None


def resolve_checkpoint(settings: Settings, key) -> Path:
    """The weights file of a picker value; refuses anything that is not a checkpoint the app offers."""
    if not key:
        raise UserError("No checkpoint chosen. Train one in the Train tab, or pick one from the list.")
    try:
        return checkpoint_file(run_directory(settings, key))
    except CheckpointError as e:
        raise UserError(no_markup(e)) from None


def picked_checkpoint(keys: list[str], current, known: list[str], mine: set[str] = frozenset(), default=None):
    """A run of one's own that appeared since the last refresh is selected; else the choice stands; else
    ``default`` (``default_checkpoint``'s)."""
    fresh = [k for k in keys if k not in known and k in mine]
    if fresh and known:
        return fresh[0]
    if current in keys:
        return current
    return default if default in keys else keys[0] if keys else None


class ModelCache:
    """Loaded checkpoints keyed by (file, mtime): a run's newer checkpoint is loaded fresh, the older dropped."""

    def __init__(self, size: int = 4):
        self.lru = LRU(size)

    def get(self, path: Path) -> tuple[CharRNN, Vocab, dict]:
        key = file_key(path)
        loaded = self.lru.get(key, lambda: load(path))
        self.lru.discard(lambda k: k[0] != key[0] or k == key)
        return loaded


def file_key(path: Path) -> tuple[str, int]:
    """(path, mtime): names one version of a checkpoint file."""
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError:
        raise UserError(f"Checkpoint {esc(path.parent.name)} is gone; refresh the page.") from None


def load(path: Path):
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        raise UserError(no_markup(e)) from None


def load_model(settings: Settings, cache: ModelCache, key) -> tuple[CharRNN, Vocab, tuple]:
    """The model and vocabulary of a picker value, and a key naming that exact checkpoint file (for memos)."""
    path = resolve_checkpoint(settings, key)
    version = file_key(path)        # before loading: a rewrite in between only wastes a memo
    model, vocab, _ = cache.get(path)
    return model, vocab, version


def checkpoint_line(header: dict) -> str:
    """One line on a checkpoint: corpus, size, the kept model's step and validation loss."""
    cfg, data = as_dict(header.get("model_config")), as_dict(header.get("data"))
    val, step = header.get("best_val_loss"), whole(header.get("step")) or 0
    val_text = f"validation loss {val:.3f} nats/char ({val / math.log(2):.2f} bits/char)" \
        if finite(val) else "no validation loss yet"
    if whole(header.get("best_step")) is not None and finite(val):       # a run that keeps its best model
        kept = f"kept model from {step:,} steps of training: the run's best {val_text}"
    else:
        kept = f"{step:,} steps · {val_text}"
    params = f"{header['params']:,} parameters, " if whole(header.get("params")) is not None else ""
    chars = whole(data.get("chars")) or 0
    base = base_name(header)
    tuned = f"Fine-tuned from **{esc(base)}** on" if base else "Trained on"
    return (f"{tuned} **{esc(str(data.get('name', '?')))}** ({chars:,} chars) · "
            f"{esc(str(cfg.get('cell', 'lstm'))).upper()} {esc(str(cfg.get('layers')))} x "
            f"{esc(str(cfg.get('hidden')))}, {params}{len(str(header.get('vocab', '')))}-character vocabulary · {kept}")
