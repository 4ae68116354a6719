"""Who may stop, resume or delete a run when no training password is set: the browser that started or added it.

Each browser keeps a random key of its own (``gr.BrowserState``, in its localStorage); a run records only the key's
SHA-256, in ``owner.json`` beside its files. An API caller may pass a key of its own choosing (any secret string
it keeps) to the same effect. With a training password set, the password is what counts: its holder controls
every run. A run with no owner recorded (started from the CLI, by a caller without a key, or before keys existed)
may be controlled by anyone who may train here. owner.json also keeps a digest of the address the run came from
(``webui.fair``), when known: a visitor's runs count toward their quota (``webui.quotas``) and expire
(``webui.expiry``); a run with no owner.json is the operator's. That digest is an HMAC keyed by this deployment's
secret (``SECRET`` in the checkpoints folder): a plain hash of an address is undone by hashing every IPv4 address.

No gradio: refusals are ``UserError``.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from charrnn.runs.store import RunDir
from charrnn.runs.weights import CheckpointError, read_json
from charrnn.runs.writes import write_json
from webui.errors import UserError, esc
from webui.settings import Settings

OWNER = "owner.json"
# Gradio encrypts a BrowserState with a secret, by default a new one per start, which would lose every browser's
# key at a restart. A fixed one keeps it: the key's secrecy is that only its browser holds it, and whoever can read
# that browser's localStorage is that browser anyway.
STORAGE_KEY, STORAGE_SECRET = "charrnn-key", "charrnn-browser-key"
MAX_KEY = 200
SECRET = ".visitor-secret"      # in the checkpoints folder: hidden, so never a run
VISITOR = "visitor_hmac"        # owner.json's field for the visitor's digest (an unsalted "visitor_sha256" before it)


def new_key() -> str:
    return secrets.token_urlsafe(24)


def usable_key(key) -> str | None:
    """``key`` when it can name an owner (a non-empty string of at most MAX_KEY characters), else None."""
    return key if isinstance(key, str) and 0 < len(key) <= MAX_KEY else None


def browser_key(key) -> str:
    """The key a browser keeps: the one it has, or a new one (first visit, or a value that is not a key)."""
    return usable_key(key) or new_key()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def record_owner(directory: Path, key, visitor: str | None = None) -> None:
    """Write down who owns the new run in ``directory``: the key's digest (who may control it) and the visitor's
    (whose quota it counts toward, ``webui.quotas``); nothing when neither is known."""
    owner = {"key_sha256": digest(key)} if usable_key(key) else {}
    if visitor:
        owner[VISITOR] = visitor_digest(Path(directory).parent, visitor)
    if owner:
        write_json(Path(directory) / OWNER, owner)


def visitor_digest(root: Path, visitor: str) -> str:
    """What owner.json keeps of a visitor's address: enough to count their runs, not the address itself, nor
    anything from which a guess at it can be checked without this deployment's secret."""
    return hmac.new(deployment_secret(root), visitor.encode("utf-8"), hashlib.sha256).hexdigest()


def deployment_secret(root: Path) -> bytes:
    """The secret of the deployment whose runs are in ``root``: 32 random bytes, made once (exclusively: whoever
    creates the file first wins), readable by this server's user only, kept as long as the runs are."""
    path = Path(root) / SECRET
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret(path)
    except OSError as err:
        raise UserError(f"This server cannot write its secret for visitors ({SECRET}) in its checkpoints folder: "
                        f"{err.strerror or err}. Whoever runs it can make that folder writable.") from None
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32))
    return read_secret(path)


def read_secret(path: Path, tries: int = 20) -> bytes:
    """The secret in ``path``; a moment's wait when another thread or process has created it and not yet written it."""
    for _ in range(tries):
        try:
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            text = ""
        if text:
            break
        time.sleep(0.05)
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise UserError(f"This server's secret for visitors ({SECRET} in its checkpoints folder) is damaged; whoever "
                        "runs it can remove that file (a new one is made, and visitors' runs count as nobody's).")
    return secret


def recorded_visitor(directory: Path) -> str | None:
    """The digest of the visitor who made the run in ``directory`` (None when none is recorded). An owner.json from
    before the secret (an unsalted "visitor_sha256") records none: its run counts toward nobody's quota, and still
    expires and keeps its key's owner."""
    try:
        value = read_json(Path(directory) / OWNER).get(VISITOR)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def is_visitors(directory: Path) -> bool:
    """A run started or added from the page or the API (it has an owner.json); the operator's runs (from the CLI,
    or the bundled one) have none."""
    return (Path(directory) / OWNER).exists()


def owner_digest(directory: Path) -> str | None:
    """The recorded owner's key digest; None when none is recorded; "" when the file cannot be read (owned,
    by nobody who can prove it)."""
    path = Path(directory) / OWNER
    if not path.exists():
        return None
    try:
        recorded = read_json(path)
        value = recorded.get("key_sha256")
    except (OSError, ValueError, AttributeError):
        return ""
    if value is None and any(isinstance(recorded.get(field), str) for field in (VISITOR, "visitor_sha256")):
        return None             # made by a caller with no key: anyone's to control, as before visitors were recorded
    return value if isinstance(value, str) else ""


def owned_by(directory: Path, key) -> bool:
    """Whether the run in ``directory`` records the holder of ``key`` as its owner."""
    key, owner = usable_key(key), owner_digest(directory)
    return bool(key and owner and hmac.compare_digest(owner, digest(key)))


def may_control(settings: Settings, directory: Path, key) -> bool:
    """Whether the holder of ``key`` may stop, resume or delete the run in ``directory`` (the password, when one is
    set, is checked before this and controls every run)."""
    if settings.password:
        return True
    owner = owner_digest(directory)
    if owner is None:
        return True
    key = usable_key(key)
    return bool(owner and key) and hmac.compare_digest(owner, digest(key))


class WrongKeys:
    """Failed ownership checks per visitor: after ``most`` in ``window_s`` seconds of ``clock``, any check of theirs
    against an owned run is refused, right key or wrong, until the oldest leaves the window, so a key cannot be
    guessed at speed; a mistyping owner waits a minute. Kept in memory: a restart forgets them."""

    def __init__(self, most: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.most, self.window_s, self.clock = most, window_s, clock
        self.failures: dict[str, deque[float]] = {}
        self.lock, self.pruned = threading.Lock(), clock()

    def check(self, visitor: str) -> None:
        """Refuse ``visitor`` while they have had ``most`` wrong keys within the window, saying how long to wait."""
        with self.lock:
            recent = self.recent(visitor, self.clock())
            if len(recent) >= self.most:
                wait = max(1, math.ceil(recent[0] + self.window_s - self.clock()))
                raise UserError(f"Too many wrong keys from your address: {len(recent)} in the last "
                                f"{self.window_s:g} s. Wait {wait} s, then try again with the right key.")

    def failed(self, visitor: str) -> None:
        with self.lock:
            now = self.clock()
            self.failures.setdefault(visitor, deque()).append(now)
            if now - self.pruned > self.window_s:       # forget everyone's old failures, at most once a window
                for who in list(self.failures):
                    self.recent(who, now)
                self.pruned = now

    def recent(self, visitor: str, now: float) -> deque[float]:
        """``visitor``'s failures within the window (call with the lock); a visitor with none is forgotten."""
        times = self.failures.get(visitor, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            self.failures.pop(visitor, None)
        return times


def check_owner(settings: Settings, directory: Path, key, doing: str, wrong_keys: WrongKeys | None = None,
                visitor: str | None = None) -> None:
    """Refuse ``doing`` (stop, resume, delete) to anyone but the run's owner, when no password is set; with
    ``wrong_keys``, a ``visitor`` who sent too many wrong keys of late is refused before their key is looked at."""
    counted = bool(wrong_keys and visitor) and not settings.password and owner_digest(directory) is not None
    if counted:
        wrong_keys.check(visitor)
    if not may_control(settings, directory, key):
        if counted:
            wrong_keys.failed(visitor)
        raise UserError(f"Only the browser that started or added {esc(Path(directory).name)} can {doing} it. "
                        "(Whoever runs this app can set a training password, CHARRNN_TRAIN_PASSWORD, that "
                        "controls every run.)")


def check_run_owner(settings: Settings, name, key, doing: str, wrong_keys: WrongKeys | None = None,
                    visitor: str | None = None) -> None:
    """``check_owner`` for run ``name`` under the checkpoints folder (a name that is no run's passes: what
    follows refuses it with its own message)."""
    try:
        directory = RunDir.of(settings.root, name).path
    except CheckpointError:
        return
    check_owner(settings, directory, key, doing, wrong_keys, visitor)


def check_password(settings: Settings, password: str | None) -> None:
    if settings.password and not hmac.compare_digest((password or "").encode(), settings.password.encode()):
        raise UserError("Training controls need the password (set by CHARRNN_TRAIN_PASSWORD on this server).")
