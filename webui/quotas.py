"""What one visitor may take of a public server: bytes moved (uploads, files fetched) per minute and kept, counted by
the front door (``ByteMeter``); runs and bytes owned, checked before a run is started or a model added
(``check_owned``). A visitor is an address as ``webui.fair`` finds it; a run records its visitor's digest in
owner.json (``webui.owners``). With a training password set, only its holder makes runs: nothing here applies to them.

No gradio: the meter returns numbers for the front door to word; refusals of runs are ``UserError``.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from charrnn.runs.store import run_dirs
from charrnn.runs.writes import human
from webui.errors import UserError
from webui.owners import recorded_visitor, visitor_digest
from webui.settings import Settings

MINUTE = 60.0


class ByteMeter:
    """Bytes each visitor moved, remembered for ``keep_s`` seconds of ``clock``."""

    def __init__(self, keep_s: float, clock: Callable[[], float] = time.monotonic):
        self.keep_s, self.clock = keep_s, clock
        self.moved: dict[str, deque[tuple[float, int]]] = {}
        self.pruned = clock()

    def add(self, visitor: str, size: int) -> None:
        self.moved.setdefault(visitor, deque()).append((self.clock(), size))
        self.prune()

    def since(self, visitor: str, seconds: float) -> int:
        """Bytes ``visitor`` moved in the last ``seconds``."""
        start = self.clock() - seconds
        return sum(size for at, size in self.moved.get(visitor, ()) if at > start)

    def wait_s(self, visitor: str, seconds: float, allowed: int, size: int = 0) -> float:
        """Seconds until ``size`` more bytes keep ``visitor`` within ``allowed`` per ``seconds`` (0: now; inf: never,
        ``size`` alone is more)."""
        if size > allowed:
            return float("inf")
        now = self.clock()
        counted = [(at, moved) for at, moved in self.moved.get(visitor, ()) if at > now - seconds]
        excess, wait = sum(moved for _, moved in counted) + size - allowed, 0.0
        for at, moved in counted:                   # oldest first: the first bytes to leave the window
            if excess <= 0:
                break
            excess, wait = excess - moved, at + seconds - now
        return wait

    def prune(self) -> None:
        """Forget what left the window (each visitor's oldest first; every visitor at most once a minute)."""
        now = self.clock()
        everyone = now - self.pruned > MINUTE
        for visitor in list(self.moved) if everyone else []:
            self.forget(visitor, now)
        self.pruned = now if everyone else self.pruned

    def forget(self, visitor: str, now: float) -> None:
        moved = self.moved[visitor]
        while moved and moved[0][0] <= now - self.keep_s:
            moved.popleft()
        if not moved:
            del self.moved[visitor]


# --- runs owned ---------------------------------------------------------------------------------------------------
def owned_runs(root: Path, visitor: str) -> list[Path]:
    """The run folders ``visitor`` made (their owner.json records the visitor's digest)."""
    recorded = [(run.path, recorded_visitor(run.path)) for run in run_dirs(root)]
    if not any(digest for _, digest in recorded):
        return []               # nobody's runs: no need for (or to make) the deployment's secret
    mine = visitor_digest(root, visitor)
    return [path for path, digest in recorded if digest == mine]


def folder_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (links are not followed)."""
    total = 0
    for path in root.rglob("*") if root.is_dir() else []:
        try:
            total += path.stat().st_size if path.is_file() and not path.is_symlink() else 0
        except OSError:
            continue
    return total


def check_owned(settings: Settings, visitor: str | None, adding: int = 0) -> None:
    """Refuse a new run (of ``adding`` bytes, when known) past what one visitor may own: ``visitor_runs`` runs,
    ``visitor_run_bytes`` bytes. Nothing to check when the visitor is unknown or a training password is set."""
    if not visitor or settings.password:
        return
    runs = owned_runs(settings.root, visitor)
    if len(runs) >= settings.visitor_runs:
        raise UserError(f"You already have {len(runs)} runs on this server, the most one visitor may keep. Delete "
                        "one you no longer need (Generate tab: Delete the chosen run), then try again.")
    used = sum(folder_bytes(path) for path in runs)
    if used + adding > settings.visitor_run_bytes:
        raise UserError(f"Your runs on this server take {human(used)}; with this one they would pass the "
                        f"{human(settings.visitor_run_bytes)} one visitor may keep. Delete a run you no longer need "
                        "(Generate tab: Delete the chosen run), then try again.")
