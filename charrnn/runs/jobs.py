"""The one training job of a checkpoints folder: start a trainer process, follow it, stop it, resume it.

A trainer is ``python -m charrnn train ...`` in its own session, logging to
``<run>/train.log``; it writes the run directory, and everything here reads that
directory back (status.json, metrics.jsonl), so a job outlives the process that
started it: an app restarted mid-run finds its job again. One job at a time per
folder: ``Supervisor.start`` and ``resume`` refuse while another trainer runs. A trainer that has written
its final status is done with its run, even while its process is still exiting. Run files are read through
``charrnn.runfiles``: a damaged one marks its run damaged, it never breaks a listing.
No UI here: errors are ``JobError`` with a message that says what to do.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from charrnn.config import ModelConfig, TrainConfig, config_argv
from charrnn.runs.schema import trainer_alive
from charrnn.runs.store import (
    FINAL_STATES,
    METRICS,
    PROJECT_DIR,
    STATUS,
    WEIGHTS,
    check_room,
    corpus_path,
    interrupted,
    is_run_dir,
    list_runs,
    read_status,
    read_status_file,
    run_dir,
    train_state_steps,
    write_final_status,
)
from charrnn.runs.weights import CheckpointError
from charrnn.runs.writes import atomic_write

MAX_MORE_ITERATIONS = 10_000_000
MAX_MORE_MINUTES = 10_080          # a week, as TrainConfig allows


class JobError(ValueError):
    """A job cannot be started, stopped or resumed; the message says why and what to do instead."""


@dataclass(frozen=True)
class Job:
    name: str
    pid: int


# --- run directories --------------------------------------------------------------
def run_dirs(root: Path) -> list[Path]:
    """The run folders of ``root``: real folders with a run's name (a symlinked one is no run)."""
    return [d for d in root.iterdir() if is_run_dir(d)] if root.is_dir() else []


def recent_run(root: Path) -> str | None:
    """The run with the newest metrics."""
    stamped = [((d / METRICS).stat().st_mtime, d.name) for d in run_dirs(root) if (d / METRICS).is_file()]
    return max(stamped)[1] if stamped else None


def running_job(root: Path) -> Job | None:
    """A run whose status says running, with a live trainer behind it."""
    for d in run_dirs(root):
        status = read_status_file(d)
        if status["state"] == "running" and trainer_alive(status.get("pid")):
            return Job(d.name, status["pid"])
    return None


def resumable_runs(root: Path) -> list[dict]:
    """Runs that can continue exactly: latest weights plus the optimizer state of their step, neither running nor
    of a damaged status (it cannot say whether a trainer still writes there).

    Each run's ``latest`` header (where training is) says its step; ``header`` is the kept model's."""
    return [r for r in list_runs(root)
            if r["status"]["state"] not in ("running", "damaged") and r["latest"] is not None
            and r["latest"].get("step") in train_state_steps(r["path"])]


def log_tail(directory: Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a run's train.log ('' when there is none)."""
    try:
        with open(Path(directory) / "train.log", "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4000))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def prepare_run_dir(root: Path, name: str, text: str, path: Path | None) -> Path:
    """Create run ``name`` (refusing an existing one); write ``text`` there unless it is file ``path``.

    Returns the file the trainer reads (its --data)."""
    try:
        directory = run_dir(root, name)
    except CheckpointError as e:
        raise JobError(str(e)) from None
    if (directory / WEIGHTS).exists():
        raise JobError(f"A run named {name} already exists; resume it or pick another name.")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if path is not None:
            return path
        corpus = directory / "corpus.txt"
        atomic_write(corpus, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return corpus
    except OSError as e:
        raise JobError(f"Cannot write to {root}: {e.strerror or e}") from None


def budget_args(header: dict, more_iterations=0, more_minutes=0.0, cap_minutes: float = 0) -> list[str]:
    """CLI overrides that extend a run's budget: totals count from the start, so add to what it has done.

    ``header`` is the latest weights' header (``latest_header``): its step and elapsed are what was done.
    ``cap_minutes`` > 0 bounds the time this resumed part may train (a visitor's cap), whatever the budget."""
    more_iterations, more_minutes = more_iterations or 0, more_minutes or 0
    for name, value, high in (("more iterations", more_iterations, MAX_MORE_ITERATIONS),
                              ("more minutes", more_minutes, MAX_MORE_MINUTES)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise JobError(f"{name} must be a number from 0 to {high:,}, got {value!r}.")
    done_minutes = header.get("elapsed", 0) / 60
    capped = min(done_minutes + cap_minutes, MAX_MORE_MINUTES) if cap_minutes else 0
    if more_iterations:
        return ["--iterations", str(header["step"] + int(more_iterations)), "--minutes", repr(capped)]
    if more_minutes:
        more = min(float(more_minutes), cap_minutes) if cap_minutes else float(more_minutes)
        return ["--minutes", repr(done_minutes + more), "--iterations", "0"]
    cfg = header.get("train_config", {})
    done = [header["step"] >= cfg["iterations"] if cfg.get("iterations") else False,
            header.get("elapsed", 0) >= 60 * cfg["minutes"] if cfg.get("minutes") else False]
    if any(done):
        raise JobError("This run has used its whole budget; give more iterations or more minutes to continue it.")
    if capped and not 0 < cfg.get("minutes", 0) <= capped:
        return ["--minutes", repr(capped)]
    return []


def capped_config(train_cfg: TrainConfig, cap_minutes: float) -> TrainConfig:
    """``train_cfg`` with at most ``cap_minutes`` of training (0: no cap); a run with no time limit gets the cap."""
    if not cap_minutes or 0 < train_cfg.minutes <= cap_minutes:
        return train_cfg
    return replace(train_cfg, minutes=float(cap_minutes))


def stop_run(root: Path, name: str) -> Job:
    """SIGTERM the trainer of run ``name``: it finishes its step, saves a final checkpoint and says 'stopped'."""
    try:
        status = read_status(run_dir(root, name))
    except CheckpointError as e:
        raise JobError(str(e)) from None
    if status.get("state") != "running" or not trainer_alive(status.get("pid")):
        raise JobError(f"Run {name} is not training (its status is {status.get('state')}).")
    try:
        os.kill(status["pid"], signal.SIGTERM)
    except ProcessLookupError:
        raise JobError(f"Run {name} had already ended.") from None
    return Job(name, status["pid"])


# --- the supervisor -----------------------------------------------------------------
class Supervisor:
    """The one trainer process of ``root``: a lock so two starts cannot both spawn, and the child to reap.

    ``threads`` is the trainer's torch thread count (0 = torch's default).
    """

    def __init__(self, root: Path, threads: int = 0):
        self.root, self.threads = Path(root).resolve(), threads
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.run: str | None = None
        self.stopping: set[str] = set()
        self.spawned_ns = 0                             # when our child was started (its status is newer)
        self.exiting: list[subprocess.Popen] = []      # earlier children, done with their runs, not yet reaped

    def child_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def child_done(self) -> bool:
        """Our child wrote its final status (finished, stopped, failed, with its pid) and is only exiting."""
        status = read_status_file(self.root / self.run)
        return status["state"] in FINAL_STATES and status.get("pid") == self.proc.pid

    def active(self) -> Job | None:
        """The run in progress: our child (covering the second before it writes its status, not the second after
        its final one), or any live trainer."""
        if self.child_alive() and not self.child_done():
            return Job(self.run, self.proc.pid)
        return running_job(self.root)

    def refuse_if_busy(self) -> None:
        job = self.active()
        if job:
            raise JobError(f"A training run is in progress: {job.name}. One run at a time: wait for it to finish "
                           "or press Stop. Its progress is shown below.")

    def start(self, name: str, text: str, path: Path | None, data_name: str, preset: str,
              model_cfg: ModelConfig, train_cfg: TrainConfig,
              on_created: Callable[[Path], None] | None = None) -> Job:
        """Write the run directory and spawn its trainer on ``text`` (or file ``path``) with exactly these configs;
        ``on_created(directory)`` adds files of the caller's to the directory before the trainer starts."""
        args = ["--preset", preset, *config_argv(model_cfg), *config_argv(train_cfg, skip=("threads",)),
                "--name", name, "--data-name", data_name]
        with self.lock:
            self.refuse_if_busy()
            data = prepare_run_dir(self.root, name, text, path)
            if on_created is not None:
                on_created(run_dir(self.root, name))
            return self.spawn(name, ["--data", str(data), *args])

    def resume(self, name: str, more_iterations=0, more_minutes=0.0, cap_minutes: float = 0) -> tuple[Job, int]:
        """Continue a stopped run from its checkpoint, optionally with more steps or minutes, training at most
        ``cap_minutes`` (0: no cap); returns (job, step)."""
        runs = {r["name"]: r for r in resumable_runs(self.root)}
        if name not in runs:
            raise JobError(self.not_resumable(name))
        header = runs[name]["latest"]
        args = ["--resume", name, *budget_args(header, more_iterations, more_minutes, cap_minutes)]
        data = corpus_path(runs[name]["path"], header)
        if data is None:
            raise JobError(f"Run {name} does not record where its corpus is; it cannot be resumed here.")
        if not data.is_file():
            raise JobError(f"The corpus of {name} ({data}) is gone; it cannot be resumed here.")
        try:
            check_room(runs[name]["path"])
        except OSError as e:
            raise JobError(f"Run {name} cannot be resumed: {e}.") from None
        with self.lock:
            self.refuse_if_busy()
            return self.spawn(name, args), header["step"]

    def not_resumable(self, name) -> str:
        """Why run ``name`` is not offered for resume."""
        try:
            status = read_status_file(run_dir(self.root, name))
        except CheckpointError:
            status = {}
        if status.get("state") == "damaged":
            return (f"Run {name} cannot be resumed here: {status['reason']}. Its kept model still generates; "
                    f"`python -m charrnn train --resume {name}` on the server rewrites its status.")
        return (f"No resumable run named {name!r}; pick one from the list "
                "(a run needs its checkpoint and optimizer state, and must not be running).")

    def stop(self, check: Callable[[str], None] | None = None) -> tuple[Job, bool]:
        """Ask the running trainer to stop: (job, False) when it had ended meanwhile. JobError when nothing runs;
        ``check(run name)`` may refuse (raise) before the signal is sent."""
        with self.lock:
            job = self.active()
            if job is None:
                raise JobError("No training run is in progress.")
            if check is not None:
                check(job.name)
            try:
                os.kill(job.pid, signal.SIGTERM)
            except ProcessLookupError:
                return job, False
            self.stopping.add(job.name)
        return job, True

    def spawn(self, name: str, args: list[str]) -> Job:
        """``python -m charrnn train ARGS`` in its own session, logging to <run>/train.log (call with the lock)."""
        cmd = [sys.executable, "-m", "charrnn", "--checkpoints", str(self.root), "train", *args,
               "--threads", str(self.threads), "--quiet"]
        if self.child_alive():                 # done with its run (see active), still exiting: reap it later
            self.exiting.append(self.proc)
        self.exiting = [p for p in self.exiting if p.poll() is None]
        with open(run_dir(self.root, name) / "train.log", "ab") as log:
            self.spawned_ns = time.time_ns()
            self.proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.run = name
        self.stopping.discard(name)
        return Job(name, self.proc.pid)

    def exit_code(self, name: str) -> int | None:
        """Our child's exit status for run ``name`` once it has ended (None while running, or not ours)."""
        if self.proc is None or self.run != name:
            return None
        return self.proc.poll()

    def state(self, name: str) -> dict:
        """The run's status, with 'starting' / 'ended' / 'cancelled' for our child before it wrote a status of its
        own, 'stopping' once Stop was pressed, and how our child died when it was killed mid-run (written down, so
        the run says so after a restart too); ``metrics_damage`` when its metrics have damaged lines."""
        directory = self.root / name
        status = read_status(directory)
        if self.run == name and self.proc is not None and not self.wrote_status(directory):
            if self.child_alive():
                status = {"state": "starting"}                    # what is there is an earlier trainer's
            else:
                code = self.proc.returncode
                stopped = name in self.stopping and code in (0, -signal.SIGTERM)
                status = {"state": "cancelled"} if stopped else {"state": "ended", "code": code}
        elif status["state"] == "interrupted" and "code" not in status and status.get("pid") == self.exit_pid(name):
            status = self.record_death(directory, status, self.proc.returncode)
        if status["state"] == "running" and name in self.stopping:
            status = {**status, "state": "stopping"}
        return status

    def wrote_status(self, directory: Path) -> bool:
        """Our child has written the run's status.json: it names the child's pid, or is newer than the child."""
        if read_status_file(directory).get("pid") == self.proc.pid:
            return True
        try:
            return (directory / STATUS).stat().st_mtime_ns >= self.spawned_ns
        except OSError:
            return False

    def exit_pid(self, name: str) -> int | None:
        """The pid of our child for run ``name`` once it has ended (None while it runs, or when not ours)."""
        return self.proc.pid if self.exit_code(name) is not None else None

    def record_death(self, directory: Path, status: dict, code: int) -> dict:
        """The 'interrupted' status of a trainer of ours that died without a final status, saying how, written
        over its 'running' one (best effort: the reason is shown either way)."""
        status = {**interrupted(directory, status, death_reason(code)), "code": code}
        write_final_status(directory, "interrupted", **{k: v for k, v in status.items() if k != "state"})
        return status

    def last_run(self) -> str | None:
        """What to show while nothing trains: the run started here last, else the newest on disk."""
        if self.run and (self.root / self.run).is_dir():
            return self.run
        return recent_run(self.root)

    def files_signature(self, name: str | None) -> tuple:
        """What a view of run ``name`` depends on (its state and file stamps): unchanged means nothing new."""
        if name is None:
            return (None,)
        stamps = []
        for file in (METRICS, STATUS, "train.log"):
            try:
                st = (self.root / name / file).stat()
                stamps.append((st.st_size, st.st_mtime_ns))
            except OSError:
                stamps.append(None)
        return (name, tuple(sorted(self.state(name).items(), key=str)), *stamps)


def death_reason(code: int) -> str:
    """How a trainer that left no final status ended, from its exit status."""
    if code == -signal.SIGKILL:
        return "killed by the system (SIGKILL): most often for lack of memory; a smaller model or batch needs less"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"the trainer exited with status {code} without a final status; its log says why"
