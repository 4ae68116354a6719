"""Browser copies of checkpoints: the weights as raw float32 plus a small JSON, for a page to generate from.

A copy is named by the SHA-256 of its format and checkpoint file, so a retrained or resumed run's copy (or a
copy of a new format) gets a new name and URL: a browser never reads a stale one from its cache.
``<digest>.bin`` is written first and ``<digest>.json`` last, each atomically, so a copy whose JSON exists is
complete. The folder holds only copies and ``index.json`` (which model key has which copy); the app serves
those files of it by name (``is_served``), and nothing else. The JSON carries the vocabulary's fold table: the page
folds a prime as the server does.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from charrnn.runs.store import checkpoint_file, load_checkpoint
from charrnn.runs.weights import CheckpointError
from charrnn.runs.writes import atomic_write

FORMAT = "charrnn-web/2"                # 2: the fold table, and the format in the copy's name
INDEX = "index.json"
DIGEST_CHARS = 16                       # hex digits of the SHA-256 in a copy's name
SERVED = re.compile(rf"{re.escape(INDEX)}|[0-9a-f]{{{DIGEST_CHARS}}}\.(?:json|bin)")   # the folder's files a page reads
# the blocks a visitor is likely to type from: ASCII to Cyrillic (Latin-1, Latin Extended, IPA, combining marks,
# Greek), Latin and Greek extended, punctuation to arrows (quotes, dashes, currency, ™, ½), ligatures, full width
FOLD_BLOCKS = ((0x0000, 0x052F), (0x1E00, 0x1FFF), (0x2000, 0x21FF), (0xFB00, 0xFB4F), (0xFF00, 0xFFEF))


def file_digest(path: Path) -> str:
    """The first DIGEST_CHARS hex digits of the SHA-256 of FORMAT and the file: the copy's name."""
    h = hashlib.sha256(FORMAT.encode() + b"\n")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:DIGEST_CHARS]


def fold_table(vocab) -> dict[str, str]:
    """What the prime gets for each character of FOLD_BLOCKS the vocabulary lacks (Vocab.folded: '' = left out)."""
    return {ch: vocab.folded(ch) for lo, hi in FOLD_BLOCKS for ch in map(chr, range(lo, hi + 1))
            if ch not in vocab.stoi}


def copy_header(model, vocab, header: dict) -> tuple[dict, list[np.ndarray]]:
    """The JSON of a copy and its tensors in file order (each float32, C order, little-endian)."""
    cfg = model.config
    tensors, arrays, offset = {}, [], 0
    for name, t in model.state_dict().items():
        a = np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype="<f4")
        tensors[name] = {"offset": offset, "shape": list(a.shape)}
        arrays.append(a)
        offset += a.size
    info = {"format": FORMAT, "cell": cfg.cell, "layers": cfg.layers, "embed": cfg.embed, "hidden": cfg.hidden,
            "vocab_size": cfg.vocab_size, "vocab": list(vocab.chars), "fold": fold_table(vocab),
            "dtype": "float32", "floats": offset, "tensors": tensors,
            "run": header.get("run"), "step": header.get("best_step", header.get("step"))}
    return info, arrays


def write_copy(checkpoint: Path, folder: Path, digest: str | None = None) -> str:
    """Write the browser copy of ``checkpoint`` (a run directory or weights file) into ``folder``; its name."""
    path = checkpoint_file(checkpoint)
    digest = digest or file_digest(path)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / f"{digest}.json").is_file():
        return digest
    model, vocab, header = load_checkpoint(path)
    info, arrays = copy_header(model, vocab, header)

    def write_bin(tmp):
        with open(tmp, "wb") as f:
            for a in arrays:
                f.write(a.tobytes())

    atomic_write(folder / f"{digest}.bin", write_bin)
    atomic_write(folder / f"{digest}.json", lambda tmp: Path(tmp).write_text(json.dumps(info)))
    return digest


def write_index(folder: Path, copies: dict) -> None:
    """``index.json``: {model key: {"copy": digest, ...}} for the copies in use (rewritten only when it changes);
    other copies are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(copies, sort_keys=True)
    try:
        unchanged = (folder / INDEX).read_text() == text
    except OSError:
        unchanged = False
    if unchanged:                   # every visitor's first poll syncs: most find nothing new to write
        return
    atomic_write(folder / INDEX, lambda tmp: Path(tmp).write_text(text))
    used = {c["copy"] for c in copies.values() if c.get("copy")}
    for f in folder.iterdir():
        if f.suffix in (".bin", ".json") and f.name != INDEX and f.stem not in used and not f.name.startswith("."):
            f.unlink(missing_ok=True)


def is_served(name: str) -> bool:
    """Whether a page may read the file ``name`` of the copies' folder: the index, or a copy's JSON or floats."""
    return SERVED.fullmatch(name) is not None


def read_copy(folder: Path, digest: str) -> tuple[dict, np.ndarray]:
    """A copy's JSON and its floats (for tests and tools: the page reads the same two files)."""
    info = json.loads((folder / f"{digest}.json").read_text())
    floats = np.fromfile(folder / f"{digest}.bin", dtype="<f4")
    if info.get("format") != FORMAT or floats.size != info["floats"]:
        raise CheckpointError(f"{folder / digest}: not a complete browser copy")
    return info, floats
