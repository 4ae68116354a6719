"""Start and Resume on ZeroGPU: the run trains inside the visitor's own event, in a GPU burst of the seconds they chose.

On a ZeroGPU Space the GPU exists only inside a function decorated with ``@spaces.GPU``, for the seconds it asks for,
charged to the visitor's daily quota; no background process can hold it. There Start writes the new run's folder as
the background trainer's Start does, then trains it in this event (``charrnn.runs.burst``, in the worker process ZeroGPU
runs the decorated function in), streaming the view the poll draws; Resume trains a stopped run N seconds more.
Generation stays outside any decorated function, on the CPU: it never spends a visitor's quota. Elsewhere the decorator
does nothing, and ``Settings.gpu_bursts`` runs this same path on the CPU. No gradio here: the caller's ``view(run)``
draws a run, as a dict keyed by component name.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import spaces
from spaces.config import Config as SpacesConfig

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import CorpusError
from charrnn.model import count_params
from charrnn.runs.burst import train_burst, training_now
from charrnn.runs.jobs import Job, JobError, budget, create_run, resumable_runs
from charrnn.runs.runner import run_config
from charrnn.runs.store import RunDir
from charrnn.runs.weights import CheckpointError
from charrnn.runs.writes import WriteFailed
from charrnn.train import TrainingDiverged
from webui.context import AppContext
from webui.errors import UserError, esc, no_markup
from webui.owners import check_password, check_run_owner
from webui.settings import Settings
from webui.train import actions
from webui.transfer import stamp

# An unauthenticated visitor has 2 GPU minutes a day: one burst of this, with its margin, fits in them.
MAX_BURST_S = 60.0
# What a burst asks ZeroGPU for beyond its seconds of training: the worker's start (fork, CUDA), the final
# evaluation, sample and checkpoint. A guess: not yet measured on a ZeroGPU Space.
BURST_MARGIN_S = 20.0
# Visitors' bursts at once: each holds a GPU of ZeroGPU's pool and a worker process forked from this app.
CONCURRENT_BURSTS = 2
# What a burst's worker says of a failure, in words: on ZeroGPU an exception crosses back as its class name only.
STATED = (CheckpointError, CorpusError, TrainingDiverged, WriteFailed)


def enabled(settings: Settings) -> bool:
    """Whether Start and Resume train in GPU bursts: on a ZeroGPU Space (as ``spaces`` detects one), or when set."""
    return settings.gpu_bursts or SpacesConfig.zero_gpu


def seconds_hint(cap: float = MAX_BURST_S) -> str:
    """The seconds field's hint: what a burst is, and whose quota it spends."""
    return (f"Start and Resume train this long on a shared GPU (at most {cap:g} s), then save and stop; Resume trains "
            "the run more. The time comes from your daily ZeroGPU quota: 2 minutes without a Hugging Face account, "
            f"5 with a free one, 40 with PRO; each burst also asks for about {BURST_MARGIN_S:g} s more to start and "
            "save. Generating text never uses it.")


def burst_seconds(value, cap: float = MAX_BURST_S) -> float:
    """The seconds a burst trains: ``value``, at most ``cap`` (an API caller who gives none gets the cap); a refusal
    for anything but a positive number."""
    if value is None:
        return cap
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"Seconds to train must be a number from 1 to {cap:g}, got {esc(repr(value)[:40])}.")
    return min(float(value), cap)


# --- the burst itself: what ZeroGPU runs on the GPU ---------------------------------------------------------
def burst_duration(root: str, name: str, seconds: float, overrides: dict | None = None) -> float:
    """What a burst asks ZeroGPU for (``@spaces.GPU``'s duration, given the burst's arguments)."""
    return seconds + BURST_MARGIN_S


@spaces.GPU(duration=burst_duration)
def gpu_burst(root: str, name: str, seconds: float, overrides: dict | None = None) -> Iterator[dict]:
    """Train run ``name`` of ``root`` for ``seconds`` (``charrnn.runs.burst``), yielding its records; a failure the
    engine states ends it with a record ``{"error": why}``. On ZeroGPU this runs in a worker that holds the GPU and
    sends the records back; closing the caller's generator closes this one there, after its next record."""
    try:
        yield from train_burst(RunDir.of(root, name), seconds, overrides=overrides)
    except STATED as e:
        yield {"error": str(e)}


# --- the app's side: refuse, prepare, stream --------------------------------------------------------------
class Bursts:
    """The runs this app trains in bursts now (events run on many threads): one burst per run at a time."""

    def __init__(self):
        self.lock, self.names = threading.Lock(), set()

    @contextmanager
    def holding(self, run: RunDir):
        """Hold ``run`` for a burst; refused while one of ours, or any live process, trains it."""
        with self.lock:
            if run.name in self.names or training_now(run):
                raise JobError(f"Run {run.name} is training now; resume it once it has stopped (a burst saves and "
                               "stops by itself).")
            self.names.add(run.name)
        try:
            yield
        finally:
            with self.lock:
                self.names.discard(run.name)


class RunFolder:
    """The job slot ``actions.start_training`` hands a new run to, for a burst: it writes the run's folder and
    run.json as the supervisor does, and starts no process (the burst trains the run in this event)."""

    def __init__(self, root: Path):
        self.root, self.started, self.model_cfg, self.data_name = Path(root), None, None, ""

    def start(self, name: str, text: str, path: Path | None, data_name: str, preset: str, model_cfg: ModelConfig,
              train_cfg: TrainConfig, on_created: Callable[[Path], None] | None = None, init=None) -> Job:
        run, data = create_run(self.root, name, text, path)
        run.write_config(run_config(preset, data_name, data, model_cfg, train_cfg, init))
        if on_created is not None:
            on_created(run.path)
        self.started, self.model_cfg, self.data_name = Job(name, os.getpid()), model_cfg, data_name
        return self.started


def start_burst(ctx: AppContext, bursts: Bursts, view: Callable[[str], dict], seconds, cap: float = MAX_BURST_S,
                train: Callable = gpu_burst, **form) -> Iterator[dict]:
    """Start: the form checked and the run's folder written as ``actions.start_training`` does (``form``: its
    arguments), then a burst of ``seconds``; yields views of the run, keyed by component name, and the message."""
    seconds = burst_seconds(seconds, cap)
    folder = RunFolder(ctx.settings.root)
    actions.start_training(dataclasses.replace(ctx, jobs=folder), **form)
    name = folder.started.name
    message = (f"Started run **{name}**: {count_params(folder.model_cfg):,} parameters on {esc(folder.data_name)}; "
               f"it trains {seconds:g} s now, then saves and stops. Resume trains it more.")
    yield from stream(ctx, bursts, view, name, seconds, None, stamp(message), train)


def resume_burst(ctx: AppContext, bursts: Bursts, view: Callable[[str], dict], password, run, more_iterations,
                 more_minutes, seconds, key=None, cap: float = MAX_BURST_S, train: Callable = gpu_burst,
                 visitor: str | None = None) -> Iterator[dict]:
    """Resume: a stopped run trained ``seconds`` more, with a bigger budget when more iterations or minutes are
    given (the run's budget is its schedule: bursts only slice it). Only its owner (``key``) may, with no password;
    ``visitor``'s wrong keys are counted (``owners.WrongKeys``)."""
    settings = ctx.settings
    check_password(settings, password)
    seconds = burst_seconds(seconds, cap)
    check_run_owner(settings, run, key, "resume", ctx.wrong_keys, visitor)
    runs = {r["name"]: r for r in resumable_runs(settings.root)}
    if run not in runs:
        raise JobError(ctx.jobs.not_resumable(run))
    header, folder = runs[run]["latest"], RunDir(runs[run]["path"])
    overrides = budget(header, more_iterations, more_minutes)
    check_resumable_here(folder, header)
    message = f"Resumed **{esc(run)}** from step {header['step']:,}: it trains {seconds:g} s now, then saves and stops."
    yield from stream(ctx, bursts, view, run, seconds, overrides, stamp(message), train)


def check_resumable_here(run: RunDir, header: dict) -> None:
    """What a resume in the burst would refuse, said before the GPU is asked for: the corpus gone, a full disk."""
    data = run.corpus_path(header)
    if data is None or not data.is_file():
        raise JobError(f"The corpus of {run.name} is gone; it cannot be resumed here.")
    try:
        run.check_room()
    except OSError as e:
        raise JobError(f"Run {run.name} cannot be resumed: {e}.") from None


def stream(ctx: AppContext, bursts: Bursts, view: Callable[[str], dict], name: str, seconds: float,
           overrides: dict | None, message: str, train: Callable) -> Iterator[dict]:
    """Views of run ``name`` while ``train`` bursts it: one at once, then at most one per poll interval, and the
    run's final one (its final status is written after its last record)."""
    def training(rec: dict | None) -> dict:
        return {**view(name), "status_md": burst_line(name, seconds, rec), "message": message}

    with bursts.holding(RunDir.of(ctx.settings.root, name)):
        yield training(None)
        shown = time.monotonic()
        with closing(train(str(ctx.settings.root), name, seconds, overrides)) as records:   # closed with this
            for rec in records:
                if "error" in rec:
                    raise UserError(no_markup(rec["error"]))
                if time.monotonic() - shown >= ctx.settings.poll_seconds and "end" not in rec:
                    yield training(rec)
                    shown = time.monotonic()
    yield {**view(name), "message": message}


def burst_line(name: str, seconds: float, rec: dict | None) -> str:
    """The status line while a burst trains (the run's status file names a process that is no trainer)."""
    at = f", at step {rec['step']:,}" if rec else ": starting"
    return f"**Training** {esc(name)} in a burst of {seconds:g} s{at}. It saves and stops by itself."
