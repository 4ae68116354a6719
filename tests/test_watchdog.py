"""charrnn.runs.watchdog: a trainer that stops making progress (no new files, no CPU time) is ended, and its run says
why, so a stopped (SIGSTOP) or stuck trainer cannot hold Start for everyone. Its clock is injected."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from app_fixtures import fake_trainer_running

from charrnn.runs.jobs import Job, Supervisor
from charrnn.runs.store import RunDir
from charrnn.runs.watchdog import Watchdog, cpu_ticks

PROC = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="CPU time is read from /proc (Linux)")


class Clock:
    def __init__(self, now: float = 500.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def root(tmp_path):
    return (tmp_path / "ckpts").resolve()


@PROC
def test_a_stopped_trainer_whose_files_stop_changing_is_ended_with_a_status_saying_why(root):
    jobs, clock = Supervisor(root), Clock()
    watchdog = Watchdog(jobs, stall_s=300, clock=clock)
    with fake_trainer_running(root, "stuck") as proc:
        proc.send_signal(signal.SIGSTOP)
        assert jobs.active() == Job("stuck", proc.pid)                  # a stopped trainer still holds Start
        assert watchdog.check() is None                                 # first look
        clock.now += 299
        assert watchdog.check() is None and proc.poll() is None         # not yet: 299 s without progress
        clock.now += 2
        assert watchdog.check() == Job("stuck", proc.pid)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        status = RunDir(root / "stuck").status()
        assert status["state"] == "interrupted" and status["code"] == -signal.SIGKILL
        assert status["reason"].startswith("the watchdog ended it: no progress for 5 minutes")
        assert jobs.active() is None                                    # Start is free again


def test_a_trainer_whose_files_change_is_left_alone(root):
    jobs, clock = Supervisor(root), Clock()
    watchdog = Watchdog(jobs, stall_s=300, clock=clock, cpu=lambda pid: 7)
    with fake_trainer_running(root, "slow") as proc:
        for step in range(5):
            RunDir(root / "slow").append_metrics({"step": step, "train_loss": 2.0})
            assert watchdog.check() is None
            clock.now += 200
        assert proc.poll() is None


def test_a_trainer_busy_on_a_long_step_is_left_alone(root):
    jobs, clock, ticks = Supervisor(root), Clock(), iter(range(0, 10_000, 100))
    watchdog = Watchdog(jobs, stall_s=300, clock=clock, cpu=lambda pid: next(ticks))
    with fake_trainer_running(root, "long-step") as proc:
        for _ in range(5):
            assert watchdog.check() is None
            clock.now += 200
        assert proc.poll() is None


def test_where_cpu_time_cannot_be_told_nothing_is_ended(root):
    jobs, clock = Supervisor(root), Clock()
    watchdog = Watchdog(jobs, stall_s=300, clock=clock, cpu=lambda pid: None)
    with fake_trainer_running(root, "unknown") as proc:
        for _ in range(3):
            assert watchdog.check() is None
            clock.now += 1000
        assert proc.poll() is None


@PROC
def test_cpu_ticks_of_a_live_process_and_of_none():
    assert isinstance(cpu_ticks(os.getpid()), int) and cpu_ticks(0) is None


def test_the_watch_goes_on_until_told_to_stop(root, monkeypatch):
    watchdog, looks, keeps = Watchdog(Supervisor(root), stall_s=300), [], iter([True, True, False])
    monkeypatch.setattr(watchdog, "check", lambda: looks.append(1))
    watchdog.keep_watch(0, lambda: next(keeps))
    assert looks == [1, 1]
