"""Run directories: checkpoints, metrics, status and loss plots, all written atomically.

A run lives in ``<root>/<run-name>/``:
  model.safetensors    the kept model: the weights with the best validation loss so far, and a JSON
                       header (configs, vocabulary, step, losses, best_step/best_val_loss); on its own
                       enough to generate text, and the file everything generates from
  checkpoint.json      the same header, readable by people and other tools
  latest.safetensors   where training is: the newest saved weights, same format, header with their step
  train_state-<step>.pt  optimizer and data-stream state of the latest weights, for exact resume (tensors only)
  corpus.json          where the corpus is on this machine (resume reads it); headers name the corpus
                       by name and size only, so a shipped checkpoint carries no local path
  metrics.jsonl        one progress record per line, appended while training
  status.json          running / finished / stopped / failed, with pid and reason
  loss.png, loss.pdf   train and validation curves
Every file except metrics.jsonl is written to a temp file and renamed into place; a write that fails (disk full,
read-only) leaves no half-written file and raises ``WriteFailed`` saying so (``charrnn.writes``).
Every file read back goes through the schemas of ``charrnn.runfiles``: a file of the wrong shape marks its run
damaged instead of breaking whoever reads it.
A run written before the kept/latest split has no latest.safetensors: its model.safetensors is both.
"""
from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs import schema as runfiles
from charrnn.runs import writes
from charrnn.runs.schema import Damaged, pid_alive, trainer_alive
from charrnn.runs.weights import FORMAT, CheckpointError, read_json, write_weights
from charrnn.runs.writes import (
    LOW_ROOM,
    NO_ROOM,
    WriteFailed,
    append_line,
    atomic_write,
    human,
    write_anyway,
    write_failure,
    write_json,
)
from charrnn.vocab import Vocab

__all__ = ["LOW_ROOM", "NO_ROOM", "WriteFailed", "atomic_write", "pid_alive", "trainer_alive", "write_failure",
           "write_json"]                                                   # re-exported: callers use ck.<name>

WEIGHTS = "model.safetensors"
LATEST = "latest.safetensors"
CORPUS_RECORD = "corpus.json"
META = "checkpoint.json"
METRICS = "metrics.jsonl"
STATUS = "status.json"
PROJECT_DIR = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) holding charrnn/
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}\Z")  # \Z: "$" would accept a trailing newline


FINAL_STATES = ("finished", "stopped", "failed")


# --- run names ------------------------------------------------------------------
def default_root(env) -> Path:
    """Where runs live unless told otherwise: $CHARRNN_CHECKPOINTS, else the project's checkpoints/ (CLI and app)."""
    return Path(env.get("CHARRNN_CHECKPOINTS") or PROJECT_DIR / "checkpoints").resolve()


def run_dir(root: str | Path, name: str) -> Path:
    """The directory of run ``name`` under ``root``; refuses names that could leave it."""
    if not isinstance(name, str) or not RUN_NAME.match(name) or ".." in name:
        raise CheckpointError(
            f"invalid run name {name!r}: use 1-80 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit")
    root = Path(root).resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise CheckpointError(f"run name {name!r} points outside {root}")
    if (root / name).is_symlink():      # one inside: an alias of another run is no run of its own
        raise CheckpointError(f"run {name!r} is a link to another folder, not a run")
    return path


def safe_run_name(text: str) -> str:
    """Turn any text into a valid run name (used for defaults built from file names)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:60]
    return name or "run"


# --- checkpoints ----------------------------------------------------------------
def save_checkpoint(directory: Path, model: CharRNN, vocab: Vocab, meta: dict) -> dict:
    """Write the kept model: weights and header (model config, vocabulary, ``meta``) as model.safetensors,
    and the header again as checkpoint.json."""
    header = write_weights(Path(directory) / WEIGHTS, model, vocab, meta)
    write_json(Path(directory) / META, header)
    return header


def save_latest(directory: Path, model: CharRNN, vocab: Vocab, meta: dict, train_state: dict) -> dict:
    """Write where training is: the optimizer state of ``meta["step"]``, then latest.safetensors.

    In that order, so latest.safetensors always names a step whose state is on disk."""
    save_train_state(directory, meta["step"], train_state)
    return write_weights(Path(directory) / LATEST, model, vocab, meta)


def latest_file(directory: str | Path) -> Path:
    """The weights training continues from: latest.safetensors, or model.safetensors in a run written
    before the kept/latest split (there the last weights are the kept ones)."""
    latest = Path(directory) / LATEST
    return latest if latest.exists() else checkpoint_file(directory)


def latest_header(directory: str | Path) -> dict:
    """The header of ``latest_file``: its step is where a resume starts."""
    return read_header(latest_file(directory))


def checkpoint_file(path: str | Path) -> Path:
    """A run directory or a .safetensors file -> the weights file."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: only .safetensors checkpoints are loaded (pickles are never opened)")
    return path


def read_header(path: str | Path) -> dict:
    """The JSON header of a checkpoint, without loading its weights."""
    path = checkpoint_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("charrnn")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if raw is None:
        raise CheckpointError(f"{path}: not a charrnn checkpoint (no charrnn header)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: corrupt charrnn header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise CheckpointError(f"{path}: unsupported format {found!r:.60}, expected {FORMAT}")
    try:
        return runfiles.header_of(header, "header")
    except Damaged as e:
        raise CheckpointError(f"{path}: malformed charrnn header ({e})") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load (model, vocab, header) from a run directory or weights file; never unpickles."""
    path = checkpoint_file(path)
    header = read_header(path)
    try:
        config = ModelConfig(**header["model_config"])
        vocab = Vocab(header["vocab"])
        model = CharRNN(config)
        state = load_file(str(path), device="cpu")
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as e:
        raise CheckpointError(f"{path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    if config.vocab_size != len(vocab):
        raise CheckpointError(f"{path}: vocabulary has {len(vocab)} characters, model expects {config.vocab_size}")
    return model.to(device).eval(), vocab, header


# --- resume state ---------------------------------------------------------------
def save_train_state(directory: Path, step: int, state: dict, keep: int = 2) -> None:
    """Optimizer + generator state for ``step``; older files beyond ``keep`` are removed."""
    directory = Path(directory)
    atomic_write(directory / f"train_state-{step}.pt", lambda tmp: torch.save(state, tmp))
    for old in sorted(train_state_steps(directory))[:-keep]:
        (directory / f"train_state-{old}.pt").unlink(missing_ok=True)


def train_state_steps(directory: Path) -> list[int]:
    return [int(m.group(1)) for p in Path(directory).glob("train_state-*.pt")
            if (m := re.fullmatch(r"train_state-(\d+)\.pt", p.name))]


def load_train_state(directory: Path, step: int) -> dict:
    path = Path(directory) / f"train_state-{step}.pt"
    if not path.exists():
        raise CheckpointError(f"{path}: no optimizer state for step {step}; cannot resume exactly")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CheckpointError(f"{path}: unreadable optimizer state ({type(e).__name__})") from None


# --- where the corpus is -----------------------------------------------------------
def write_corpus_record(directory: Path, data_path: str | Path) -> None:
    """Remember where this run's corpus is (relative to the run when it lies inside it, so the run can move)."""
    directory, data_path = Path(directory).resolve(), Path(data_path).resolve()
    try:
        where = str(data_path.relative_to(directory))
    except ValueError:
        where = str(data_path)
    write_json(directory / CORPUS_RECORD, {"path": where})


def corpus_path(directory: Path, header: dict | None = None) -> Path | None:
    """The corpus a resume reads: from corpus.json, else the path an older header recorded, else None."""
    directory = Path(directory)
    try:
        where = runfiles.corpus_record_of(read_json(directory / CORPUS_RECORD))["path"]
    except (CheckpointError, Damaged):
        where = None
    if not isinstance(where, str) or not where:
        data = (header or {}).get("data")
        where = data.get("path") if isinstance(data, dict) else None   # runs from before corpus.json
    if not isinstance(where, str) or not where:
        return None
    return directory / where if not Path(where).is_absolute() else Path(where)


# --- metrics and status -----------------------------------------------------------
def append_metrics(directory: Path, record: dict) -> None:
    """Append one record as one line, whole or not at all."""
    append_line(Path(directory) / METRICS, (json.dumps(record) + "\n").encode("utf-8"))


def read_metrics(directory: Path) -> list[dict]:
    """All records that fit the record schema, in order; a damaged line is skipped (``metrics_damage`` names it),
    and so is a last line still being written. ``runfiles.MetricsReader`` follows a growing file instead."""
    return metrics_of(directory)[0]


def metrics_of(directory: Path) -> tuple[list[dict], int, str | None]:
    """(records, damaged lines, the first damaged line's reason) of a run's metrics.jsonl."""
    try:
        raw = (Path(directory) / METRICS).read_bytes()
    except FileNotFoundError:
        return [], 0, None
    return runfiles.records_in(raw)


def truncate_metrics(directory: Path, step: int) -> None:
    """Keep only records up to ``step`` (on resume, so the curves continue without duplicates)."""
    kept = [r for r in read_metrics(directory) if r["step"] <= step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write(Path(directory) / METRICS, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_status(directory: Path, state: str, **info) -> None:
    write_json(Path(directory) / STATUS, {"state": state, **info})


def write_final_status(directory: Path, state: str, **info) -> bool:
    """The status a run ends with, written whatever the disk (else its 'running' status is removed: unknown beats
    a 'running' that no process backs). True when written."""
    return write_anyway(Path(directory) / STATUS, json.dumps({"state": state, **info}, indent=1).encode("utf-8"))


def read_status_file(directory: Path) -> dict:
    """status.json as written, through its schema: {"state": "unknown"} when there is none, {"state": "damaged",
    "reason": ...} when it does not fit (not JSON, a list, a pid of 20 digits, ...)."""
    try:
        return runfiles.read_status_file(Path(directory) / STATUS)
    except FileNotFoundError:
        return {"state": "unknown"}
    except Damaged as e:
        return {"state": "damaged", "reason": str(e)}
    except OSError as e:
        return {"state": "damaged", "reason": f"{STATUS} cannot be read ({e.strerror or e})"}


def read_status(directory: Path) -> dict:
    """The run's status; a 'running' run whose process is gone reads as 'interrupted' at the step of its last
    checkpoint (``checkpoint_step``: that step, None when there is no checkpoint to resume from)."""
    status = read_status_file(directory)
    if status["state"] == "running" and not trainer_alive(status.get("pid")):
        status = interrupted(directory, status, "the training process is gone (killed, or out of memory)")
    return status


def interrupted(directory: Path, status: dict, reason: str) -> dict:
    """``status`` turned 'interrupted' for ``reason``, naming the step a resume would start from."""
    status = {k: v for k, v in status.items() if k != "step"}
    step = resume_step(directory)
    return {**status, "state": "interrupted", "reason": reason, "checkpoint_step": step,
            **({"step": step} if step is not None else {})}


def resume_step(directory: Path) -> int | None:
    """The step a resume starts from: the latest weights' step when its optimizer state exists; else None."""
    try:
        step = latest_header(directory).get("step")
    except CheckpointError:
        return None
    return step if isinstance(step, int) and step in train_state_steps(directory) else None


def check_room(directory: Path) -> None:
    """Refuse (``WriteFailed``) to continue a run the disk has no room to checkpoint: one more optimizer state and
    weights file, as big as the newest ones, and a little for metrics and plots."""
    directory = Path(directory)
    sizes = {p.name: p.stat().st_size for p in directory.glob("*") if p.is_file() and not p.is_symlink()}
    states = [size for name, size in sizes.items() if name.startswith("train_state-")]
    need = max(states, default=0) + max(sizes.get(LATEST, 0), sizes.get(WEIGHTS, 0)) + LOW_ROOM
    free = writes.free_bytes(directory)
    if free < need:
        raise WriteFailed(errno.ENOSPC, f"disk full: {human(free)} free in {directory.name}, and a checkpoint of it "
                                        f"needs about {human(need)}; free some space first")


# --- listing --------------------------------------------------------------------
def list_runs(root: str | Path) -> list[dict]:
    """Runs with a loadable kept model, newest checkpoint first: {name, path, header, latest, mtime, status,
    damaged}; a symlinked folder is no run.

    ``header`` is the kept model's, ``latest`` the header training resumes from (the same in a run from before
    the kept/latest split; None when latest.safetensors is unreadable); ``mtime`` is the newer file's;
    ``damaged`` says what is wrong with its status.json, checkpoint.json or latest.safetensors (None: nothing)."""
    runs = []
    root = Path(root)
    if not root.is_dir():
        return runs
    for d in root.iterdir():
        weights = d / WEIGHTS
        if not (is_run_dir(d) and weights.is_file()):
            continue
        try:
            header = read_header(weights)
        except CheckpointError:
            continue
        latest, mtime, damage = header, weights.stat().st_mtime, []
        if (d / LATEST).is_file():
            try:
                latest, mtime = read_header(d / LATEST), max(mtime, (d / LATEST).stat().st_mtime)
            except CheckpointError as e:
                latest = None
                damage.append(f"{LATEST}: {str(e).rsplit(': ', 1)[-1]}")
        status = read_status(d)
        if status["state"] == "damaged":
            damage.append(status["reason"])
        damage += filter(None, [runfiles.header_file_damage(d / META)])
        runs.append({"name": d.name, "path": d, "header": header, "latest": latest, "mtime": mtime,
                     "status": status, "damaged": "; ".join(damage) or None})
    return sorted(runs, key=lambda r: r["mtime"], reverse=True)


def is_run_dir(path: Path) -> bool:
    """A real folder with a run's name: a symlink is never a run (it could lead anywhere)."""
    return RUN_NAME.match(path.name) is not None and not path.is_symlink() and path.is_dir()


def latest_checkpoint(root: str | Path) -> Path | None:
    """The weights file of the most recently written complete checkpoint, or None."""
    runs = list_runs(root)
    return runs[0]["path"] / WEIGHTS if runs else None


# --- plot -----------------------------------------------------------------------
def plot_losses(directory: Path, records: list[dict], kept: tuple[int, float] | None = None) -> None:
    """Train and validation loss curves as loss.png and loss.pdf (like the lecture's plot); ``kept`` (step, loss)
    marks the kept model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    train = [(r["step"], r["train_loss"]) for r in records if "train_loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    if train:
        ax.plot(*zip(*train, strict=False), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=False), label="validation", marker="o", markersize=3)
    if kept is not None:
        ax.plot(*kept, marker="*", markersize=12, color="black", linestyle="none", label=f"kept (step {kept[0]:,})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/char)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    directory = Path(directory)
    for ext in ("png", "pdf"):
        atomic_write(directory / f"loss.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
