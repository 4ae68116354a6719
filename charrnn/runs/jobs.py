"""The one training job of a checkpoints folder: start a trainer process, follow it, stop it, resume it.

A trainer is ``python -m charrnn train --run NAME`` in its own session, logging to ``<run>/train.log``: it reads
what to train from the run's ``run.json``, written here; it writes the run directory, and everything here reads that
directory back (status.json, metrics.jsonl), so a job outlives the process that
started it: an app restarted mid-run finds its job again. One job at a time per
folder: ``Supervisor.start`` and ``resume`` refuse while another trainer runs. A trainer that has written
its final status is done with its run, even while its process is still exiting. Run files are read through
``charrnn.runs.schema``: a damaged one marks its run damaged, it never breaks a listing.
No UI here: errors are ``JobError`` (``Busy`` while another run trains), stating facts; the app words them.
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

from charrnn.config import MAX_ITERATIONS, ModelConfig, TrainConfig
from charrnn.runs.runner import config_of_header, run_config
from charrnn.runs.schema import status_alive
from charrnn.runs.store import FINAL_STATES, PROJECT_DIR, RunDir, list_runs, new_run_folder, run_dirs
from charrnn.runs.weights import CheckpointError
from charrnn.runs.writes import atomic_write

MAX_MORE_ITERATIONS = 10_000_000
MAX_MORE_MINUTES = 10_080          # a week, as TrainConfig allows


class JobError(ValueError):
    """A job cannot be started, stopped or resumed; the message says why."""


class Busy(JobError):
    """Another run is training: one at a time."""

    def __init__(self, run: str):
        super().__init__(f"A training run is in progress: {run}. One run trains at a time.")
        self.run = run


@dataclass(frozen=True)
class Job:
    name: str
    pid: int


# --- run directories --------------------------------------------------------------
def recent_run(root: Path) -> str | None:
    """The run with the newest metrics."""
    stamped = [(run.metrics.stat().st_mtime, run.name) for run in run_dirs(root) if run.metrics.is_file()]
    return max(stamped)[1] if stamped else None


def running_job(root: Path) -> Job | None:
    """A run whose status says running, with a live trainer behind it."""
    for run in run_dirs(root):
        status = run.status_as_written()
        if status["state"] == "running" and status_alive(status):
            return Job(run.name, status["pid"])
    return None


def resumable_runs(root: Path) -> list[dict]:
    """Runs that can continue exactly: latest weights plus the optimizer state of their step, neither running nor
    of a damaged status (it cannot say whether a trainer still writes there).

    Each run's ``latest`` header (where training is) says its step; ``header`` is the kept model's."""
    return [r for r in list_runs(root)
            if r["status"]["state"] not in ("running", "damaged") and r["latest"] is not None
            and r["latest"].get("step") in RunDir(r["path"]).train_state_steps()]


def create_run(root: Path, name: str, text: str, path: Path | None) -> tuple[RunDir, Path]:
    """Create the folder of run ``name``, refusing one that exists (a name is never reused: its owner and text
    stay its own), and write ``text`` there unless it is file ``path``; (the run, the file its trainer reads)."""
    try:
        run = new_run_folder(root, name)
    except CheckpointError as e:
        raise JobError(str(e)) from None
    except OSError as e:
        raise JobError(f"Cannot write to {root}: {e.strerror or e}") from None
    if run is None:
        raise JobError(f"A run named {name} already exists; resume it or pick another name.")
    if path is not None:
        return run, path
    try:
        atomic_write(run.corpus_copy, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except OSError as e:
        raise JobError(f"Cannot write to {root}: {e.strerror or e}") from None
    return run, run.corpus_copy


def budget(header: dict, more_iterations=0, more_minutes=0.0, cap_minutes: float = 0) -> dict:
    """The train settings that extend a run's budget: totals count from the start, so add to what it has done.

    ``header`` is the latest weights' header: its step and elapsed are what was done. ``cap_minutes`` > 0 bounds
    the time this resumed part may train (a visitor's cap), whatever the budget. A run whose budget is used up
    needs more iterations or minutes; one with more iterations than the trainer allows is refused here."""
    more_iterations, more_minutes = more_iterations or 0, more_minutes or 0
    for name, value, high in (("more iterations", more_iterations, MAX_MORE_ITERATIONS),
                              ("more minutes", more_minutes, MAX_MORE_MINUTES)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise JobError(f"{name} must be a number from 0 to {high:,}, got {value!r}.")
    done_minutes = header.get("elapsed", 0) / 60
    capped = min(done_minutes + cap_minutes, MAX_MORE_MINUTES) if cap_minutes else 0
    if more_iterations:
        total = header["step"] + int(more_iterations)
        if total > MAX_ITERATIONS:
            raise JobError(f"This run is at step {header['step']:,}; a run trains at most {MAX_ITERATIONS:,} steps, "
                           f"so at most {MAX_ITERATIONS - header['step']:,} more.")
        return {"iterations": total, "minutes": capped}
    if more_minutes:
        more = min(float(more_minutes), cap_minutes) if cap_minutes else float(more_minutes)
        return {"minutes": min(done_minutes + more, MAX_MORE_MINUTES), "iterations": 0}
    cfg = header.get("train_config", {})
    done = [header["step"] >= cfg["iterations"] if cfg.get("iterations") else False,
            header.get("elapsed", 0) >= 60 * cfg["minutes"] if cfg.get("minutes") else False]
    if any(done):
        raise JobError("This run has used its whole budget; give more iterations or more minutes to continue it.")
    if capped and not 0 < cfg.get("minutes", 0) <= capped:
        return {"minutes": capped}
    return {}


def capped_config(train_cfg: TrainConfig, cap_minutes: float) -> TrainConfig:
    """``train_cfg`` with at most ``cap_minutes`` of training (0: no cap); a run with no time limit gets the cap."""
    if not cap_minutes or 0 < train_cfg.minutes <= cap_minutes:
        return train_cfg
    return replace(train_cfg, minutes=float(cap_minutes))


def stop_run(root: Path, name: str) -> Job:
    """SIGTERM the trainer of run ``name``: it finishes its step, saves a final checkpoint and says 'stopped'."""
    try:
        status = RunDir.of(root, name).status()
    except CheckpointError as e:
        raise JobError(str(e)) from None
    if status.get("state") != "running" or not status_alive(status):
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
        status = RunDir(self.root / self.run).status_as_written()
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
            raise Busy(job.name)

    def start(self, name: str, text: str, path: Path | None, data_name: str, preset: str,
              model_cfg: ModelConfig, train_cfg: TrainConfig,
              on_created: Callable[[Path], None] | None = None, init: str | Path | None = None) -> Job:
        """Create the run folder, write ``text`` (unless it is file ``path``) and run.json with exactly these
        configs, and spawn its trainer; ``on_created(directory)`` adds files of the caller's before it starts.
        ``init``: where the run starts (a model's file, ``auto`` or ``none``; ``charrnn.runs.startpoint``)."""
        with self.lock:
            self.refuse_if_busy()
            run, data = create_run(self.root, name, text, path)
            train_cfg = replace(train_cfg, threads=self.threads)
            run.write_config(run_config(preset, data_name, data, model_cfg, train_cfg, init))
            if on_created is not None:
                on_created(run.path)
            return self.spawn(run)

    def resume(self, name: str, more_iterations=0, more_minutes=0.0, cap_minutes: float = 0) -> tuple[Job, int]:
        """Continue a stopped run from its checkpoint, optionally with more steps or minutes, training at most
        ``cap_minutes`` (0: no cap); returns (job, step)."""
        runs = {r["name"]: r for r in resumable_runs(self.root)}
        if name not in runs:
            raise JobError(self.not_resumable(name))
        run, header = RunDir(runs[name]["path"]), runs[name]["latest"]
        more = budget(header, more_iterations, more_minutes, cap_minutes)
        data = run.corpus_path(header)
        if data is None:
            raise JobError(f"Run {name} does not record where its corpus is; it cannot be resumed here.")
        if not data.is_file():
            raise JobError(f"The corpus of {name} ({data}) is gone; it cannot be resumed here.")
        try:
            run.check_room()
            config = run.read_config() or config_of_header(header, data)
        except (OSError, CheckpointError) as e:
            raise JobError(f"Run {name} cannot be resumed: {e}.") from None
        config["train_config"] = {**header["train_config"], **more, "threads": self.threads}
        with self.lock:
            self.refuse_if_busy()
            run.write_config(config)
            return self.spawn(run), header["step"]

    def not_resumable(self, name) -> str:
        """Why run ``name`` is not offered for resume."""
        try:
            status = RunDir.of(self.root, name).status_as_written()
        except CheckpointError:
            status = {}
        if status.get("state") == "damaged":
            return (f"Run {name} cannot be resumed here: {status['reason']}. Its kept model still generates; "
                    f"`python -m charrnn train --resume {name}` on the server rewrites its status.")
        return (f"No resumable run named {name!r} (a run needs its checkpoint and optimizer state, and must not be "
                "running).")

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

    def spawn(self, run: RunDir) -> Job:
        """``python -m charrnn train --run NAME`` in its own session, logging to its train.log (call with the lock):
        the trainer reads everything else from the run's run.json."""
        cmd = [sys.executable, "-m", "charrnn", "--checkpoints", str(self.root), "train", "--run", run.name, "--quiet"]
        if self.child_alive():                 # done with its run (see active), still exiting: reap it later
            self.exiting.append(self.proc)
        self.exiting = [p for p in self.exiting if p.poll() is None]
        with open(run.log, "ab") as log:
            self.spawned_ns = time.time_ns()
            self.proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.run = run.name
        self.stopping.discard(run.name)
        return Job(run.name, self.proc.pid)

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
        status = RunDir(directory).status()
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
        if RunDir(directory).status_as_written().get("pid") == self.proc.pid:
            return True
        try:
            return (directory / RunDir.STATUS).stat().st_mtime_ns >= self.spawned_ns
        except OSError:
            return False

    def exit_pid(self, name: str) -> int | None:
        """The pid of our child for run ``name`` once it has ended (None while it runs, or when not ours)."""
        return self.proc.pid if self.exit_code(name) is not None else None

    def record_death(self, directory: Path, status: dict, code: int) -> dict:
        """The 'interrupted' status of a trainer of ours that died without a final status, saying how, written
        over its 'running' one (best effort: the reason is shown either way)."""
        status = {**RunDir(directory).interrupted(status, death_reason(code)), "code": code}
        RunDir(directory).write_final_status("interrupted", **{k: v for k, v in status.items() if k != "state"})
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
        return (name, tuple(sorted(self.state(name).items(), key=str)), *RunDir(self.root / name).stamps())


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
