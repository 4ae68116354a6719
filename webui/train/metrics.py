"""A run's metrics.jsonl followed as the training view draws it: a bounded digest, read incrementally."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from charrnn.runs.schema import MAX_LINE_BYTES, Damaged, parse_line


class Thinned:
    """Every ``stride``-th item of a growing series, the stride doubling whenever more than ``2 * keep`` are held:
    between ``keep`` and ``2 * keep`` evenly spaced items, the first included, whatever the series' length."""

    def __init__(self, keep: int):
        self.keep, self.stride, self.seen, self.items = keep, 1, 0, []

    def add(self, item) -> None:
        if self.seen % self.stride == 0:
            self.items.append(item)
            if len(self.items) > 2 * self.keep:
                self.items, self.stride = self.items[::2], self.stride * 2
        self.seen += 1


class MetricsReader:
    """A run's metrics.jsonl followed from the byte where the last read stopped.

    ``records()`` reads only what was appended since, and returns a bounded digest, in file order: evenly
    thinned train-loss, validation and sample records (``keep`` to ``2 * keep`` of each), plus the newest record of
    each kind and the newest one that is not a run's end, which is all the training view draws from. A file
    rewritten in place (a resume keeps the records up to its step) is read again from the start. A damaged line
    is skipped and counted: ``damaged`` and ``first_damage`` say so. Thread-safe: visitors share one reader.
    """

    CHUNK = 4 << 20

    def __init__(self, path: Path, keep: int = 512):
        self.path, self.keep, self.lock = Path(path), keep, threading.Lock()
        self.reset(None)

    def reset(self, identity) -> None:
        self.identity, self.offset, self.lines, self.count = identity, 0, 0, 0
        self.damaged, self.first_damage, self.skipping = 0, None, False
        self.series = {key: Thinned(self.keep) for key in ("train_loss", "val_loss", "sample")}
        self.newest: dict[str, tuple[int, dict]] = {}

    def records(self) -> list[dict]:
        with self.lock:
            self.follow()
            picked = dict(self.newest.values())
            for series in self.series.values():
                picked.update(series.items)
            return [picked[i] for i in sorted(picked)]

    def follow(self) -> None:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != self.identity or st.st_size < self.offset:
                    self.reset((st.st_dev, st.st_ino))
                while self.offset < st.st_size:
                    f.seek(self.offset)          # take() stops at the last whole line, not where the read ended
                    chunk = f.read(min(self.CHUNK, st.st_size - self.offset) + MAX_LINE_BYTES)
                    if not self.take(chunk):
                        break
        except FileNotFoundError:
            self.reset(None)

    def take(self, chunk: bytes) -> bool:
        """Consume the complete lines of ``chunk`` (read at ``offset``); False when none was complete."""
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) > MAX_LINE_BYTES:                 # a runaway line: skip it up to its newline
                if not self.skipping:
                    self.lines += 1
                    self.note_damage(f"line {self.lines:,} is over {MAX_LINE_BYTES:,} bytes")
                self.offset, self.skipping = self.offset + len(chunk), True
                return True
            return False                                     # a line still being written
        for line in chunk[:end].split(b"\n"):
            if self.skipping:
                self.skipping = False
                continue
            self.lines += 1
            if line.strip():
                self.add(line)
        self.offset += end + 1
        return True

    def add(self, line: bytes) -> None:
        try:
            rec = parse_line(line, self.lines)
        except Damaged as e:
            self.note_damage(str(e))
            return
        i, self.count = self.count, self.count + 1
        self.newest["last"] = (i, rec)
        if "end" not in rec and "chars_per_s" in rec:
            self.newest["rate"] = (i, rec)
        for key, series in self.series.items():
            if key in rec:
                series.add((i, rec))
                self.newest[key] = (i, rec)

    def note_damage(self, reason: str) -> None:
        self.damaged += 1
        self.first_damage = self.first_damage or reason

    def damage_note(self) -> str | None:
        """'metrics.jsonl: N damaged lines skipped (line L: why)', or None when every line was a record."""
        if not self.damaged:
            return None
        lines = "1 damaged line" if self.damaged == 1 else f"{self.damaged:,} damaged lines"
        return f"metrics.jsonl: {lines} skipped ({self.first_damage})"
