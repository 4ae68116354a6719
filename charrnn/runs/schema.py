"""What a run's small files may hold: status.json, the checkpoint header (checkpoint.json and the one inside the
weights), corpus.json and metrics.jsonl lines, checked field by field before anything uses them.

Nothing read from a run directory is trusted: valid JSON of the wrong shape (a list, a string, a pid of 20
digits, a step that is text) raises ``Damaged`` naming the file and the field, so its caller can mark that run
damaged and carry on. ``MetricsReader`` follows a growing metrics.jsonl from where it last stopped, keeping a
bounded digest of it, so following a run costs the same at its millionth record as at its tenth.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

MAX_STEP = 2**53                  # steps, counts and sizes: whole numbers a float and pandas' int64 hold exactly
MAX_PID = 2**31 - 1               # pid_t; os.kill overflows past it
MAX_REASON = 1000                 # characters of a reason kept (the page shows it)
MAX_STATUS_BYTES = 64 << 10       # a status.json or corpus.json is a few hundred bytes
MAX_HEADER_BYTES = 8 << 20        # checkpoint.json: configs and a vocabulary
MAX_LINE_BYTES = 1 << 20          # one metrics record (a sample is a few hundred characters)
STATE = re.compile(r"^[a-z][a-z_-]{0,31}\Z")


class Damaged(ValueError):
    """A run file holds what its schema does not allow; the message names the file and what is wrong."""


Check = Callable[[str, object], object]      # (field, value) -> the value to keep; raises Damaged


def kind(value) -> str:
    """How a JSON value reads in a message: 'a list', 'text', 'null', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number"}.get(type(value),
                                                                                                    type(value).__name__)


# --- field checks -----------------------------------------------------------------------
def whole(low: int = 0, high: int = MAX_STEP, optional: bool = False) -> Check:
    def check(name, value):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise Damaged(f"{name} is {kind(value)}, not a whole number")
        if not low <= value <= high:
            raise Damaged(f"{name} is {value}, outside {low} to {high:,}")
        return value
    return check


def number(low: float = 0.0, optional: bool = False, non_finite_as_none: bool = False) -> Check:
    """A finite number >= ``low``; NaN/inf become None where ``non_finite_as_none`` (JSON writes a NaN loss)."""
    def check(name, value):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Damaged(f"{name} is {kind(value)}, not a number")
        if not math.isfinite(value):
            if non_finite_as_none:
                return None
            raise Damaged(f"{name} is {value}, not a finite number")
        if value < low:
            raise Damaged(f"{name} is {value}, below {low:g}")
        return value
    return check


def loss(optional: bool = True) -> Check:
    return number(low=-math.inf, optional=optional)


def text(most: int | None = None) -> Check:
    def check(name, value):
        if not isinstance(value, str):
            raise Damaged(f"{name} is {kind(value)}, not text")
        return value if most is None or len(value) <= most else value[:most] + "…"
    return check


def state(name, value):
    if not isinstance(value, str) or not STATE.match(value):
        shown = f"{value!r:.40}" if isinstance(value, str) else kind(value)
        raise Damaged(f"{name} is {shown}, not a state such as 'running' or 'finished'")
    return value


def mapping(fields: dict[str, Check] | None = None) -> Check:
    """An object whose listed fields are checked (the others pass as they are)."""
    def check(name, value):
        if not isinstance(value, dict):
            raise Damaged(f"{name} is {kind(value)}, not an object")
        for key, sub in (fields or {}).items():
            if key in value:
                sub(f"{name}.{key}", value[key])
        return value
    return check


def scalar(value) -> bool:
    return value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


def checked(obj, fields: dict[str, Check], required: tuple[str, ...], what: str, keep_unknown: bool = True) -> dict:
    """``obj`` as an object of ``fields``: each known field checked, unknown non-scalar fields dropped (a status) or
    kept as they are (``keep_unknown``: a header or a record, which nothing reads unchecked)."""
    if not isinstance(obj, dict):
        raise Damaged(f"{what} holds {kind(obj)}, not an object")
    missing = [key for key in required if key not in obj]
    if missing:
        raise Damaged(f"{what} has no {missing[0]}")
    if keep_unknown:                 # the object as it is, once its known fields pass (the fast path: records)
        for key, value in obj.items():
            if key in fields:
                fields[key](key, value)
        return obj
    out = {}
    for key, value in obj.items():
        if key in fields:
            out[key] = fields[key](key, value)
        elif scalar(value):
            out[key] = value
    return out


def parse_json(raw: bytes, what: str):
    """JSON from bytes; anything unreadable (bad UTF-8, bad JSON, absurd nesting or numbers) is ``Damaged``."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Damaged(f"{what} is not valid JSON ({str(e).splitlines()[0][:80]})") from None


def read_capped(path: Path, most: int, what: str) -> bytes:
    """A file's bytes, refusing one bigger than ``most`` (FileNotFoundError passes through)."""
    with open(path, "rb") as f:
        raw = f.read(most + 1)
    if len(raw) > most:
        raise Damaged(f"{what} is over {most:,} bytes, more than it ever holds")
    return raw


# --- the schemas -------------------------------------------------------------------------
STATUS_FIELDS: dict[str, Check] = {
    "state": state, "pid": whole(1, MAX_PID), "step": whole(), "iterations": whole(),
    "minutes": number(), "started": number(), "finished": number(), "added": number(),
    "reason": text(MAX_REASON), "file": text(200), "code": whole(-255, 255),
    "val_loss": number(-math.inf, optional=True, non_finite_as_none=True),
    "best_val_loss": number(-math.inf, optional=True, non_finite_as_none=True),
    "best_step": whole(optional=True), "checkpoint_step": whole(optional=True),
}

DATA_FIELDS: dict[str, Check] = {"name": text(), "chars": whole(), "bytes": whole()}
TRAIN_FIELDS: dict[str, Check] = {"iterations": whole(), "minutes": number(), "batch_size": whole(),
                                  "seq_len": whole()}
HEADER_FIELDS: dict[str, Check] = {
    "format": text(100), "model_config": mapping(), "vocab": text(), "step": whole(), "data": mapping(DATA_FIELDS),
    "train_config": mapping(TRAIN_FIELDS), "elapsed": number(), "chars_seen": whole(), "params": whole(),
    "best_step": whole(optional=True), "val_loss": number(-math.inf, optional=True, non_finite_as_none=True),
    "best_val_loss": number(-math.inf, optional=True, non_finite_as_none=True),
    "train_loss": number(-math.inf, optional=True, non_finite_as_none=True), "run": text(), "saved": number(),
}

RECORD_FIELDS: dict[str, Check] = {
    "step": whole(), "lr": number(), "chars_per_s": number(), "elapsed": number(), "progress": number(),
    "time": number(), "train_loss": loss(False), "val_loss": loss(False), "val_bpc": loss(False),
    "sample": text(), "end": state, "reason": text(), "precision": mapping(),
    "best_step": whole(optional=True), "best_val_loss": loss(), "chars_seen": whole(),
}


def status_of(obj, what: str = "status.json") -> dict:
    """A status: ``state`` and the known fields of the right types; unknown fields only when plain values."""
    return checked(obj, STATUS_FIELDS, ("state",), what, keep_unknown=False)


def header_of(obj, what: str) -> dict:
    """A checkpoint header (configs, vocabulary, step, losses); the same dict back when every known field fits
    (a header's non-finite loss is kept: the app's lines test for finite numbers)."""
    checked(obj, HEADER_FIELDS, (), what)
    return obj


def record_of(obj, what: str = "the record") -> dict:
    """One metrics record: a ``step``, and every known field of its type; the same dict back."""
    checked(obj, RECORD_FIELDS, ("step",), what)
    return obj


CONFIG_FIELDS: dict[str, Check] = {"preset": text(100), "data": mapping({"name": text(), "path": text()}),
                                   "model_config": mapping(), "train_config": mapping(), "init": text()}


def run_config_of(obj, what: str = "run.json") -> dict:
    """run.json: the preset, the corpus (name and path), both configs, and the model it starts from (optional)."""
    checked(obj, CONFIG_FIELDS, ("preset", "data", "model_config", "train_config"), what)
    if not all(key in obj["data"] for key in ("name", "path")):
        raise Damaged(f"{what}: data needs a name and a path")
    return obj


def corpus_record_of(obj, what: str = "corpus.json") -> dict:
    return checked(obj, {"path": text()}, ("path",), what)


def read_status_file(path: Path) -> dict:
    """status.json through its schema; FileNotFoundError when there is none, ``Damaged`` when it does not fit."""
    with named(path.name):
        return status_of(parse_json(read_capped(path, MAX_STATUS_BYTES, path.name), path.name), path.name)


def read_header_file(path: Path) -> dict:
    """checkpoint.json through the header schema (FileNotFoundError when absent, ``Damaged`` when it does not fit)."""
    with named(path.name):
        return header_of(parse_json(read_capped(path, MAX_HEADER_BYTES, path.name), path.name), path.name)


@contextmanager
def named(what: str):
    """Damage reported inside ``what`` says so: 'status.json: pid is ...'."""
    try:
        yield
    except Damaged as e:
        raise Damaged(str(e) if str(e).startswith(what) else f"{what}: {e}") from None


def header_file_damage(path: Path) -> str | None:
    """What is wrong with a run's checkpoint.json; None when it fits, or is absent (an older or uploaded run)."""
    try:
        read_header_file(path)
    except FileNotFoundError:
        return None
    except Damaged as e:
        return str(e)
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror or e})"
    return None


# --- whose pid a status may name -------------------------------------------------------------
def status_alive(status: dict) -> bool:
    """Whether the process a 'running' status names still trains: ``trainer_alive`` of its pid, its start time, and
    whether it trains in bursts inside another program (an app's process: ``burst``)."""
    return trainer_alive(status.get("pid"), status.get("started"), status.get("burst") is True)


def trainer_alive(pid, started=None, burst: bool = False) -> bool:
    """A live process that is a charrnn trainer (``python -m charrnn ... train``; any program when it trains in
    ``burst``s), started no later than ``started`` (the epoch time its status records, when it does): a dead
    trainer's pid reused by another program, or by a later process, does not count."""
    if not pid_alive(pid):
        return False
    if not burst:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # no /proc (macOS): trust the pid
            return True
        if not (b"charrnn" in argv and b"train" in argv[argv.index(b"charrnn"):]):
            return False
    born = process_start(pid)
    return born is None or not isinstance(started, (int, float)) or born <= started + 2.0


def process_start(pid: int) -> float | None:
    """When process ``pid`` started, as an epoch time (None where /proc does not say)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def pid_alive(pid) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= MAX_PID:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# --- metrics.jsonl ---------------------------------------------------------------------------
def parse_line(raw: bytes, number_: int) -> dict:
    """One complete line of metrics.jsonl as a record; ``Damaged`` says which line and why."""
    where = f"line {number_:,}"
    if len(raw) > MAX_LINE_BYTES:
        raise Damaged(f"{where} is over {MAX_LINE_BYTES:,} bytes")
    try:
        return record_of(parse_json(raw, where), where)
    except Damaged as e:
        raise Damaged(str(e) if str(e).startswith(where) else f"{where}: {e}") from None


def records_in(raw: bytes) -> tuple[list[dict], int, str | None]:
    """The records of a whole metrics.jsonl: (records, damaged lines, the first one's reason). A last line without
    its newline is one still being written: left out, not counted."""
    lines = raw.split(b"\n")[:-1]
    records, damaged, first = [], 0, None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(parse_line(line, i))
        except Damaged as e:
            damaged, first = damaged + 1, first or str(e)
    return records, damaged, first


