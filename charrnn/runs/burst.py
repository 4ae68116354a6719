"""Training in bursts: a run trained in this process a few seconds at a time, as a ZeroGPU Space trains.

There the GPU exists only inside a visitor's event, for the seconds it asked for, and no background process can hold
it. A burst is an ordinary stretch of ``Run.train``: it starts the run its run.json describes or resumes it exactly,
stops when its seconds (or steps) are spent, and the runner's end record saves a checkpoint and writes the final
status ('stopped', or 'finished' once the run's own budget is spent). So bursts add up to the run trained straight,
step for step, and "N seconds more" is one more burst. It trains on the run's device: ``auto`` takes the GPU there.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from charrnn.runs.runner import Run, as_run
from charrnn.runs.schema import status_alive
from charrnn.runs.store import RunDir


def train_burst(run: RunDir | Path, seconds: float, steps: int = 0, overrides: dict | None = None,
                clock: Callable[[], float] = time.monotonic) -> Iterator[dict]:
    """Train ``run`` here for at most ``seconds`` from the burst's start, its setup included (and at most ``steps``
    steps when > 0); yield the runner's records, the last one ending the burst. ``overrides``: train settings that
    change on resume (a bigger budget).

    Closed early (the visitor left), it finishes the step in progress and lets the runner save and write the final
    'stopped' status before the close returns: the run resumes with nothing lost, and is never left 'running'.
    """
    deadline = clock() + seconds
    training = Run.configured(as_run(run), overrides)
    training.in_burst = True                    # its status says so: the app's process, not a trainer, trains it
    first, closed = training.trainer.step, []

    def spent() -> bool:
        return bool(closed) or clock() >= deadline or 0 < steps <= training.trainer.step - first

    records = training.train(spent)
    try:
        # not ``yield from``: closing this would close ``records`` too, and GeneratorExit there is a failed run
        for rec in records:  # noqa: UP028
            yield rec
    finally:
        closed.append(True)
        for _ in records:           # the stop's end record: a checkpoint, then the final status
            pass


def training_now(run: RunDir) -> bool:
    """Whether a live process trains ``run`` now: a trainer process, or a burst in an app's process (its status
    says ``burst``), by the same test every reader of a status makes (``schema.status_alive``)."""
    status = run.status_as_written()
    return status["state"] == "running" and status_alive(status)
