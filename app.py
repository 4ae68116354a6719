"""Gradio app: train a character LSTM on text of your choice, watch it learn, generate at a temperature.

A thin UI over the ``charrnn`` engine. Training runs in its own process
(``python -m charrnn train``) that writes a run directory; the app follows it by
reading that directory (metrics.jsonl, status.json), so closing the tab or
restarting the app never stops a run, and a crashed trainer never takes the app
down. Generation reads checkpoints only, never the model being trained.
"""
from __future__ import annotations

import hmac
import html
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from charrnn import checkpoint as ck
from charrnn.data import CorpusError, decode_text, read_text
from charrnn.model import CharRNN, ModelConfig
from charrnn.presets import PRESETS, preset_configs, preset_vocab_kind
from charrnn.runner import build_corpus
from charrnn.sample import generate
from charrnn.train import TrainConfig
from charrnn.vocab import Vocab

APP_DIR = Path(__file__).resolve().parent
BUNDLED_KEY = "bundled/shakespeare"      # checkpoint-picker value of the shipped model ('/' is never in a run name)
MAX_CORPUS_BYTES = 10 * 1024 * 1024      # uploaded or pasted text
MAX_UPLOAD = "10mb"                      # launch(max_file_size=...): the server refuses bigger uploads outright
MAX_PARAMS = 20_000_000                  # models the app will train (2 shared CPU cores); the CLI has no cap
MAX_BATCH_CHARS = 262_144                # batch size x sequence length, to keep a run's memory sane
MAX_LENGTH = 5000                        # characters per generation
MAX_PRIME = 10_000                       # characters of prime
STREAM_EVERY = 8                         # characters between streamed updates
PLOT_POINTS = (400, 100)                 # most train and validation points drawn
EARLIER_SAMPLES = 12                     # most earlier samples listed
POLL_SECONDS = 1.5
# One torch thread for the trainer: the app's generation and polling share the 2 cores, and a 2-thread
# trainer sharing them with any other busy process collapses (measured 0.4k-8k vs 19k chars/s).
TRAINER_THREADS = 1
SOURCES = [("Bundled corpus", "bundled"), ("Upload a .txt file", "upload"), ("Paste text", "paste")]
TRAIN_FIELDS = ("seq_len", "batch_size", "lr", "iterations", "minutes")


# --- small helpers ------------------------------------------------------------------
def esc(text) -> str:
    """User-supplied text shown in a message: kept as text, never read as markup."""
    return html.escape(str(text), quote=False)


def human_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} bytes"


def stamp(message: str) -> str:
    return f"{time.strftime('%H:%M:%S')} · {message}"


def clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds // 60 % 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s"


# --- settings and the one training slot ---------------------------------------------
@dataclass
class Settings:
    """Where the app reads and writes; from the environment at start-up."""

    root: Path                     # run directories (CHARRNN_CHECKPOINTS)
    bundled: Path                  # the pretrained run shipped with the app
    data_dir: Path                 # bundled corpora
    password: str | None = None    # CHARRNN_TRAIN_PASSWORD: needed for Start / Stop / Resume when set


def settings_from_env(env: dict) -> Settings:
    root = Path(env.get("CHARRNN_CHECKPOINTS") or APP_DIR / "checkpoints")
    return Settings(root=root.resolve(), bundled=APP_DIR / "checkpoints" / "shakespeare",
                    data_dir=APP_DIR / "data", password=env.get("CHARRNN_TRAIN_PASSWORD") or None)


@dataclass
class JobSlot:
    """The app's one training process: a lock so two Starts cannot both spawn, and the child to reap."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    proc: subprocess.Popen | None = None
    run: str | None = None
    root: Path | None = None
    stopping: set = field(default_factory=set)

    def alive(self, root: Path) -> bool:
        return self.proc is not None and self.root == root and self.proc.poll() is None

    def exit_code(self, root: Path, run: str) -> int | None:
        """The exit status of our child for ``run`` once it has ended (None while running or not ours)."""
        if self.proc is None or self.root != root or self.run != run:
            return None
        return self.proc.poll()


def check_password(settings: Settings, password: str | None) -> None:
    if settings.password and not hmac.compare_digest((password or "").encode(), settings.password.encode()):
        raise gr.Error("Training controls need the password (set by CHARRNN_TRAIN_PASSWORD on this server).")


def is_trainer(pid) -> bool:
    """A live process that is a charrnn trainer (a reused pid of another program does not count)."""
    if not ck.pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # no /proc (macOS): trust the pid
        return True
    return any(arg == b"charrnn" or arg.endswith(b"/charrnn") for arg in argv)   # python -m charrnn ...


def run_dirs(root: Path) -> list[Path]:
    return [d for d in root.iterdir() if d.is_dir() and ck.RUN_NAME.match(d.name)] if root.is_dir() else []


def active_job(settings: Settings, slot: JobSlot) -> dict | None:
    """The training run in progress, {name, pid}: our child, or any run whose status says running with a live trainer.

    The status files make this hold across app restarts; our child covers the second
    before a new trainer writes its status.
    """
    if slot.alive(settings.root):
        return {"name": slot.run, "pid": slot.proc.pid}
    for d in run_dirs(settings.root):
        status = ck.read_status(d)
        if status.get("state") == "running" and is_trainer(status.get("pid")):
            return {"name": d.name, "pid": status["pid"]}
    return None


def refuse_if_busy(settings: Settings, slot: JobSlot) -> None:
    job = active_job(settings, slot)
    if job:
        raise gr.Error(f"A training run is in progress: {job['name']}. One run at a time: wait for it to finish "
                       "or press Stop. Its progress is shown below.")


def spawn_trainer(settings: Settings, slot: JobSlot, run: str, args: list[str]) -> int:
    """Start ``python -m charrnn train ARGS`` in its own session, logging to <run>/train.log; return its pid."""
    cmd = [sys.executable, "-m", "charrnn", "--checkpoints", str(settings.root), "train", *args,
           "--threads", str(TRAINER_THREADS), "--quiet"]
    directory = ck.run_dir(settings.root, run)
    with open(directory / "train.log", "ab") as log:
        slot.proc = subprocess.Popen(cmd, cwd=APP_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
    slot.run, slot.root = run, settings.root
    slot.stopping.discard(run)
    return slot.proc.pid


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
    """The text the user chose, or gr.Error saying what is wrong with it."""
    try:
        if source == "bundled":
            if bundled_name not in bundled_corpora(settings.data_dir):
                raise gr.Error(f"No bundled corpus named {esc(repr(bundled_name))}; pick one from the list.")
            path = settings.data_dir / bundled_name
            return CorpusChoice(read_text(path), bundled_name, path)
        if source == "upload":
            return read_upload(upload)
        if source == "paste":
            return read_pasted(pasted)
    except CorpusError as e:
        raise gr.Error(str(e)) from None
    raise gr.Error(f"Unknown corpus source {esc(repr(source))}; use bundled, upload or paste.")


def read_upload(upload: str | None) -> CorpusChoice:
    if not upload:
        raise gr.Error("Upload a .txt file first.")
    path = Path(upload)
    try:
        size = path.stat().st_size
        if size > MAX_CORPUS_BYTES:
            raise gr.Error(f"{esc(path.name)} is {size / 1e6:.1f} MB; the limit for uploads is "
                           f"{MAX_CORPUS_BYTES / 1e6:.0f} MB.")
        raw = path.read_bytes()
    except OSError:
        raise gr.Error("The uploaded file is no longer on the server; upload it again.") from None
    return CorpusChoice(decode_text(raw, path.name), path.name, None)


def read_pasted(pasted: str | None) -> CorpusChoice:
    if not isinstance(pasted, str) or not pasted.strip():
        raise gr.Error("Paste some text first.")
    size = len(pasted.encode("utf-8", errors="replace"))
    if size > MAX_CORPUS_BYTES:
        raise gr.Error(f"The pasted text is {size / 1e6:.1f} MB; the limit is {MAX_CORPUS_BYTES / 1e6:.0f} MB "
                       "(upload a file or use the command line for bigger texts).")
    return CorpusChoice(pasted, "pasted text", None)


@lru_cache(maxsize=16)
def text_stats(text: str) -> tuple[int, int]:
    return len(text), len(set(text))


def corpus_inputs_shown(source: str) -> list:
    """Show only the input of the chosen source: the bundled list, the upload box or the paste box."""
    return [gr.update(visible=source == value) for _, value in SOURCES]


def describe_corpus(settings: Settings, source: str, bundled_name: str | None, upload: str | None,
                    pasted: str | None) -> tuple[str, dict | None]:
    """A line on the chosen text (size, characters) and its stats for the model line; errors are shown, not raised."""
    try:
        choice = read_corpus(settings, source, bundled_name, upload, pasted)
    except gr.Error as e:
        return f"⚠️ {e.message}", None
    chars, distinct = text_stats(choice.text)
    size = len(choice.text.encode("utf-8"))
    line = (f"**{esc(choice.name)}**: {human_bytes(size)}, {chars:,} characters, "
            f"{distinct} distinct")
    return line, {"chars": chars, "distinct": distinct}


# --- model and training configuration -------------------------------------------------
def preset_fields(preset: str) -> list:
    """The preset's hidden, layers, seq_len, batch_size, lr, iterations, minutes (for the form)."""
    model_kw, train_kw = PRESETS[preset]
    return [model_kw["hidden"], model_kw["layers"], train_kw["seq_len"], train_kw["batch_size"],
            train_kw["lr"], train_kw.get("iterations", 0), train_kw.get("minutes", 0.0)]


def build_configs(preset: str, vocab_size: int, hidden, layers, seq_len, batch_size, lr, iterations,
                  minutes) -> tuple[ModelConfig, TrainConfig]:
    """The configs the trainer will use, or gr.Error naming the value and its allowed range."""
    if preset not in PRESETS:
        raise gr.Error(f"Unknown preset {esc(repr(preset))}; choose one of {', '.join(PRESETS)}.")
    train = dict(zip(TRAIN_FIELDS, (seq_len, batch_size, lr, iterations, minutes), strict=True))
    try:
        model_cfg, train_cfg = preset_configs(preset, vocab_size, {"hidden": hidden, "layers": layers}, train)
    except (ValueError, TypeError) as e:
        raise gr.Error(f"Invalid setting: {e}") from None
    if train_cfg.batch_size * train_cfg.seq_len > MAX_BATCH_CHARS:
        raise gr.Error(f"batch size x sequence length = {train_cfg.batch_size * train_cfg.seq_len:,}; "
                       f"the app allows at most {MAX_BATCH_CHARS:,} characters per batch.")
    return model_cfg, train_cfg


def count_params(model_cfg: ModelConfig) -> int:
    """Parameters of the model the config describes, built on the meta device (no memory, any size)."""
    with torch.device("meta"):
        return CharRNN(model_cfg).num_params()


def vocab_size_for(preset: str, stats: dict | None) -> int | None:
    if preset in PRESETS and preset_vocab_kind(preset) == "printable":
        return len(Vocab.printable())
    return stats["distinct"] if stats else None


def describe_model(stats: dict | None, preset: str, hidden, layers, seq_len, batch_size, lr, iterations,
                   minutes) -> str:
    """The parameter count of the configured model, or what is wrong with the settings."""
    vocab_size = vocab_size_for(preset, stats) or 1
    try:
        model_cfg, train_cfg = build_configs(preset, vocab_size, hidden, layers, seq_len, batch_size, lr,
                                             iterations, minutes)
    except gr.Error as e:
        return f"⚠️ {e.message}"
    params = count_params(model_cfg)
    vocab = f"{vocab_size}-character vocabulary" if stats or vocab_size > 1 else "vocabulary of the corpus"
    budget = " and ".join(filter(None, [f"{train_cfg.iterations:,} steps" if train_cfg.iterations else "",
                                        f"{train_cfg.minutes:g} min" if train_cfg.minutes else ""]))
    warn = f" ⚠️ over the app's limit of {MAX_PARAMS:,}" if params > MAX_PARAMS else ""
    return (f"**{params:,} parameters**{warn}: {model_cfg.cell.upper()} {model_cfg.layers} x {model_cfg.hidden}, "
            f"embedding {model_cfg.embed}, {vocab}; training for {budget}.")


# --- start, stop, resume ---------------------------------------------------------------
def start_training(settings: Settings, slot: JobSlot, password, source, bundled_name, upload, pasted, preset,
                   hidden, layers, seq_len, batch_size, lr, iterations, minutes, run_name) -> str:
    """Validate everything, then spawn the trainer on the chosen text; returns a message naming the run."""
    check_password(settings, password)
    choice = read_corpus(settings, source, bundled_name, upload, pasted)
    model_cfg, train_cfg = build_configs(preset, 1, hidden, layers, seq_len, batch_size, lr, iterations, minutes)
    try:
        corpus = build_corpus(choice.text, train_cfg)
    except (CorpusError, ValueError) as e:
        raise gr.Error(str(e)) from None
    params = count_params(ModelConfig(**{**model_cfg.to_dict(), "vocab_size": len(corpus.vocab)}))
    if params > MAX_PARAMS:
        raise gr.Error(f"That model has {params:,} parameters; the app trains at most {MAX_PARAMS:,}. "
                       "Lower the hidden size or the layers.")
    name = run_name.strip() if isinstance(run_name, str) and run_name.strip() else default_run_name(choice, preset)
    args = ["--preset", preset, "--hidden", str(model_cfg.hidden), "--layers", str(model_cfg.layers),
            "--seq-len", str(train_cfg.seq_len), "--batch-size", str(train_cfg.batch_size),
            "--lr", repr(float(train_cfg.lr)), "--iterations", str(int(train_cfg.iterations)),
            "--minutes", repr(float(train_cfg.minutes)), "--name", name]
    with slot.lock:
        refuse_if_busy(settings, slot)
        data = prepare_run_dir(settings.root, name, choice)
        pid = spawn_trainer(settings, slot, name, ["--data", str(data), "--data-name", choice.name, *args])
    return stamp(f"Started run **{name}** (pid {pid}): {params:,} parameters on {esc(choice.name)}.")


def default_run_name(choice: CorpusChoice, preset: str) -> str:
    stem = Path(choice.name).stem if choice.path or choice.name.endswith(".txt") else "pasted"
    return ck.safe_run_name(f"{stem}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}")


def prepare_run_dir(root: Path, name: str, choice: CorpusChoice) -> Path:
    """Create the run directory (refusing an existing run); write uploaded or pasted text there. Returns --data."""
    try:
        directory = ck.run_dir(root, name)
    except ck.CheckpointError as e:
        raise gr.Error(str(e)) from None
    if (directory / ck.WEIGHTS).exists():
        raise gr.Error(f"A run named {name} already exists; resume it or pick another name.")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if choice.path is not None:
            return choice.path
        corpus = directory / "corpus.txt"
        ck.atomic_write(corpus, lambda tmp: Path(tmp).write_text(choice.text, encoding="utf-8"))
        return corpus
    except OSError as e:
        raise gr.Error(f"Cannot write to {esc(str(root))}: {e.strerror or e}") from None


def stop_training(settings: Settings, slot: JobSlot, password) -> str:
    """Ask the running trainer to stop (SIGTERM): it finishes its step, saves a checkpoint and says 'stopped'."""
    check_password(settings, password)
    with slot.lock:
        job = active_job(settings, slot)
        if job is None:
            raise gr.Error("No training run is in progress.")
        try:
            os.kill(job["pid"], signal.SIGTERM)
        except ProcessLookupError:
            return stamp(f"Run **{job['name']}** had already ended.")
        slot.stopping.add(job["name"])
    return stamp(f"Stopping **{job['name']}**: it finishes the current step and saves a final checkpoint.")


def resumable_runs(root: Path) -> list[dict]:
    """Runs in ``root`` that can continue exactly: weights plus the optimizer state of their step, not running."""
    return [r for r in ck.list_runs(root)
            if r["status"].get("state") != "running" and r["header"].get("step") in ck.train_state_steps(r["path"])]


def resume_training(settings: Settings, slot: JobSlot, password, run, more_iterations, more_minutes) -> str:
    """Continue a stopped run from its checkpoint, optionally with a bigger budget (more steps or minutes)."""
    check_password(settings, password)
    runs = {r["name"]: r for r in resumable_runs(settings.root)}
    if run not in runs:
        raise gr.Error(f"No resumable run named {esc(repr(run))}; pick one from the list "
                       "(a run needs its checkpoint and optimizer state, and must not be running).")
    args = ["--resume", run, *budget_args(runs[run]["header"], more_iterations, more_minutes)]
    data = Path(runs[run]["header"].get("data", {}).get("path", ""))
    if not data.is_file():
        raise gr.Error(f"The corpus of {run} ({esc(str(data))}) is gone; it cannot be resumed here.")
    with slot.lock:
        refuse_if_busy(settings, slot)
        pid = spawn_trainer(settings, slot, run, args)
    return stamp(f"Resumed **{run}** (pid {pid}) from step {runs[run]['header']['step']:,}.")


def budget_args(header: dict, more_iterations, more_minutes) -> list[str]:
    """CLI overrides that extend a run's budget: totals count from the start, so add to what it has done."""
    more_iterations, more_minutes = more_iterations or 0, more_minutes or 0
    for name, value, high in (("more iterations", more_iterations, 10_000_000), ("more minutes", more_minutes, 10_080)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise gr.Error(f"{name} must be a number from 0 to {high:,}, got {esc(repr(value))}.")
    if more_iterations:
        return ["--iterations", str(header["step"] + int(more_iterations)), "--minutes", "0"]
    if more_minutes:
        return ["--minutes", repr(header.get("elapsed", 0) / 60 + float(more_minutes)), "--iterations", "0"]
    cfg = header.get("train_config", {})
    done = [header["step"] >= cfg["iterations"] if cfg.get("iterations") else False,
            header.get("elapsed", 0) >= 60 * cfg["minutes"] if cfg.get("minutes") else False]
    if any(done):
        raise gr.Error("This run has used its whole budget; give more iterations or more minutes to continue it.")
    return []


# --- following a run -------------------------------------------------------------------
def loss_frame(records: list[dict], points: tuple[int, int] = PLOT_POINTS) -> pd.DataFrame:
    """Train and validation losses as a typed long frame (step, loss, split), thinned for the browser."""
    rows = []
    for key, split, most in (("train_loss", "train", points[0]), ("val_loss", "validation", points[1])):
        pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        rows += [(s, v, split) for s, v in thin(pts, most)]
    return pd.DataFrame({"step": pd.Series([r[0] for r in rows], dtype="int64"),
                         "loss": pd.Series([r[1] for r in rows], dtype="float64"),
                         "split": pd.Series([r[2] for r in rows], dtype="str")})


def thin(items: list, most: int) -> list:
    """At most ``most`` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= most:
        return items
    step = (len(items) - 1) / (most - 1)
    return [items[round(i * step)] for i in range(most)]


def samples_html(records: list[dict]) -> str:
    """The earlier samples, oldest first, so a learner sees gibberish turn into words."""
    samples = [r for r in records if isinstance(r.get("sample"), str)][:-1]
    if not samples:
        return "<p><em>Samples appear here as the model trains.</em></p>"
    parts = []
    for r in thin(samples, EARLIER_SAMPLES):
        loss = f" · validation loss {r['val_loss']:.3f}" if isinstance(r.get("val_loss"), float) else ""
        parts.append(f"<p><strong>step {r['step']:,}</strong>{loss}</p><pre style='white-space:pre-wrap;"
                     f"margin:0 0 1em'>{esc(r['sample'])}</pre>")
    return "".join(parts)


def latest_sample(records: list[dict]):
    last = next((r for r in reversed(records) if isinstance(r.get("sample"), str)), None)
    if last is None:
        return gr.update(value="", label="Latest sample")
    return gr.update(value=last["sample"], label=f"Latest sample (step {last['step']:,})")


def progress_line(records: list[dict], status: dict) -> str:
    """Step / total, chars/s, elapsed, ETA and losses from the newest records."""
    if not records:
        return ""
    last, p = records[-1], records[-1].get("progress") or 0.0
    step = f"step **{last['step']:,}**"
    if status.get("state") in ("running", "stopping"):
        iterations, minutes = status.get("iterations"), status.get("minutes")
        step += f" / {iterations:,}" if iterations else f" / ~{round(last['step'] / p):,}" if p > 0 else ""
        step += f" ({minutes:g} min budget)" if minutes else ""
    parts = [step, f"{last.get('chars_per_s', 0):,.0f} chars/s", f"elapsed {clock(last.get('elapsed', 0))}"]
    if status.get("state") == "running" and 0 < p < 1:
        parts.append(f"ETA {clock(last.get('elapsed', 0) * (1 - p) / p)}")
    train = next((r["train_loss"] for r in reversed(records) if "train_loss" in r), None)
    val = next((r for r in reversed(records) if "val_loss" in r), None)
    if train is not None:
        parts.append(f"train loss {train:.3f}")
    if val is not None:
        parts.append(f"validation loss {val['val_loss']:.3f} ({val.get('val_bpc', math.nan):.2f} bits/char)")
    return " · ".join(parts)


def log_tail(directory: Path, lines: int = 12) -> str:
    try:
        with open(directory / "train.log", "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4000))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    tail = "\n".join(text.strip().splitlines()[-lines:]).replace("```", "'''")
    return f"\n\n```\n{tail}\n```" if tail else ""


def run_state(settings: Settings, slot: JobSlot, run: str) -> dict:
    """The run's status, with 'starting' / 'ended' for our child before it writes a status or after it dies early."""
    directory = settings.root / run
    status = ck.read_status(directory)
    if status.get("state") == "running" and not is_trainer(status.get("pid")):
        status = {**status, "state": "interrupted", "reason": "the training process is gone"}
    if status.get("state") == "unknown":
        if slot.alive(settings.root) and slot.run == run:
            status = {"state": "starting"}
        elif (code := slot.exit_code(settings.root, run)) is not None:
            stopped = code == -signal.SIGTERM and run in slot.stopping
            status = {"state": "cancelled"} if stopped else {"state": "ended", "code": code}
    if status.get("state") == "running" and run in slot.stopping:
        status = {**status, "state": "stopping"}
    return status


def status_line(run: str | None, status: dict, directory: Path | None) -> str:
    """One line saying what the run is doing, with the trainer's last log lines when it went wrong."""
    if run is None:
        return "No training run yet. Pick a corpus and a preset, then press **Start**."
    state, step = status.get("state"), status.get("step")
    at = f" at step {step:,}" if isinstance(step, int) else ""
    lines = {
        "starting": f"**Starting** {run}: reading the corpus and building the model…",
        "running": f"**Training** {run} (pid {status.get('pid')}).",
        "stopping": f"**Stopping** {run}: finishing the step and saving a final checkpoint…",
        "finished": f"**Finished**: {run}{at}. Generate from it in the Generate tab.",
        "stopped": f"**Stopped**: {run}{at}, with a final checkpoint. Resume it below, or generate from it.",
        "failed": f"**Failed**: {run}{at}: {esc(str(status.get('reason', 'see the log')))}",
        "interrupted": f"**Interrupted**: {run}{at} ({status.get('reason', '')}). "
                       "Resume it below from its last checkpoint.",
        "ended": f"**Failed**: {run} ended before training began (exit status {status.get('code')}).",
        "cancelled": f"**Stopped**: {run}, before training began (no checkpoint).",
    }
    line = lines.get(state, f"{run}: no status yet.")
    if state in ("failed", "interrupted", "ended", "unknown") and directory is not None:
        line += log_tail(directory)
    return line


def last_run(settings: Settings, slot: JobSlot) -> str | None:
    """What a page opened while nothing trains shows: the run this app started last, else the newest on disk."""
    if slot.run and slot.root == settings.root and (settings.root / slot.run).is_dir():
        return slot.run
    return recent_run(settings.root)


def recent_run(root: Path) -> str | None:
    """The run with the newest metrics."""
    stamped = [((d / ck.METRICS).stat().st_mtime, d.name) for d in run_dirs(root) if (d / ck.METRICS).is_file()]
    return max(stamped)[1] if stamped else None


def run_signature(settings: Settings, slot: JobSlot, run: str | None) -> tuple:
    """What the training view depends on; unchanged means the browser already shows it."""
    if run is None:
        return (None,)
    directory = settings.root / run
    stamps = []
    for name in (ck.METRICS, ck.STATUS, "train.log"):
        try:
            st = (directory / name).stat()
            stamps.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return (run, json.dumps(run_state(settings, slot, run), sort_keys=True), *stamps)


def training_view(settings: Settings, slot: JobSlot, run: str | None) -> tuple:
    """Plot, latest sample, earlier samples, progress line and status line of ``run``."""
    if run is None:
        return None, latest_sample([]), samples_html([]), "", status_line(None, {}, None)
    directory = settings.root / run
    records = ck.read_metrics(directory)
    status = run_state(settings, slot, run)
    return (plot_value(records), latest_sample(records), samples_html(records), progress_line(records, status),
            status_line(run, status, directory))


def plot_value(records: list[dict]) -> pd.DataFrame | None:
    """What the LinePlot gets: None (an empty plot) before the first loss, else the frame with both splits.

    The browser fixes the plot's lines and colours from the first data it draws: an empty frame
    leaves it drawing nothing for good, and a frame without validation rows never draws that
    curve. So a split with no points yet gets one placeholder row with no loss (drawn as nothing).
    """
    frame = loss_frame(records)
    if frame.empty:
        return None
    missing = [s for s in ("train", "validation") if s not in set(frame.split)]
    placeholder = pd.DataFrame({"step": pd.Series([frame.step.iloc[0]] * len(missing), dtype="int64"),
                                "loss": pd.Series([math.nan] * len(missing), dtype="float64"),
                                "split": pd.Series(missing, dtype="str")})
    return pd.concat([frame, placeholder], ignore_index=True) if missing else frame


# --- checkpoints for generation --------------------------------------------------------
def list_checkpoints(settings: Settings) -> list[dict]:
    """Runs with a checkpoint, newest first, plus the bundled model when the checkpoints folder is elsewhere."""
    found = [{**r, "key": r["name"], "label": r["name"]} for r in ck.list_runs(settings.root)]
    bundled = settings.bundled / ck.WEIGHTS
    if settings.bundled.parent.resolve() != settings.root.resolve() and bundled.is_file():
        try:
            header = ck.read_header(bundled)
        except ck.CheckpointError:
            header = None
        if header is not None:
            found.append({"name": settings.bundled.name, "path": settings.bundled, "header": header,
                          "mtime": bundled.stat().st_mtime, "status": {"state": "finished"},
                          "key": BUNDLED_KEY, "label": f"{settings.bundled.name} (bundled)"})
    for r in found:
        if r["status"].get("state") == "running":
            r["label"] += " (training)"
    return sorted(found, key=lambda r: r["mtime"], reverse=True)


def checkpoint_signature(settings: Settings) -> tuple:
    """(key, mtime) of every checkpoint file, cheap enough to compute on every poll."""
    sig = []
    for d in run_dirs(settings.root):
        try:
            sig.append((d.name, (d / ck.WEIGHTS).stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(sig))


def resolve_checkpoint(settings: Settings, key) -> Path:
    """The weights file of a picker value; refuses anything that is not a checkpoint the app offers."""
    if not key:
        raise gr.Error("No checkpoint chosen. Train one in the Train tab, or pick one from the list.")
    try:
        if key == BUNDLED_KEY:
            return ck.checkpoint_file(settings.bundled)
        return ck.checkpoint_file(ck.run_dir(settings.root, key))
    except ck.CheckpointError as e:
        raise gr.Error(str(e)) from None


def describe_checkpoint(settings: Settings, key) -> str:
    """One line on the chosen model: corpus, size, steps, validation loss."""
    if not key:
        return "No checkpoint yet: train one in the Train tab."
    try:
        header = ck.read_header(resolve_checkpoint(settings, key))
    except (gr.Error, ck.CheckpointError) as e:
        return f"⚠️ {getattr(e, 'message', str(e))}"
    cfg, data = header.get("model_config", {}), header.get("data", {})
    val = header.get("best_val_loss")
    val_text = f"validation loss {val:.3f} nats/char ({val / math.log(2):.2f} bits/char)" \
        if isinstance(val, float) and math.isfinite(val) else "no validation loss yet"
    params = f"{header['params']:,} parameters, " if isinstance(header.get("params"), int) else ""
    return (f"Trained on **{esc(str(data.get('name', '?')))}** ({data.get('chars', 0):,} chars) · "
            f"{str(cfg.get('cell', 'lstm')).upper()} {cfg.get('layers')} x {cfg.get('hidden')}, {params}"
            f"{len(header.get('vocab', ''))}-character vocabulary · {header.get('step', 0):,} steps · {val_text}")


def picked_checkpoint(keys: list[str], current, known: list[str]):
    """A run that appeared since the last refresh is selected; else the choice stands; else the newest."""
    fresh = [k for k in keys if k not in known]
    if fresh and known:
        return fresh[0]
    if current in keys:
        return current
    return keys[0] if keys else None


def checkpoint_updates(settings: Settings, current, known: list[str]) -> tuple:
    """New picker choices (a newly appeared run is selected), its description, and the resume choices."""
    ckpts = list_checkpoints(settings)
    keys = [r["key"] for r in ckpts]
    value = picked_checkpoint(keys, current, known)
    resumable = [r["name"] for r in resumable_runs(settings.root)]
    picker = gr.update(choices=[(r["label"], r["key"]) for r in ckpts], value=value)
    resume = gr.update(choices=resumable, value=resumable[0] if resumable else None)
    return picker, describe_checkpoint(settings, value), resume, keys


def poll(settings: Settings, slot: JobSlot, view: dict | None, checkpoint, resume_run) -> tuple:
    """Refresh what changed: the followed run's view, and the checkpoint lists. Unchanged outputs are skipped."""
    view = dict(view or {})
    job = active_job(settings, slot)
    run = job["name"] if job else view.get("run") or last_run(settings, slot)
    run_sig = run_signature(settings, slot, run)
    train_out = training_view(settings, slot, run) if run_sig != view.get("run_sig") else (gr.skip(),) * 5
    ckpt_sig = (checkpoint_signature(settings), job and job["name"])
    if ckpt_sig != view.get("ckpt_sig"):
        picker, info, resume, keys = checkpoint_updates(settings, checkpoint, view.get("keys", []))
    else:
        picker, info, resume, keys = gr.skip(), gr.skip(), gr.skip(), view.get("keys", [])
    return (*train_out, picker, info, resume,
            {"run": run, "run_sig": run_sig, "ckpt_sig": ckpt_sig, "keys": keys})


# --- generation -----------------------------------------------------------------------
class ModelCache:
    """Loaded checkpoints keyed by (file, mtime): a run's newer checkpoint is loaded fresh. Thread-safe, bounded."""

    def __init__(self, size: int = 4):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, path: Path):
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            raise gr.Error(f"Checkpoint {esc(path.parent.name)} is gone; refresh the page.") from None
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        try:
            loaded = ck.load_checkpoint(path)
        except ck.CheckpointError as e:
            raise gr.Error(str(e)) from None
        with self.lock:
            for old in [k for k in self.items if k[0] == key[0]]:
                del self.items[old]
            self.items[key] = loaded
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return loaded


def whole_number(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        raise gr.Error(f"{name} must be a whole number from {low:,} to {high:,}, got {esc(repr(value))}.")
    return int(value)


def check_generation_args(prime, temperature, length, top_k, seed) -> tuple:
    """(prime, temperature, length, top_k or None, seed or None), or gr.Error with the allowed range."""
    if prime is None:
        prime = ""
    if not isinstance(prime, str) or len(prime) > MAX_PRIME:
        raise gr.Error(f"The prime must be text of at most {MAX_PRIME:,} characters.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or not 0 <= temperature <= 2:
        raise gr.Error(f"Temperature must be a number from 0 to 2 (0 = greedy), got {esc(repr(temperature))}.")
    length = whole_number("Length", length, 1, MAX_LENGTH)
    top_k = None if top_k is None else whole_number("Top-k", top_k, 0, 1_114_112) or None  # 0 = off
    seed = None if seed is None else whole_number("Seed", seed, 0, 2**63 - 1) or None      # 0 = random
    return prime, float(temperature), length, top_k, seed


def usable_prime(vocab: Vocab, prime: str) -> str:
    """The prime with characters the model does not know transliterated to ASCII where it can, else dropped (warned)."""
    missing = vocab.unknown_chars(prime)
    if not missing:
        return prime
    shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    gr.Warning(f"The model does not know {esc(shown)}: transliterated to ASCII where possible, "
               "otherwise left out of the prime.")
    return vocab.clean(prime, "fold")


def generate_text(settings: Settings, cache: ModelCache, checkpoint, prime, temperature, length, top_k, seed):
    """Stream the prime and the generated text, a few characters at a time."""
    prime, temperature, length, top_k, seed = check_generation_args(prime, temperature, length, top_k, seed)
    model, vocab, _ = cache.get(resolve_checkpoint(settings, checkpoint))
    if top_k is not None and top_k > len(vocab):
        raise gr.Error(f"Top-k must be from 1 to {len(vocab)} (this model's vocabulary size); 0 or blank = off.")
    prime = usable_prime(vocab, prime)
    pieces = [prime]
    yield prime
    for n, ch in enumerate(generate(model, vocab, prime, length, temperature, top_k, seed), 1):
        pieces.append(ch)
        if n % STREAM_EVERY == 0:
            yield "".join(pieces)
    yield "".join(pieces)


# --- the interface ----------------------------------------------------------------------
SETTINGS = settings_from_env(os.environ)
SLOT = JobSlot()
MODELS = ModelCache(size=4)
torch.set_num_threads(1)  # generation steps are tiny; the trainer process gets the cores

PRESET_INFO = "; ".join(f"{name}: {m['cell'].upper()} {m['layers']}x{m['hidden']}, "
                        + (f"{t['minutes']:g} min" if t.get("minutes") else f"{t['iterations']:,} steps")
                        for name, (m, t) in PRESETS.items())
_corpora = bundled_corpora(SETTINGS.data_dir)
_corpus_md, _stats = describe_corpus(SETTINGS, "bundled", _corpora[0] if _corpora else None, None, None)
_fields = preset_fields("quick")

with gr.Blocks(title="charrnn: watch an LSTM learn to write") as demo:
    gr.Markdown("# Watch an LSTM learn to write\nTrain a character-level LSTM on a text of your choice and watch "
                "its loss fall and its samples turn from gibberish into words; then generate text from it and "
                "play with the temperature.")
    view = gr.State({})
    corpus_stats = gr.State(_stats)
    timer = gr.Timer(POLL_SECONDS)
    with gr.Tab("Train", id="train"):
        with gr.Row():
            with gr.Column():
                gr.Markdown("### 1. Text")
                source = gr.Radio(SOURCES, value="bundled", label="Corpus", elem_id="corpus-source")
                bundled_name = gr.Dropdown(_corpora, value=_corpora[0] if _corpora else None, label="Bundled corpus",
                                           elem_id="bundled-corpus")
                upload = gr.File(file_types=[".txt"], type="filepath", label="Upload a UTF-8 .txt file",
                                 visible=False, elem_id="upload")
                pasted = gr.Textbox(lines=8, max_lines=16, label="Paste text", visible=False, elem_id="pasted",
                                    placeholder=f"At least a few hundred characters, at most "
                                                f"{MAX_CORPUS_BYTES // 2**20} MB.")
                corpus_md = gr.Markdown(_corpus_md, elem_id="corpus-info")
            with gr.Column():
                gr.Markdown("### 2. Model and training")
                preset = gr.Dropdown(list(PRESETS), value="quick", label="Preset", info=PRESET_INFO, elem_id="preset")
                with gr.Row():
                    hidden = gr.Number(_fields[0], precision=0, label="Hidden size", elem_id="hidden")
                    layers = gr.Number(_fields[1], precision=0, label="Layers", elem_id="layers")
                    seq_len = gr.Number(_fields[2], precision=0, label="Sequence length", elem_id="seq-len")
                    batch_size = gr.Number(_fields[3], precision=0, label="Batch size", elem_id="batch-size")
                with gr.Row():
                    lr = gr.Number(_fields[4], label="Learning rate", elem_id="lr")
                    iterations = gr.Number(_fields[5], precision=0, label="Iterations", info="0 = no step limit",
                                           elem_id="iterations")
                    minutes = gr.Number(_fields[6], label="Minutes", info="0 = no time limit", elem_id="minutes")
                model_md = gr.Markdown(describe_model(_stats, "quick", *_fields), elem_id="model-info")
                run_name = gr.Textbox(label="Run name (optional)", placeholder="corpus-preset-date-time",
                                      elem_id="run-name")
                password = gr.Textbox(label="Training password", type="password", visible=bool(SETTINGS.password))
                with gr.Row():
                    start_btn = gr.Button("Start training", variant="primary", elem_id="start-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                train_message = gr.Markdown(elem_id="train-message")
        gr.Markdown("### 3. Watch it learn")
        status_md = gr.Markdown(elem_id="train-status")
        progress_md = gr.Markdown(elem_id="train-progress")
        loss_plot = gr.LinePlot(None, x="step", y="loss", color="split", title="Loss (nats per character)",
                                y_title="loss", color_map={"train": "#1f77b4", "validation": "#ff7f0e"},
                                height=320, elem_id="loss-plot")
        with gr.Row():
            sample_box = gr.Textbox(label="Latest sample", lines=8, max_lines=12, interactive=False,
                                    elem_id="latest-sample")
            with gr.Accordion("Earlier samples", open=True):
                earlier = gr.HTML(samples_html([]), elem_id="earlier-samples", max_height=300)
        with gr.Accordion("Resume a stopped run", open=False):
            with gr.Row():
                resume_run = gr.Dropdown([], label="Run", allow_custom_value=True, elem_id="resume-run")
                more_iterations = gr.Number(0, precision=0, label="More iterations", info="0 = the remaining budget")
                more_minutes = gr.Number(0, label="More minutes", info="used when more iterations is 0")
            resume_btn = gr.Button("Resume", elem_id="resume-btn")

    with gr.Tab("Generate", id="generate"):
        checkpoint = gr.Dropdown([], label="Checkpoint", info="newest first", allow_custom_value=True,
                                 elem_id="checkpoint")
        checkpoint_md = gr.Markdown(elem_id="checkpoint-info")
        with gr.Row():
            with gr.Column(scale=2):
                prime = gr.Textbox(label="Prime", value="ROMEO:", lines=2,
                                   info="Text to start from; characters the model does not know are transliterated "
                                        "to ASCII or left out (with a warning). Empty = start of a line.",
                                   elem_id="prime")
            with gr.Column(scale=2):
                temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature", elem_id="temperature",
                                        info="0 = greedy (always the likeliest character); below 1 safer, above 1 "
                                             "wilder")
                length = gr.Slider(1, MAX_LENGTH, value=500, step=1, label="Length (characters)", elem_id="length")
                with gr.Row():
                    top_k = gr.Number(0, precision=0, label="Top-k", elem_id="top-k",
                                      info="sample among the k likeliest; 0 = off")
                    seed = gr.Number(0, precision=0, label="Seed", elem_id="seed",
                                     info="0 = random; the same seed repeats the text")
        with gr.Row():
            generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
            gen_stop_btn = gr.Button("Stop", elem_id="gen-stop-btn")
        output = gr.Textbox(label="Output", lines=14, max_lines=30, interactive=False, buttons=["copy"],
                            elem_id="output")

    # --- wiring ---
    hidden_opts = dict(api_visibility="private", show_progress="hidden", concurrency_limit=None)
    poll_outputs = [loss_plot, sample_box, earlier, progress_md, status_md, checkpoint, checkpoint_md, resume_run,
                    view]
    poll_fn = partial(poll, SETTINGS, SLOT)
    demo.load(poll_fn, [view, checkpoint, resume_run], poll_outputs, **hidden_opts)
    timer.tick(poll_fn, [view, checkpoint, resume_run], poll_outputs, **hidden_opts)

    describe_opts = dict(api_visibility="private", show_progress="hidden", concurrency_id="describe",
                         concurrency_limit=1, trigger_mode="always_last")
    model_inputs = [corpus_stats, preset, hidden, layers, seq_len, batch_size, lr, iterations, minutes]
    corpus_inputs = [source, bundled_name, upload, pasted]
    source.change(corpus_inputs_shown, source, [bundled_name, upload, pasted], api_visibility="private",
                  show_progress="hidden", queue=False)
    for trigger in (source.change, bundled_name.change, upload.change, pasted.change):
        trigger(partial(describe_corpus, SETTINGS), corpus_inputs, [corpus_md, corpus_stats], **describe_opts) \
            .then(describe_model, model_inputs, model_md, **describe_opts)
    preset.change(preset_fields, preset, [hidden, layers, seq_len, batch_size, lr, iterations, minutes],
                  api_visibility="private", show_progress="hidden") \
        .then(describe_model, model_inputs, model_md, **describe_opts)
    for box in (hidden, layers, seq_len, batch_size, lr, iterations, minutes):
        box.input(describe_model, model_inputs, model_md, **describe_opts)

    train_opts = dict(concurrency_id="train-control", concurrency_limit=1)
    start_btn.click(partial(start_training, SETTINGS, SLOT),
                    [password, *corpus_inputs, preset, hidden, layers, seq_len, batch_size, lr, iterations, minutes,
                     run_name], train_message, api_name="start_training", **train_opts)
    stop_btn.click(partial(stop_training, SETTINGS, SLOT), password, train_message, api_name="stop_training",
                   **train_opts)
    resume_btn.click(partial(resume_training, SETTINGS, SLOT), [password, resume_run, more_iterations, more_minutes],
                     train_message, api_name="resume_training", **train_opts)

    checkpoint.input(partial(describe_checkpoint, SETTINGS), checkpoint, checkpoint_md, api_name="describe_checkpoint",
                     show_progress="hidden")
    gen_event = generate_btn.click(partial(generate_text, SETTINGS, MODELS),
                                   [checkpoint, prime, temperature, length, top_k, seed], output, api_name="generate",
                                   concurrency_id="generate", concurrency_limit=6)
    gen_stop_btn.click(None, None, None, cancels=[gen_event], api_visibility="private")


if __name__ == "__main__":
    demo.queue(max_size=64).launch(max_file_size=MAX_UPLOAD)
