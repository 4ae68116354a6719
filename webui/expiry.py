"""Room for new runs on a shared disk: a visitor's run left untouched for ``Settings.visitor_run_hours`` expires, and
expired runs are removed, least recently touched first, when a new run or an added model needs room under
``Settings.max_checkpoints_bytes``. So runs that fill the folder cannot keep everyone else from training for more than
that long; a visitor's own quota (``webui.quotas``) keeps any one of them from filling it in the first place.

The operator's runs (no owner.json: from the CLI, the bundled one) never expire, and nothing expires while a training
password is set (only its holder makes runs then). No gradio.
"""
from __future__ import annotations

import secrets
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

from charrnn.runs.jobs import Supervisor
from charrnn.runs.store import run_dirs
from webui.context import AppContext
from webui.owners import is_visitors
from webui.quotas import folder_bytes
from webui.settings import Settings


def last_touched(directory: Path) -> float:
    """When anything in the run folder last changed (a trainer, a resume writing its run.json, an upload)."""
    times = [directory.stat().st_mtime]
    for path in directory.iterdir():
        try:
            times.append(path.lstat().st_mtime)
        except OSError:
            continue
    return max(times)


def expired_runs(settings: Settings, now: float) -> list[Path]:
    """Visitors' runs untouched for ``visitor_run_hours``, least recently touched first (none with a password)."""
    if settings.password:
        return []
    limit = now - 3600 * settings.visitor_run_hours
    touched = [(last_touched(run.path), run.path) for run in run_dirs(settings.root) if is_visitors(run.path)]
    return [path for when, path in sorted(touched) if when < limit]


def make_room(ctx: AppContext, need: int, now: float | None = None) -> list[str]:
    """Remove expired runs, least recently touched first, until the runs and ``need`` more bytes fit under
    ``max_checkpoints_bytes``; the names removed. What is left over the cap is the caller's to refuse."""
    settings, now = ctx.settings, time.time() if now is None else now
    removed = []
    with trainer_lock(ctx):                     # no Start or Resume of a run while it is removed
        for directory in expired_runs(settings, now):
            if folder_bytes(settings.root) + need <= settings.max_checkpoints_bytes:
                break
            if remove_run(settings.root, directory):
                removed.append(directory.name)
    return removed


def trainer_lock(ctx: AppContext):
    """The job supervisor's lock; a burst's run folder (``webui.train.burst``) starts no process and has none."""
    return ctx.jobs.lock if isinstance(ctx.jobs, Supervisor) else nullcontext()


def remove_run(root: Path, directory: Path) -> bool:
    """Move the run out of the listing at once (a hidden name), then delete its files; False when it cannot be
    moved (gone meanwhile, or not ours to move): the room is then still short, and the caller says so."""
    trash = root / f".expired-{directory.name}-{secrets.token_hex(4)}"
    try:
        directory.rename(trash)
    except OSError:
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True
