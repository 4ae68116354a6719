"""Whose turn the one trainer is, with no training password set. Each run trains at most ``visitor_minutes``; a visitor
whose run has just ended, while someone else asked for the trainer during it, waits ``train_cooldown_minutes`` before
starting or resuming again, so the one who asked goes first. A visitor nobody waits behind trains again at once.

Who asks is a set of names: their address (``webui.fair``) and their browser key's digest, either alone when the other
is unknown; two askers are the same when they share a name. Kept in memory: a restart forgets whose turn it was.
No gradio: a refusal is ``UserError``; every time is the caller's ``now`` (epoch seconds, as file times are).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from webui.errors import UserError
from webui.owners import digest, usable_key


def askers(key=None, visitor: str | None = None) -> frozenset[str]:
    """The names of whoever sends ``key`` from ``visitor`` (empty when neither is known)."""
    names = {f"key:{digest(key)}"} if usable_key(key) else set()
    return frozenset(names | ({f"visitor:{visitor}"} if visitor else set()))


@dataclass
class Turns:
    cooldown_s: float
    last: frozenset[str] = frozenset()          # who started the latest run
    run: str | None = None                      # its name
    began_at: float = 0.0                       # when it started
    waiting: dict[frozenset[str], float] = field(default_factory=dict)   # who found the trainer busy, when last
    lock: threading.Lock = field(default_factory=threading.Lock)

    def asked(self, who: frozenset[str], now: float) -> None:
        """``who`` found the trainer busy: they wait for it."""
        if who:
            with self.lock:
                self.waiting[who] = now

    def began(self, who: frozenset[str], run: str, now: float) -> None:
        """``who`` started (or resumed) ``run``: their wait is over, and waits from before this run no longer count."""
        with self.lock:
            self.last, self.run, self.began_at = who, run, now
            self.waiting = {w: at for w, at in self.waiting.items() if at >= now and not w & who}

    def others_waiting(self, who: frozenset[str]) -> bool:
        """Someone who is not ``who`` found the trainer busy during the latest run."""
        with self.lock:
            return any(at >= self.began_at and not w & who for w, at in self.waiting.items())

    def check(self, who: frozenset[str], now: float, ended_at: float | None) -> None:
        """Refuse ``who`` a new run while the latest one was theirs, it ended (at ``ended_at``) less than the cooldown
        ago, and someone else waited for the trainer during it."""
        if not (who & self.last) or ended_at is None or now >= ended_at + self.cooldown_s:
            return
        if self.others_waiting(who):
            minutes = max(1, math.ceil((ended_at + self.cooldown_s - now) / 60))
            raise UserError(f"Your run has just ended and someone else has been waiting for the trainer: it is "
                            f"theirs first. Try again in {minutes} minute{'s' if minutes != 1 else ''}, or train in "
                            "this browser meanwhile (\"Or train in this browser\", below the form). (Whoever runs "
                            "this app can set a training password, CHARRNN_TRAIN_PASSWORD, with which nobody waits.)")
