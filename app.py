"""Gradio app: train a character LSTM on text of your choice, watch it learn, generate at a temperature.

A thin UI over the ``charrnn`` engine. Training runs in its own process
(``python -m charrnn train``) that writes a run directory; the app follows it by
reading that directory (metrics.jsonl, status.json), so closing the tab or
restarting the app never stops a run, and a crashed trainer never takes the app
down. Generation reads checkpoints only, never the model being trained.

Inside the model (charrnn.inside computes, this file only draws): the next-character
distribution redrawn as the temperature slider moves, each generated character coloured
by its probability, one prime at several temperatures, and a unit's activation over a text.
"""
from __future__ import annotations

import hmac
import html
import json
import math
import os
import secrets
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
from charrnn.inside import (
    activations,
    generate_at_temperatures,
    next_char_logits,
    readable,
    suggest_units,
    top_distribution,
)
from charrnn.model import CharRNN, ModelConfig
from charrnn.presets import PRESETS, preset_configs, preset_vocab_kind
from charrnn.runner import build_corpus
from charrnn.sample import generate_with_probs
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
TIMELINE_SAMPLES = 40                    # most samples in a reviewed run's timeline
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


def no_markup(error) -> str:
    """An engine error for a toast or Markdown: a tag in the value it quotes shows as text; '>' stays readable."""
    return str(error).replace("&", "&amp;").replace("<", "&lt;")


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


class WholeNumber(gr.Number):
    """A gr.Number that refuses a value that is not a finite number with a message naming the field.

    The API takes any JSON: Gradio's own rounding (precision=0) fails on "abc", NaN or Infinity with a
    generic error that names nothing.
    """

    is_template = True   # drawn by the frontend as a plain Number

    def preprocess(self, payload):
        if payload is not None and (isinstance(payload, bool) or not isinstance(payload, (int, float))
                                    or not math.isfinite(payload)):
            raise gr.Error(f"{self.label} must be a whole number, got {esc(repr(payload))}.")
        return super().preprocess(payload)


def check_password(settings: Settings, password: str | None) -> None:
    if settings.password and not hmac.compare_digest((password or "").encode(), settings.password.encode()):
        raise gr.Error("Training controls need the password (set by CHARRNN_TRAIN_PASSWORD on this server).")


is_trainer = ck.trainer_alive


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
        raise gr.Error(no_markup(e)) from None
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
        raise gr.Error(f"Invalid setting: {no_markup(e)}") from None
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
        raise gr.Error(no_markup(e)) from None
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
        raise gr.Error(no_markup(e)) from None
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
    """The earlier samples as a timeline, oldest first, so a learner sees gibberish turn into words."""
    samples = [r for r in records if isinstance(r.get("sample"), str)][:-1]   # the latest has its own box
    return timeline_html(thin(samples, EARLIER_SAMPLES), "Samples appear here as the model trains.")


def timeline_html(samples: list[dict], empty: str) -> str:
    """Samples as a table, oldest first: step and time, validation loss (with a bar to compare), the text."""
    if not samples:
        return f"<p><em>{esc(empty)}</em></p>"
    losses = [r["val_loss"] for r in samples if finite(r.get("val_loss"))]
    top = max(losses, default=1.0) or 1.0
    rows = []
    for r in samples:
        loss = r.get("val_loss")
        loss_cell = (f"{loss:.3f}<div style='background:#ff7f0e;height:6px;width:{60 * loss / top:.0f}px;"
                     f"margin-top:3px'></div>") if finite(loss) else "–"
        rows.append(f"<tr><td style='white-space:nowrap;vertical-align:top'><strong>step {r['step']:,}</strong>"
                    f"<br><small>{clock(r.get('elapsed', 0))}</small></td>"
                    f"<td style='vertical-align:top'>{loss_cell}</td>"
                    f"<td><pre style='white-space:pre-wrap;margin:0'>{esc(r['sample'])}</pre></td></tr>")
    return ("<table class='charrnn-timeline' style='width:100%'><thead><tr><th>When</th><th>Validation loss</th>"
            f"<th>Sample</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def run_directory(settings: Settings, key) -> Path:
    """The run directory of a checkpoint-picker value (the bundled run or one under the checkpoints folder)."""
    if key == BUNDLED_KEY:
        return settings.bundled
    try:
        return ck.run_dir(settings.root, key)
    except ck.CheckpointError as e:
        raise gr.Error(no_markup(e)) from None


def run_timeline(settings: Settings, key) -> str:
    """A run's samples over time, kept in its metrics.jsonl: the whole story of a finished run."""
    if not key:
        return "<p><em>Pick a run to see its samples over time.</em></p>"
    try:
        directory = run_directory(settings, key)
    except gr.Error as e:
        return f"<p>⚠️ {esc(e.message)}</p>"
    samples = [r for r in ck.read_metrics(directory) if isinstance(r.get("sample"), str)]
    if not samples:
        return f"<p><em>{esc(directory.name)} has no samples yet.</em></p>"
    losses = [r["val_loss"] for r in samples if finite(r.get("val_loss"))]
    trend = f"; validation loss {losses[0]:.3f} → {losses[-1]:.3f}" if len(losses) > 1 else ""
    head = (f"<p><strong>{esc(directory.name)}</strong>: {len(samples)} samples from step {samples[0]['step']:,} "
            f"to step {samples[-1]['step']:,}{trend}.</p>")
    return head + timeline_html(thin(samples, TIMELINE_SAMPLES), "")


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
    directory = run_directory(settings, key)
    try:
        return ck.checkpoint_file(directory)
    except ck.CheckpointError as e:
        raise gr.Error(no_markup(e)) from None


def describe_checkpoint(settings: Settings, key) -> str:
    """One line on the chosen model: corpus, size, steps, validation loss."""
    if not key:
        return "No checkpoint yet: train one in the Train tab."
    try:
        header = ck.read_header(resolve_checkpoint(settings, key))
    except (gr.Error, ck.CheckpointError) as e:
        return f"⚠️ {e.message if isinstance(e, gr.Error) else no_markup(e)}"
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


def checkpoint_updates(settings: Settings, current, known: list[str], review=None) -> tuple:
    """New picker choices (a newly appeared run is selected), its description, the resume and review choices."""
    ckpts = list_checkpoints(settings)
    keys = [r["key"] for r in ckpts]
    value = picked_checkpoint(keys, current, known)
    resumable = [r["name"] for r in resumable_runs(settings.root)]
    choices = [(r["label"], r["key"]) for r in ckpts]
    picker = gr.update(choices=choices, value=value)
    resume = gr.update(choices=resumable, value=resumable[0] if resumable else None)
    reviewed = gr.update(choices=choices, value=review if review in keys else value)
    return picker, describe_checkpoint(settings, value), resume, reviewed, keys


def poll(settings: Settings, slot: JobSlot, view: dict | None, checkpoint, resume_run, review=None) -> tuple:
    """Refresh what changed: the followed run's view, and the checkpoint lists. Unchanged outputs are skipped."""
    view = dict(view or {})
    job = active_job(settings, slot)
    run = job["name"] if job else view.get("run") or last_run(settings, slot)
    run_sig = run_signature(settings, slot, run)
    train_out = training_view(settings, slot, run) if run_sig != view.get("run_sig") else (gr.skip(),) * 5
    ckpt_sig = (checkpoint_signature(settings), job and job["name"])
    if ckpt_sig != view.get("ckpt_sig"):
        picker, info, resume, reviewed, keys = checkpoint_updates(settings, checkpoint, view.get("keys", []), review)
    else:
        picker, info, resume, reviewed, keys = gr.skip(), gr.skip(), gr.skip(), gr.skip(), view.get("keys", [])
    return (*train_out, picker, info, resume, reviewed,
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
            raise gr.Error(no_markup(e)) from None
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


def usable_prime(vocab: Vocab, prime: str, what: str = "the prime") -> str:
    """The prime with characters the model does not know transliterated to ASCII where it can, else dropped (warned)."""
    missing = vocab.unknown_chars(prime)
    if not missing:
        return prime
    shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    gr.Warning(f"The model does not know {esc(shown)}: transliterated to ASCII where possible, "
               f"otherwise left out of {what}.")
    return vocab.clean(prime, "fold")


@dataclass
class Generation:
    """A generation as it grows: the prime used, and each new character with the probability it was drawn with."""

    prime: str
    chars: list[str] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.prime + "".join(self.chars)


def generation_stream(settings: Settings, cache: ModelCache, checkpoint, prime, temperature, length, top_k, seed):
    """Validate, then yield the growing Generation every few characters and once at the end (one object, updated)."""
    prime, temperature, length, top_k, seed = check_generation_args(prime, temperature, length, top_k, seed)
    model, vocab, _ = cache.get(resolve_checkpoint(settings, checkpoint))
    if top_k is not None and top_k > len(vocab):
        raise gr.Error(f"Top-k must be from 1 to {len(vocab)} (this model's vocabulary size); 0 or blank = off.")
    gen = Generation(usable_prime(vocab, prime))
    yield gen
    for n, (ch, p) in enumerate(generate_with_probs(model, vocab, gen.prime, length, temperature, top_k, seed), 1):
        gen.chars.append(ch)
        gen.probs.append(p)
        if n % STREAM_EVERY == 0:
            yield gen
    yield gen


def generate_text(settings: Settings, cache: ModelCache, checkpoint, prime, temperature, length, top_k, seed):
    """Stream the prime and the generated text, a few characters at a time."""
    for gen in generation_stream(settings, cache, checkpoint, prime, temperature, length, top_k, seed):
        yield gen.text


def generate_with_confidence(settings: Settings, cache: ModelCache, checkpoint, prime, temperature, length, top_k,
                             seed):
    """generate_text for the page: the text streams; at the end a record of each character's probability.

    The record goes to a gr.State, which gradio_client leaves out: /generate still returns only the text.
    """
    for gen in generation_stream(settings, cache, checkpoint, prime, temperature, length, top_k, seed):
        yield gen.text, gr.skip()
    yield gen.text, {"text": gen.text, "start": len(gen.prime), "probs": list(gen.probs),
                     "temperature": float(temperature), "top_k": int(top_k) if top_k else None}


# --- inside the model: what the app draws from charrnn.inside -------------------------
DEFAULT_PRIME = "ROMEO:\n"                # after a speaker's name the first letter is open: broad bars
TOP_CHARS = 15                            # bars in the next-character chart
CONTEXT_SHOWN = 40                        # characters of the text read shown above the chart
MAX_READ = MAX_PRIME + MAX_LENGTH         # most characters the chart reads (a prime plus a generation)
SIDE_TEMPERATURES = (0.2, 0.5, 0.8, 1.2, 1.6)
SIDE_LENGTH = 200                         # characters per temperature, side by side
MAX_INSIDE_CHARS = 3000                   # characters a unit's activations are computed over (one step each)
UNIT_KINDS = ("cell", "hidden")
PASSAGE = ("tinyshakespeare.txt", 557_600, 1500)   # file, offset, length: Romeo and Balthasar, names in caps
CHARS_STYLE = ("font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;line-height:1.7;"
               "color:#111;background:#fff;padding:10px;border-radius:6px;border:1px solid #ddd")


class Memo:
    """A bounded, thread-safe least-recently-used store of computed values (logits, activations)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, compute):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = compute()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


def load_model(settings: Settings, cache: ModelCache, checkpoint) -> tuple[CharRNN, Vocab, tuple]:
    """The model and vocabulary of a picker value, and a key naming that exact checkpoint file (for memos)."""
    path = resolve_checkpoint(settings, checkpoint)
    try:
        key = (str(path), path.stat().st_mtime_ns)     # before loading: a rewrite in between only wastes a memo
    except OSError:
        raise gr.Error(f"Checkpoint {esc(path.parent.name)} is gone; refresh the page.") from None
    model, vocab, _ = cache.get(path)
    return model, vocab, key


def confidence_colour(p: float) -> str:
    """Red for a surprising character (p near 0), through yellow, to green for an expected one (p near 1)."""
    return f"hsl({120 * min(max(p, 0.0), 1.0):.0f},75%,78%)"


def activation_colour(value: float, scale: float) -> str:
    """White at 0, deeper red for positive and deeper blue for negative values (full colour at +-scale)."""
    t = max(-1.0, min(1.0, value / scale))
    fade = round(255 * (1 - abs(t)))
    return f"rgb(255,{fade},{fade})" if t >= 0 else f"rgb({fade},{fade},255)"


def char_span(ch: str, colour: str, title: str) -> str:
    """One character on a coloured background; a newline shows as ⏎ and still breaks the line."""
    shown = "⏎\n" if ch == "\n" else esc(ch)
    return f'<span style="background:{colour}" title="{html.escape(title)}">{shown}</span>'


def swatches(items: list[tuple[str, str, str]], caption: str) -> str:
    """A legend: (colour, label, text colour) swatches and a caption."""
    cells = "".join(f"<span style='background:{c};color:{ink};padding:1px 7px;margin-right:2px;border-radius:3px'>"
                    f"{esc(label)}</span>" for c, label, ink in items)
    return f"<div style='margin:6px 0;font-size:0.9em'>{cells} &nbsp;{esc(caption)}</div>"


def coloured_text(prime: str, spans: str) -> str:
    return f"<div class='charrnn-chars' style='{CHARS_STYLE}'><span style='color:#888'>{esc(prime)}</span>{spans}</div>"


# --- the next character under the temperature slider --------------------------------
def read_prime(prime) -> tuple:
    """While the prime is edited, the chart reads it: the text, and the position slider at its end."""
    prime = prime if isinstance(prime, str) else ""
    return prime, gr.update(maximum=max(1, len(prime)), value=len(prime))


def next_char_view(settings: Settings, cache: ModelCache, memo: Memo, checkpoint, text, position,
                   temperature) -> tuple:
    """Bars of the likeliest characters after ``position`` characters of ``text``, and a line on them.

    The logits depend on the model and the text read, not on the temperature, so they are
    memoised: moving the temperature slider only redoes the softmax.
    """
    try:
        if not finite(temperature) or not 0 <= temperature <= 2:
            raise gr.Error(f"Temperature must be a number from 0 to 2, got {esc(repr(temperature))}.")
        model, vocab, key = load_model(settings, cache, checkpoint)
    except gr.Error as e:
        return gr.skip(), f"<p>⚠️ {esc(e.message)}</p>"
    text = text if isinstance(text, str) else ""
    pos = min(max(int(position), 0), len(text)) if finite(position) else len(text)
    read = vocab.clean(text[:pos][-MAX_READ:], "fold")
    logits = memo.get((key, read), lambda: next_char_logits(model, vocab, read))
    dist, entropy = top_distribution(logits, vocab, float(temperature), k=len(vocab))
    frame = pd.DataFrame({"char": pd.Series([readable(c) for c, _ in dist[:TOP_CHARS]], dtype="str"),
                          "probability": pd.Series([p for _, p in dist[:TOP_CHARS]], dtype="float64")})
    following = text[pos] if pos < len(text) else None
    return frame, distribution_line(read, following, dict(dist), entropy, float(temperature), len(vocab))


def distribution_line(read: str, following: str | None, probs: dict, entropy: float, temperature: float,
                      vocab_size: int) -> str:
    """What the chart shows: after which text, at which temperature, how uncertain, and what came next."""
    shown = esc("".join(readable(c) for c in read[-CONTEXT_SHOWN:]))
    where = (f"After <code>{'…' if len(read) > CONTEXT_SHOWN else ''}{shown}</code> ({len(read):,} characters read)"
             if read else "At the very start (nothing read yet)")
    at = "temperature 0 (greedy: the likeliest always wins)" if temperature == 0 else f"temperature {temperature:g}"
    line = (f"{where}, at {at}: entropy <strong>{entropy:.2f} bits</strong> (0 = certain; "
            f"{math.log2(vocab_size):.2f} = all {vocab_size} characters equally likely).")
    if following is not None:
        p = probs.get(following)
        line += f" The text goes on with <code>{esc(readable(following))}</code>" + \
            (f", which has p = {p:.3f} here." if p is not None else ", a character this model does not know.")
    return f"<p class='charrnn-dist-line'>{line}</p>"


# --- confidence: each generated character coloured by its probability ---------------
def confidence_legend() -> str:
    return swatches([(confidence_colour(p), f"p = {p:g}", "#111") for p in (0.02, 0.1, 0.25, 0.5, 0.75, 1.0)],
                    "surprising → expected (hover a character for its probability)")


def confidence_html(record: dict | None) -> str:
    """The generated text with each character coloured by the probability it was drawn with; the prime in grey."""
    if not record:
        return "<p><em>Generate some text: each character is then coloured by how likely the model found it.</em></p>"
    text, start, probs = record["text"], record["start"], record["probs"]
    spans = "".join(char_span(ch, confidence_colour(p), f"{readable(ch)}  p = {p:.3f}")
                    for ch, p in zip(text[start:], probs, strict=True))
    t, k = record.get("temperature"), record.get("top_k")
    how = f"temperature {t:g}" + (f", top-k {k}" if k else "")
    if t == 0:
        summary = f"Sampled greedily ({how}): every character was the likeliest, so each has p = 1."
    else:
        mean = sum(probs) / len(probs) if probs else math.nan
        summary = (f"Sampled at {how}: average probability {mean:.2f}; "
                   f"{sum(p < 0.1 for p in probs)} surprises (p < 0.1) in {len(probs):,} characters.")
    return f"<p>{summary}</p>{confidence_legend()}{coloured_text(text[:start], spans)}"


def after_generation(record: dict | None) -> tuple:
    """When a generation ends: its confidence colouring, and the chart reading it from just after the prime."""
    if not record:
        return gr.skip(), gr.skip(), gr.skip()
    return (confidence_html(record), record["text"],
            gr.update(maximum=max(1, len(record["text"])), value=record["start"]))


def stopped_confidence(record: dict | None):
    """Stop pressed: a generation cut short has no colours (only one that ran to its end keeps its record)."""
    if record:
        return gr.skip()
    return "<p><em>Stopped: the colours appear for a generation that runs to its end.</em></p>"


# --- the same prime and seed at several temperatures --------------------------------
def compare_temperatures(settings: Settings, cache: ModelCache, checkpoint, prime, seed,
                         length: int = SIDE_LENGTH) -> str:
    """One click: the prime continued at each of SIDE_TEMPERATURES with one seed, in columns."""
    prime, _, length, _, seed = check_generation_args(prime, 1.0, length, None, seed)
    model, vocab, _ = cache.get(resolve_checkpoint(settings, checkpoint))
    prime = usable_prime(vocab, prime)
    seed = seed or secrets.randbelow(2**31 - 1) + 1          # 0 = random: draw one, shared by every column
    runs = generate_at_temperatures(model, vocab, prime, length, list(SIDE_TEMPERATURES), seed=seed)
    return temperature_columns(prime, runs, seed)


def temperature_columns(prime: str, runs: dict[float, list[tuple[str, float]]], seed: int) -> str:
    columns = []
    for t, pairs in runs.items():
        mean = sum(p for _, p in pairs) / len(pairs) if pairs else math.nan
        spans = "".join(char_span(ch, confidence_colour(p), f"{readable(ch)}  p = {p:.3f}") for ch, p in pairs)
        columns.append(f"<div class='charrnn-temperature' data-temperature='{t:g}' style='min-width:0'>"
                       f"<h4 style='margin:0'>T = {t:g}</h4><small>average p {mean:.2f}</small>"
                       f"{coloured_text(prime, spans)}</div>")
    head = (f"<p>The same prime and the same seed ({seed}), so the same random numbers: only the temperature "
            "differs. Cold is safe and repetitive; hot is inventive, then garbled.</p>")
    grid = (f"<div style='display:grid;grid-template-columns:repeat({len(columns)},minmax(0,1fr));gap:8px'>"
            f"{''.join(columns)}</div>")
    return head + confidence_legend() + grid


# --- one unit's activation over a text ------------------------------------------------
@lru_cache(maxsize=4)
def corpus_passage(data_dir: Path, name: str, start: int, chars: int) -> str:
    """About ``chars`` characters of a bundled corpus from the first blank line after ``start``, whole lines."""
    try:
        text = read_text(data_dir / name)
    except CorpusError:
        return ""
    begin = text.find("\n\n", start if start < len(text) else 0)
    piece = text[begin + 2 if begin >= 0 else 0:][:chars]
    end = piece.rfind("\n")
    return piece[:end + 1] if end > 0 else piece


def inside_text(vocab: Vocab, text) -> tuple[str, str]:
    """The text a unit is shown on (capped; unknown characters folded or dropped, warned) and a note on the cap."""
    if not isinstance(text, str) or not text.strip():
        raise gr.Error("Give the model some text to read: the Shakespeare passage, the generated text or your own.")
    note = f" Showing the first {MAX_INSIDE_CHARS:,} characters." if len(text) > MAX_INSIDE_CHARS else ""
    text = usable_prime(vocab, text[:MAX_INSIDE_CHARS], "the text")
    if not text:
        raise gr.Error("This model knows none of the text's characters; try text like the one it was trained on.")
    return text, note


def unit_args(model: CharRNN, kind, layer, unit) -> tuple[str, int, int]:
    """(kind, layer from 1, unit from 0), or gr.Error naming the allowed range for this model."""
    if kind not in UNIT_KINDS:
        raise gr.Error(f"State must be 'cell' or 'hidden', got {esc(repr(kind))}.")
    layer = whole_number("Layer", layer, 1, model.config.layers)
    unit = whole_number("Unit", unit, 0, model.config.hidden - 1)
    return kind, layer, unit


def unit_view(settings: Settings, cache: ModelCache, memo: Memo, checkpoint, text, kind, layer, unit) -> str:
    """``text`` coloured by one unit's value after each character: blue negative, white 0, red positive."""
    model, vocab, key = load_model(settings, cache, checkpoint)
    kind, layer, unit = unit_args(model, kind, layer, unit)
    text, note = inside_text(vocab, text)
    acts = memo.get((key, text, layer), lambda: activations(model, vocab, text, layer - 1))
    return unit_html(text, acts[kind][:, unit].tolist(), kind, layer, unit, model.config, note)


def unit_html(text: str, values: list[float], kind: str, layer: int, unit: int, cfg: ModelConfig,
              note: str = "") -> str:
    # a hidden value of an LSTM lies in (-1, 1); a cell value is unbounded, so its colours span what it reaches
    scale = 1.0 if kind == "hidden" else max([1.0, *(abs(v) for v in values)])
    spans = "".join(char_span(ch, activation_colour(v, scale), f"{readable(ch)}  {v:+.3f}")
                    for ch, v in zip(text, values, strict=True))
    what = kind if cfg.cell == "lstm" or kind == "hidden" else f"hidden (a {cfg.cell.upper()} has no cell state)"
    head = (f"<p><strong>{what} unit {unit}</strong> of layer {layer} ({cfg.cell.upper()} {cfg.layers} x "
            f"{cfg.hidden}): its value after reading each character.{note}</p>")
    legend = swatches([(activation_colour(v, scale), f"{v:+.2g}" if v else "0", "#fff" if abs(v) == scale else "#111")
                       for v in (-scale, -scale / 2, 0, scale / 2, scale)],
                      "negative → positive (hover a character for its value)")
    return head + legend + coloured_text("", spans)


def suggest_and_show(settings: Settings, cache: ModelCache, memo: Memo, checkpoint, text, kind, layer) -> tuple:
    """The units that best follow simple features of the text (as radio choices), and the best one shown."""
    model, vocab, key = load_model(settings, cache, checkpoint)
    kind, layer, _ = unit_args(model, kind, layer, 0)
    text, _ = inside_text(vocab, text)
    found = memo.get((key, text, layer, kind, "suggest"), lambda: suggest_units(model, vocab, text, kind, layer - 1))
    if not found:
        return gr.update(choices=[], value=None), gr.skip(), \
            "<p>⚠️ No simple feature varies in this text; try a longer text with several lines.</p>"
    choices = [(f"{kind} {d['unit']}: {d['feature']} (r = {d['r']:+.2f})", f"{kind}/{d['unit']}/{d['feature']}")
               for d in found]
    best = found[0]["unit"]
    return (gr.update(choices=choices, value=choices[0][1]), best,
            unit_view(settings, cache, memo, checkpoint, text, kind, layer, best))


def pick_suggestion(value) -> tuple:
    """A suggestion's state kind and unit number, for the unit controls."""
    try:
        kind, unit, _ = str(value).split("/", 2)
        return kind, int(unit)
    except ValueError:
        return gr.skip(), gr.skip()


def first_look(settings: Settings, cache: ModelCache, memo: Memo, shown, checkpoint, text, kind, layer) -> tuple:
    """When the tab first opens: suggest units and show the best, so there is something to see at once.

    Opened before the page's first refresh has filled the checkpoint picker, it uses the
    checkpoint the picker is about to show: the newest.
    """
    if shown:
        return (gr.skip(),) * 4
    checkpoint = checkpoint or next((r["key"] for r in list_checkpoints(settings)), None)
    try:
        return True, *suggest_and_show(settings, cache, memo, checkpoint, text, kind, layer)
    except gr.Error as e:
        return False, gr.skip(), gr.skip(), f"<p>⚠️ {esc(e.message)}</p>"


# --- the interface ----------------------------------------------------------------------
SETTINGS = settings_from_env(os.environ)
SLOT = JobSlot()
MODELS = ModelCache(size=4)
LOGITS = Memo(size=64)        # next-character logits per (checkpoint, text read): small
ACTIVATIONS = Memo(size=6)    # a layer's (T, H) hidden and cell values per (checkpoint, text), and suggestions
torch.set_num_threads(1)  # generation steps are tiny; the trainer process gets the cores

PRESET_INFO = "; ".join(f"{name}: {m['cell'].upper()} {m['layers']}x{m['hidden']}, "
                        + (f"{t['minutes']:g} min" if t.get("minutes") else f"{t['iterations']:,} steps")
                        for name, (m, t) in PRESETS.items())
_corpora = bundled_corpora(SETTINGS.data_dir)
_corpus_md, _stats = describe_corpus(SETTINGS, "bundled", _corpora[0] if _corpora else None, None, None)
_fields = preset_fields("quick")
_passage = corpus_passage(SETTINGS.data_dir, *PASSAGE)

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
                    hidden = WholeNumber(_fields[0], precision=0, label="Hidden size", elem_id="hidden")
                    layers = WholeNumber(_fields[1], precision=0, label="Layers", elem_id="layers")
                    seq_len = WholeNumber(_fields[2], precision=0, label="Sequence length", elem_id="seq-len")
                    batch_size = WholeNumber(_fields[3], precision=0, label="Batch size", elem_id="batch-size")
                with gr.Row():
                    lr = gr.Number(_fields[4], label="Learning rate", elem_id="lr")
                    iterations = WholeNumber(_fields[5], precision=0, label="Iterations", info="0 = no step limit",
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
            with gr.Accordion("Earlier samples: from gibberish to words", open=True):
                earlier = gr.HTML(samples_html([]), elem_id="earlier-samples", max_height=300)
        with gr.Accordion("4. Samples over time of any run", open=False):
            gr.Markdown("Every sample a run took while training is kept with it (in its metrics.jsonl): pick a run to "
                        "review how its writing grew, step by step, as its validation loss fell.")
            review_run = gr.Dropdown([], label="Run", elem_id="review-run")
            review_html = gr.HTML(run_timeline(SETTINGS, None), elem_id="review-timeline", max_height=600)
        with gr.Accordion("Resume a stopped run", open=False):
            with gr.Row():
                resume_run = gr.Dropdown([], label="Run", allow_custom_value=True, elem_id="resume-run")
                more_iterations = WholeNumber(0, precision=0, label="More iterations", info="0 = the remaining budget")
                more_minutes = gr.Number(0, label="More minutes", info="used when more iterations is 0")
            resume_btn = gr.Button("Resume", elem_id="resume-btn")

    with gr.Tab("Generate", id="generate"):
        checkpoint = gr.Dropdown([], label="Checkpoint", info="newest first", allow_custom_value=True,
                                 elem_id="checkpoint")
        checkpoint_md = gr.Markdown(elem_id="checkpoint-info")
        with gr.Row():
            with gr.Column(scale=3):
                prime = gr.Textbox(label="Prime", value=DEFAULT_PRIME, lines=2,
                                   info="Text to start from; characters the model does not know are transliterated "
                                        "to ASCII or left out (with a warning). Empty = start of a line.",
                                   elem_id="prime")
                length = gr.Slider(1, MAX_LENGTH, value=500, step=1, label="Length (characters)", elem_id="length")
                with gr.Row():
                    top_k = WholeNumber(0, precision=0, label="Top-k", elem_id="top-k",
                                      info="sample among the k likeliest; 0 = off")
                    seed = WholeNumber(0, precision=0, label="Seed", elem_id="seed",
                                     info="0 = random; the same seed repeats the text")
                with gr.Row():
                    generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    gen_stop_btn = gr.Button("Stop", elem_id="gen-stop-btn")
                output = gr.Textbox(label="Output", lines=12, max_lines=30, interactive=False, buttons=["copy"],
                                    elem_id="output")
            with gr.Column(scale=2):
                temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature", elem_id="temperature",
                                        info="the logits are divided by it before the softmax: below 1 sharper "
                                             "(0 = always the likeliest), above 1 flatter. Watch the bars.")
                dist_plot = gr.BarPlot(None, x="char", y="probability", sort="-y", y_lim=[0, 1], height=280,
                                       title=f"Next character: the model's top {TOP_CHARS} guesses",
                                       x_title="next character", y_title="probability", elem_id="next-char-plot")
                dist_line = gr.HTML(elem_id="next-char-info")
                position = gr.Slider(0, len(DEFAULT_PRIME), value=len(DEFAULT_PRIME), step=1,
                                     label="Position in the text",
                                     info="characters read before the guess: of the prime, or after a generation "
                                          "of the output (it starts just after the prime)", elem_id="position")
        gr.Markdown("#### Confidence: how likely each generated character was")
        confidence = gr.HTML(confidence_html(None), elem_id="confidence", max_height=420)
        gr.Markdown("#### Temperature side by side")
        with gr.Row():
            compare_btn = gr.Button("Compare temperatures", size="md", elem_id="compare-btn", scale=0, min_width=240)
            gr.Markdown(f"The prime continued at T = {', '.join(f'{t:g}' for t in SIDE_TEMPERATURES)}: "
                        f"{SIDE_LENGTH} characters each, all with one seed (the Seed above, or a random one).")
        compare_html = gr.HTML(elem_id="compare")

    with gr.Tab("Inside a unit", id="inside") as inside_tab:
        gr.Markdown("Each character the LSTM reads updates its state: a few hundred numbers (units) per layer. Some "
                    "units come to track something about the text: whether a line is a speaker's name, how far "
                    "along a line we are... Pick a unit, or let the app suggest the ones that best follow a simple "
                    "feature, and see the text coloured by its value after each character (blue negative, red "
                    "positive), as in Karpathy's *The Unreasonable Effectiveness of Recurrent Neural Networks*. "
                    "The model is the one chosen in the Generate tab.")
        shown = gr.State(False)
        with gr.Row():
            with gr.Column(scale=1, min_width=220):
                kind = gr.Radio(list(UNIT_KINDS), value="cell", label="State", elem_id="unit-kind",
                                info="cell: the LSTM's memory c; hidden: its output h = o * tanh(c)")
                layer = WholeNumber(1, precision=0, label="Layer", info="1 = next to the input", elem_id="unit-layer")
                unit = WholeNumber(0, precision=0, label="Unit", info="0 to hidden size - 1", elem_id="unit")
                unit_btn = gr.Button("Show this unit", variant="primary", elem_id="unit-btn")
                suggest_btn = gr.Button("Suggest units", elem_id="suggest-btn")
                suggestions = gr.Radio([], label="Suggested units", elem_id="suggestions",
                                       info="r: correlation of the unit's value with the feature")
            with gr.Column(scale=3):
                unit_text = gr.Textbox(_passage, label="Text the model reads", lines=5, max_lines=10,
                                       info=f"at most {MAX_INSIDE_CHARS:,} characters are shown", elem_id="unit-text")
                with gr.Row():
                    passage_btn = gr.Button("A Shakespeare passage", size="sm", elem_id="passage-btn")
                    from_output_btn = gr.Button("The generated text", size="sm", elem_id="from-output-btn")
                unit_html_box = gr.HTML(elem_id="unit-view", max_height=640)

    # --- wiring ---
    hidden_opts = dict(api_visibility="private", show_progress="hidden", concurrency_limit=None)
    poll_outputs = [loss_plot, sample_box, earlier, progress_md, status_md, checkpoint, checkpoint_md, resume_run,
                    review_run, view]
    poll_fn = partial(poll, SETTINGS, SLOT)
    demo.load(poll_fn, [view, checkpoint, resume_run, review_run], poll_outputs, **hidden_opts)
    timer.tick(poll_fn, [view, checkpoint, resume_run, review_run], poll_outputs, **hidden_opts)
    review_run.change(partial(run_timeline, SETTINGS), review_run, review_html, **hidden_opts)

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
    # the text the chart reads: the prime as it is typed, or the last generation when it ends
    reading = gr.State(DEFAULT_PRIME)
    inside_opts = dict(api_visibility="private", show_progress="hidden", concurrency_id="inside", concurrency_limit=2)
    redraw = dict(fn=partial(next_char_view, SETTINGS, MODELS, LOGITS),
                  inputs=[checkpoint, reading, position, temperature], outputs=[dist_plot, dist_line],
                  trigger_mode="always_last", **inside_opts)
    gr.on([checkpoint.change, temperature.change, position.change], **redraw)
    prime.change(read_prime, prime, [reading, position], api_visibility="private", show_progress="hidden",
                 queue=False).then(**redraw)

    gen_record = gr.State(None)
    generate_btn.click(lambda: ("<p><em>Generating… the colours appear when the text is complete.</em></p>", None),
                       None, [confidence, gen_record], api_visibility="private", show_progress="hidden", queue=False)
    gen_event = generate_btn.click(partial(generate_with_confidence, SETTINGS, MODELS),
                                   [checkpoint, prime, temperature, length, top_k, seed], [output, gen_record],
                                   api_name="generate", concurrency_id="generate", concurrency_limit=6,
                                   preprocess=False)   # raw values: check_generation_args checks each one
    gen_event.then(after_generation, gen_record, [confidence, reading, position], api_visibility="private",
                   show_progress="hidden").then(**redraw)
    gen_stop_btn.click(None, None, None, cancels=[gen_event], api_visibility="private")
    gen_stop_btn.click(stopped_confidence, gen_record, confidence, api_visibility="private", show_progress="hidden",
                       queue=False)
    compare_btn.click(partial(compare_temperatures, SETTINGS, MODELS), [checkpoint, prime, seed], compare_html,
                      api_visibility="private", concurrency_id="generate", concurrency_limit=6)

    unit_inputs = [checkpoint, unit_text, kind, layer]
    show_unit = dict(fn=partial(unit_view, SETTINGS, MODELS, ACTIVATIONS), inputs=[*unit_inputs, unit],
                     outputs=unit_html_box, **inside_opts)
    inside_tab.select(partial(first_look, SETTINGS, MODELS, ACTIVATIONS), [shown, *unit_inputs],
                      [shown, suggestions, unit, unit_html_box], **inside_opts)
    unit_btn.click(**show_unit)
    unit.submit(**show_unit)
    suggest_btn.click(partial(suggest_and_show, SETTINGS, MODELS, ACTIVATIONS), unit_inputs,
                      [suggestions, unit, unit_html_box], **inside_opts)
    suggestions.input(pick_suggestion, suggestions, [kind, unit], api_visibility="private", show_progress="hidden",
                      queue=False).then(**show_unit)
    passage_btn.click(lambda: _passage, None, unit_text, api_visibility="private", queue=False).then(**show_unit)
    from_output_btn.click(lambda text: text, output, unit_text, api_visibility="private", queue=False) \
        .then(**show_unit)


if __name__ == "__main__":
    demo.queue(max_size=64).launch(max_file_size=MAX_UPLOAD)
