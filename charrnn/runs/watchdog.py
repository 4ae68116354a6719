"""The trainer's watchdog: a trainer that stops making progress is ended, so a stopped (SIGSTOP) or stuck process
cannot hold the one trainer of a checkpoints folder, and with it everyone's Start, forever.

Progress is anything changing: the run's files (metrics, status, log) or the process's CPU time. A slow step writes
nothing for minutes but keeps the CPU busy; a stopped or deadlocked trainer does neither. A trainer with no progress
for ``stall_s`` is killed (SIGKILL: a stopped process acts on nothing else) and its run says so: 'interrupted', at
its last checkpoint, with the reason. Where /proc cannot tell CPU time (not Linux), progress is unknowable and the
watchdog ends nothing. Time is the caller's ``clock`` (monotonic seconds).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from charrnn.runs.jobs import Job, Supervisor
from charrnn.runs.store import RunDir


def cpu_ticks(pid: int) -> int | None:
    """The user and system CPU time process ``pid`` has used, in clock ticks (None where /proc does not say)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


class Watchdog:
    """Looks at the active trainer of ``jobs`` at each ``check()``; ends it after ``stall_s`` without progress."""

    def __init__(self, jobs: Supervisor, stall_s: float, clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[int], int | None] = cpu_ticks):
        self.jobs, self.stall_s, self.clock, self.cpu = jobs, stall_s, clock, cpu
        self.seen: tuple | None = None          # (job, its files' stamps, its CPU ticks) when last changed
        self.since = 0.0                        # when that was

    def check(self) -> Job | None:
        """End the active trainer when it made no progress for ``stall_s``; the job ended, else None."""
        job = self.jobs.active()
        ticks = self.cpu(job.pid) if job else None
        if ticks is None:                       # nothing trains, or its progress cannot be told
            self.seen = None
            return None
        now, seen = self.clock(), (job, RunDir(self.jobs.root / job.name).stamps(), ticks)
        if seen != self.seen:
            self.seen, self.since = seen, now
            return None
        if now - self.since < self.stall_s:
            return None
        self.seen = None
        return end_stalled(self.jobs, job, now - self.since)

    def keep_watch(self, every_s: float, keep: Callable[[], bool]) -> None:
        """``check()`` every ``every_s`` while ``keep()`` (the app runs this in a thread of its own)."""
        while True:
            time.sleep(every_s)
            if not keep():
                return
            try:
                self.check()
            except OSError as e:                # a run folder gone or unreadable meanwhile: look again next time
                print(f"watchdog: {e}", file=sys.stderr)


def end_stalled(jobs: Supervisor, job: Job, idle_s: float) -> Job | None:
    """SIGKILL the trainer of ``job`` if it is still the active one, and write its run's final status saying why."""
    with jobs.lock:
        if jobs.active() != job:
            return None
        try:
            os.kill(job.pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        run = RunDir(jobs.root / job.name)
        reason = (f"the watchdog ended it: no progress for {idle_s / 60:.0f} minutes (no new metrics or log lines, "
                  "no CPU time: the trainer was stopped or stuck)")
        status = {**run.interrupted(run.status_as_written(), reason), "pid": job.pid, "code": -signal.SIGKILL}
        run.write_final_status("interrupted", **{k: v for k, v in status.items() if k != "state"})
    return job
