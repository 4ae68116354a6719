"""A run on disk: ``RunDir`` knows the files of one run folder and writes them atomically, in the right order.

A run lives in ``<root>/<run-name>/``:
  run.json             what the run was asked to be: the resolved model and train configs, the preset and the
                       corpus (name and where it is); the trainer process reads it (``charrnn train --run NAME``)
  model.safetensors    the kept model: the weights with the best validation loss so far, and a JSON
                       header (configs, vocabulary, step, losses, best_step/best_val_loss); on its own
                       enough to generate text, and the file everything generates from
  checkpoint.json      the same header, readable by people and other tools
  latest.safetensors   where training is: the newest saved weights, same format, header with their step
  train_state-<step>.pt  optimizer and data-stream state of the latest weights, for exact resume (tensors only)
  corpus.json          where the corpus is on this machine (resume reads it); headers name the corpus
                       by name and size only, so a shipped checkpoint carries no local path
  corpus.txt           the text itself, when it was pasted or uploaded rather than a file on this machine
  metrics.jsonl        one progress record per line, appended while training
  status.json          running / finished / stopped / failed, with pid and reason
  train.log            what the trainer process printed
  loss.png, loss.pdf   train and validation curves
Every file except metrics.jsonl and train.log is written to a temp file and renamed into place; a write that fails
(disk full, read-only) leaves no half-written file and raises ``WriteFailed`` saying so (``charrnn.runs.writes``).
Every file read back goes through the schemas of ``charrnn.runs.schema``: a file of the wrong shape marks its run
damaged instead of breaking whoever reads it.
A run written before the kept/latest split has no latest.safetensors: its model.safetensors is both.
"""
from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from charrnn.model import CharRNN
from charrnn.runs import schema, writes
from charrnn.runs.schema import Damaged, status_alive
from charrnn.runs.weights import CheckpointError, load_weights, read_json, read_weights_header, write_weights
from charrnn.runs.writes import LOW_ROOM, WriteFailed, append_line, atomic_write, human, write_anyway, write_json
from charrnn.vocab import Vocab

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) holding charrnn/
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}\Z")  # \Z: "$" would accept a trailing newline
FINAL_STATES = ("finished", "stopped", "failed")
TRAIN_STATE = re.compile(r"train_state-(\d+)\.pt")


def default_root(env) -> Path:
    """Where runs live unless told otherwise: $CHARRNN_CHECKPOINTS, else the project's checkpoints/ (CLI and app)."""
    return Path(env.get("CHARRNN_CHECKPOINTS") or PROJECT_DIR / "checkpoints").resolve()


def safe_run_name(text: str) -> str:
    """Turn any text into a valid run name (used for defaults built from file names)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:60]
    return name or "run"


def new_run_folder(root: str | Path, name: str, numbered: bool = False, tries: int = 999) -> RunDir | None:
    """A new, empty run folder under ``root``: ``name``, or where ``numbered``, the first free of ``name``,
    ``name-2``, ``name-3``, ... (``tries`` in all). Made with mkdir, so no other creator ever shares it, and a name
    is never reused. None when it (or every numbered one) is taken; a bad name is a ``CheckpointError``, a folder
    that cannot be written an ``OSError``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, tries + 1 if numbered else 2):
        run = RunDir.of(root, name if i == 1 else f"{name[:70]}-{i}")
        try:
            run.path.mkdir()
            return run
        except FileExistsError:
            continue
    return None


@dataclass(frozen=True)
class Resumed:
    """What a run continues from: the latest weights with their header and optimizer state, the kept model's
    header, and the corpus the run reads."""
    model: CharRNN
    vocab: Vocab
    header: dict           # the latest weights' header: its step and elapsed are where training is
    kept: dict             # the kept model's header: what is kept so far
    state: dict            # optimizer and data-stream state of the header's step
    corpus: Path | None    # where the run's text is (None: not recorded)


class RunDir:
    """One run folder: its files' names are attributes here and nowhere else, and each operation writes its files
    in the order that leaves the run consistent if the process dies between two of them."""

    WEIGHTS = "model.safetensors"
    LATEST = "latest.safetensors"
    META = "checkpoint.json"
    CONFIG = "run.json"
    CORPUS_RECORD = "corpus.json"
    CORPUS_COPY = "corpus.txt"
    METRICS = "metrics.jsonl"
    STATUS = "status.json"
    LOG = "train.log"
    PLOTS = ("loss.png", "loss.pdf")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name

    @classmethod
    def of(cls, root: str | Path, name: str) -> RunDir:
        """Run ``name`` under ``root``; refuses names that could leave it, and a link to another folder."""
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
        return cls(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def weights(self) -> Path:
        return self.path / self.WEIGHTS

    @property
    def latest(self) -> Path:
        """The weights training continues from: latest.safetensors, or model.safetensors in a run written before
        the kept/latest split (there the last weights are the kept ones)."""
        latest = self.path / self.LATEST
        return latest if latest.exists() else self.weights

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def status_file(self) -> Path:
        return self.path / self.STATUS

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def corpus_copy(self) -> Path:
        return self.path / self.CORPUS_COPY

    def has_model(self) -> bool:
        return self.weights.exists() or (self.path / self.LATEST).exists()

    # --- checkpoints ----------------------------------------------------------------
    def checkpoint(self, model: CharRNN, vocab: Vocab, meta: dict, train_state: dict, keep: bool,
                   records: list[dict], kept: tuple[int, float] | None) -> None:
        """Save where training is: its optimizer state, then latest.safetensors (so the latest always names a step
        whose state is on disk); then, when ``keep``, the kept model (never ahead of the step a resume starts at);
        then the loss plot, ``kept`` (step, loss) marked on it."""
        self.save_latest(model, vocab, meta, train_state)
        if keep:
            self.keep(model, vocab, meta)
        plot_losses(self.path, records, kept)

    def save_latest(self, model: CharRNN, vocab: Vocab, meta: dict, train_state: dict) -> dict:
        """Where training is: the optimizer state of ``meta["step"]``, then latest.safetensors."""
        self.save_train_state(meta["step"], train_state)
        return write_weights(self.path / self.LATEST, model, vocab, meta)

    def keep(self, model: CharRNN, vocab: Vocab, meta: dict) -> dict:
        """Write the kept model: weights and header as model.safetensors, and the header again as checkpoint.json."""
        header = write_weights(self.weights, model, vocab, meta)
        write_json(self.path / self.META, header)
        return header

    def header(self) -> dict:
        """The kept model's header."""
        return read_header(self.weights)

    def latest_header(self) -> dict:
        """The header of the latest weights: its step is where a resume starts."""
        return read_header(self.latest)

    def save_train_state(self, step: int, state: dict, keep: int = 2) -> None:
        """Optimizer + generator state for ``step``; older files beyond ``keep`` are removed."""
        atomic_write(self.path / f"train_state-{step}.pt", lambda tmp: torch.save(state, tmp))
        for old in sorted(self.train_state_steps())[:-keep]:
            (self.path / f"train_state-{old}.pt").unlink(missing_ok=True)

    def train_state_steps(self) -> list[int]:
        return [int(m.group(1)) for p in self.path.glob("train_state-*.pt") if (m := TRAIN_STATE.fullmatch(p.name))]

    def train_state(self, step: int) -> dict:
        path = self.path / f"train_state-{step}.pt"
        if not path.exists():
            raise CheckpointError(f"{path}: no optimizer state for step {step}; cannot resume exactly")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
            raise CheckpointError(f"{path}: unreadable optimizer state ({type(e).__name__})") from None

    def resume_step(self) -> int | None:
        """The step a resume starts from: the latest weights' step when its optimizer state exists; else None."""
        try:
            step = self.latest_header().get("step")
        except CheckpointError:
            return None
        return step if isinstance(step, int) and step in self.train_state_steps() else None

    def open_for_resume(self, device: str | torch.device = "cpu") -> Resumed:
        """Everything a resume needs, read in one go: latest weights, their header and optimizer state, the kept
        model's header and the corpus path. Refuses a run that is still training."""
        status = self.status()
        if status.get("state") == "running":
            raise CheckpointError(f"run {self.name!r} is still training (pid {status.get('pid')}); stop it first")
        kept = self.header()
        model, vocab, header = load_checkpoint(self.latest, device=device)
        state = self.train_state(header["step"])
        return Resumed(model, vocab, header, kept, state, self.corpus_path(header))

    def prepare_resume(self, step: int, data_path: str | Path, config: dict) -> None:
        """Before a resumed run trains: room for a checkpoint, metrics cut back to ``step``, leftovers of a process
        killed mid-write gone, the corpus's place and the configs it trains with recorded."""
        self.check_writable()
        self.check_room()
        self.truncate_metrics(step)
        for leftover in self.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        self.record_corpus(data_path)
        self.write_config(config)

    def prepare_new(self, data_path: str | Path, config: dict) -> None:
        """Before a new run trains: the folder writable, no metrics or status of an earlier attempt, the corpus's
        place and the configs recorded."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.check_writable()
        for stale in (self.METRICS, self.STATUS):
            (self.path / stale).unlink(missing_ok=True)
        self.record_corpus(data_path)
        self.write_config(config)

    # --- what the run was asked to be ---------------------------------------------------
    def write_config(self, config: dict) -> None:
        """run.json: the resolved configs, preset and corpus the trainer process reads."""
        write_json(self.path / self.CONFIG, config)

    def read_config(self) -> dict | None:
        """run.json as written (None when the run has none: one from before it, or an uploaded model)."""
        path = self.path / self.CONFIG
        if not path.is_file():
            return None
        try:
            return schema.run_config_of(read_json(path))
        except Damaged as e:
            raise CheckpointError(f"{path}: {e}") from None

    # --- where the corpus is -----------------------------------------------------------
    def record_corpus(self, data_path: str | Path) -> None:
        """Remember where this run's corpus is (relative to the run when it lies inside it, so the run can move)."""
        directory, data_path = self.path.resolve(), Path(data_path).resolve()
        try:
            where = str(data_path.relative_to(directory))
        except ValueError:
            where = str(data_path)
        write_json(self.path / self.CORPUS_RECORD, {"path": where})

    def corpus_path(self, header: dict | None = None) -> Path | None:
        """The corpus a resume reads: from corpus.json, else the path an older header recorded, else None."""
        try:
            where = schema.corpus_record_of(read_json(self.path / self.CORPUS_RECORD))["path"]
        except (CheckpointError, Damaged):
            where = None
        if not isinstance(where, str) or not where:
            data = (header or {}).get("data")
            where = data.get("path") if isinstance(data, dict) else None   # runs from before corpus.json
        if not isinstance(where, str) or not where:
            return None
        return self.path / where if not Path(where).is_absolute() else Path(where)

    # --- metrics -----------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        """Append one record as one line, whole or not at all."""
        append_line(self.metrics, (json.dumps(record) + "\n").encode("utf-8"))

    def records(self) -> list[dict]:
        """All records that fit the record schema, in order; a damaged line is skipped (``metrics_of`` counts
        them), and so is a last line still being written."""
        return self.metrics_of()[0]

    def metrics_of(self) -> tuple[list[dict], int, str | None]:
        """(records, damaged lines, the first damaged line's reason) of the run's metrics.jsonl."""
        try:
            raw = self.metrics.read_bytes()
        except FileNotFoundError:
            return [], 0, None
        return schema.records_in(raw)

    def truncate_metrics(self, step: int) -> None:
        """Keep only records up to ``step`` (on resume, so the curves continue without duplicates)."""
        kept = [r for r in self.records() if r["step"] <= step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.metrics, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    # --- status ------------------------------------------------------------------
    def write_status(self, state: str, **info) -> None:
        write_json(self.status_file, {"state": state, **info})

    def write_final_status(self, state: str, **info) -> bool:
        """The status a run ends with, written whatever the disk (else its 'running' status is removed: unknown
        beats a 'running' that no process backs). True when written."""
        return write_anyway(self.status_file, json.dumps({"state": state, **info}, indent=1).encode("utf-8"))

    def status_as_written(self) -> dict:
        """status.json through its schema: {"state": "unknown"} when there is none, {"state": "damaged", "reason":
        ...} when it does not fit (not JSON, a list, a pid of 20 digits, ...)."""
        try:
            return schema.read_status_file(self.status_file)
        except FileNotFoundError:
            return {"state": "unknown"}
        except Damaged as e:
            return {"state": "damaged", "reason": str(e)}
        except OSError as e:
            return {"state": "damaged", "reason": f"{self.STATUS} cannot be read ({e.strerror or e})"}

    def status(self) -> dict:
        """The run's status; a 'running' run whose process is gone reads as 'interrupted' at the step of its last
        checkpoint (``checkpoint_step``: that step, None when there is no checkpoint to resume from)."""
        status = self.status_as_written()
        if status["state"] == "running" and not status_alive(status):
            status = self.interrupted(status, "the training process is gone (killed, or out of memory)")
        return status

    def interrupted(self, status: dict, reason: str) -> dict:
        """``status`` turned 'interrupted' for ``reason``, naming the step a resume would start from."""
        status = {k: v for k, v in status.items() if k != "step"}
        step = self.resume_step()
        return {**status, "state": "interrupted", "reason": reason, "checkpoint_step": step,
                **({"step": step} if step is not None else {})}

    # --- the disk ----------------------------------------------------------------
    def check_writable(self) -> None:
        """Refuse to start when the run folder cannot be written (read-only folder, full disk)."""
        probe = self.path / ".write-test"
        try:
            probe.write_bytes(b"x" * 4096)
            probe.unlink()
        except OSError as e:
            raise OSError(f"cannot write to {self.path}: {e.strerror or e}") from None

    def check_room(self) -> None:
        """Refuse (``WriteFailed``) to continue a run the disk has no room to checkpoint: one more optimizer state
        and weights file, as big as the newest ones, and a little for metrics and plots."""
        sizes = {p.name: p.stat().st_size for p in self.path.glob("*") if p.is_file() and not p.is_symlink()}
        states = [size for name, size in sizes.items() if name.startswith("train_state-")]
        need = max(states, default=0) + max(sizes.get(self.LATEST, 0), sizes.get(self.WEIGHTS, 0)) + LOW_ROOM
        free = writes.free_bytes(self.path)
        if free < need:
            raise WriteFailed(errno.ENOSPC, f"disk full: {human(free)} free in {self.name}, and a checkpoint of it "
                                            f"needs about {human(need)}; free some space first")

    def stamps(self) -> tuple:
        """(size, mtime) of the files a view of the run draws from: unchanged means nothing new."""
        out = []
        for path in (self.metrics, self.status_file, self.log):
            try:
                st = path.stat()
                out.append((st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return tuple(out)

    def log_tail(self, lines: int = 12) -> str:
        """The last ``lines`` lines of the run's train.log ('' when there is none)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4000))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


# --- weights files, by run or by path ----------------------------------------------------
def checkpoint_file(path: str | Path) -> Path:
    """A run directory or a .safetensors file -> the weights file."""
    path = Path(path)
    if path.is_dir():
        path = path / RunDir.WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: only .safetensors checkpoints are loaded (pickles are never opened)")
    return path


def read_header(path: str | Path) -> dict:
    """The JSON header of a checkpoint (run directory or weights file), without loading its weights."""
    return read_weights_header(checkpoint_file(path))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", max_params: int | None = None):
    """Load (model, vocab, header) from a run directory or weights file; never unpickles, and never allocates
    a model its file does not hold (``charrnn.runs.weights``)."""
    return load_weights(checkpoint_file(path), device, max_params)


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
        run = RunDir(d)
        if not (is_run_dir(d) and run.weights.is_file()):
            continue
        try:
            header = run.header()
        except CheckpointError:
            continue
        latest, mtime, damage = header, run.weights.stat().st_mtime, []
        if (d / RunDir.LATEST).is_file():
            try:
                latest, mtime = read_header(d / RunDir.LATEST), max(mtime, (d / RunDir.LATEST).stat().st_mtime)
            except CheckpointError as e:
                latest = None
                damage.append(f"{RunDir.LATEST}: {str(e).rsplit(': ', 1)[-1]}")
        status = run.status()
        if status["state"] == "damaged":
            damage.append(status["reason"])
        damage += filter(None, [schema.header_file_damage(d / RunDir.META)])
        runs.append({"name": d.name, "path": d, "header": header, "latest": latest, "mtime": mtime,
                     "status": status, "damaged": "; ".join(damage) or None})
    return sorted(runs, key=lambda r: r["mtime"], reverse=True)


def is_run_dir(path: Path) -> bool:
    """A real folder with a run's name: a symlink is never a run (it could lead anywhere)."""
    return RUN_NAME.match(path.name) is not None and not path.is_symlink() and path.is_dir()


def run_dirs(root: Path) -> list[RunDir]:
    """The run folders of ``root``."""
    return [RunDir(d) for d in root.iterdir() if is_run_dir(d)] if root.is_dir() else []


def latest_checkpoint(root: str | Path) -> Path | None:
    """The weights file of the most recently written complete checkpoint, or None."""
    runs = list_runs(root)
    return RunDir(runs[0]["path"]).weights if runs else None


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
    for name in RunDir.PLOTS:
        atomic_write(Path(directory) / name, lambda tmp, ext=name.rsplit(".", 1)[1]: fig.savefig(tmp, format=ext))
