"""Corpus loading, train/validation split and random batches of text portions.

The lecture trained on one random 200-character portion at a time; here a
batch is B random portions of T+1 characters, inputs and targets shifted by
one, drawn with a seeded generator so runs are repeatable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from charrnn.vocab import Vocab

MAX_CORPUS_BYTES = 200 * 1024 * 1024


class CorpusError(ValueError):
    """The text cannot be trained on; the message says why."""


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")       # a Windows "Unicode" text file starts with one of these


def decode_text(raw: bytes, source: str = "the text") -> str:
    """UTF-8 (or BOM-marked UTF-16) bytes -> str, refusing binary and undecodable data with a reason."""
    if not raw:
        raise CorpusError(f"{source} is empty")
    if raw.startswith(UTF16_BOMS):
        try:
            return check_text(raw.decode("utf-16"), source)
        except UnicodeDecodeError as e:
            raise CorpusError(f"{source} starts like UTF-16 text but is not (bad bytes at position {e.start}); "
                              "save it as UTF-8 text") from None
    if b"\x00" in raw:
        raise CorpusError(f"{source} looks binary (it contains NUL bytes, the first at byte {raw.index(0):,}); "
                          "give a plain UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{source} is not valid UTF-8 (bad byte at position {e.start}); save it as UTF-8 text"
        ) from None
    return text.removeprefix("\ufeff")


def check_text(text: str, source: str = "the text") -> str:
    """Refuse text with NUL characters (binary data, whatever its encoding) or nothing in it; return it."""
    text = text.removeprefix("\ufeff")
    if not text:
        raise CorpusError(f"{source} is empty")
    if "\x00" in text:
        raise CorpusError(f"{source} contains NUL characters (the first at character {text.index(chr(0)):,}); "
                          "give plain text")
    return text


def read_text(path: str | Path, max_bytes: int = MAX_CORPUS_BYTES) -> str:
    """Read a UTF-8 text file, with a clear error for missing, huge, binary or empty files."""
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path} is a folder; give a text file")
    if not path.is_file():
        raise CorpusError(f"no such file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise CorpusError(f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    return decode_text(path.read_bytes(), path.name)


@dataclass
class Corpus:
    """An encoded text split into train and validation ids (1-D compact tensors)."""

    vocab: Vocab
    train: torch.Tensor
    val: torch.Tensor

    @classmethod
    def from_text(cls, text: str, vocab: Vocab | None = None, val_fraction: float = 0.1,
                  min_chars: int = 0, unknown: str = "error") -> Corpus:
        if not text:
            raise CorpusError("the text is empty")
        vocab = vocab or Vocab.from_text(text)
        ids = vocab.encode(text, unknown=unknown)
        if len(ids) < min_chars:
            raise CorpusError(
                f"the text has {len(ids):,} characters; at least {min_chars:,} are needed "
                f"(one training portion plus validation)")
        n_val = int(len(ids) * val_fraction)
        return cls(vocab, ids[:len(ids) - n_val], ids[len(ids) - n_val:])

    def get_batch(self, batch: int, seq_len: int, generator: torch.Generator, split: str = "train"):
        """(x, y) of shape (B, T): B random portions, y is x shifted one character on."""
        data = self.train if split == "train" else self.val
        if len(data) < seq_len + 1:
            raise CorpusError(f"the {split} split has {len(data)} characters; seq_len+1 = {seq_len + 1} needed")
        # the last valid start is len - seq_len - 1, so that y's final index is len - 1
        starts = torch.randint(0, len(data) - seq_len, (batch,), generator=generator)
        offsets = torch.arange(seq_len + 1)
        chunk = data[starts[:, None] + offsets].long()   # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]

    def stream_batch(self, positions: torch.Tensor | None, batch: int, seq_len: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, y, next positions, restarted) for B streams read on through the training split.

        Stream b reads the T+1 characters from ``positions[b]`` and moves T on, so its next portion
        continues this one and the recurrent state can be carried across steps (truncated
        backpropagation through time). A stream that would run off the end, or every stream when
        ``positions`` is None, restarts at a random place and is marked in ``restarted`` (B bools).
        """
        data = self.train
        if len(data) < seq_len + 1:
            raise CorpusError(f"the train split has {len(data)} characters; seq_len+1 = {seq_len + 1} needed")
        last_start = len(data) - seq_len - 1
        if positions is None or len(positions) != batch:
            positions = torch.full((batch,), last_start + 1, dtype=torch.long)
        restarted = positions > last_start
        if restarted.any():
            fresh = torch.randint(0, last_start + 1, (int(restarted.sum()),), generator=generator)
            positions = positions.clone()
            positions[restarted] = fresh
        chunk = data[positions[:, None] + torch.arange(seq_len + 1)].long()   # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:], positions + seq_len, restarted


def min_corpus_chars(seq_len: int, val_fraction: float) -> int:
    """Smallest text that leaves one training portion and a validation split with one prediction."""
    need_train, need_val = seq_len + 1, 2          # a prediction reads two characters
    total = max(need_train + need_val, math.ceil(need_train / (1 - val_fraction)),
                math.ceil(need_val / val_fraction))
    while int(total * val_fraction) < need_val or total - int(total * val_fraction) < need_train:
        total += 1                                 # float rounding, as Corpus.from_text splits
    return total

