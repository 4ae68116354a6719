"""The charrnn weights file: one safetensors file whose metadata holds a JSON header (format, model config,
vocabulary, and what the run records: step, losses, data, train config).

Reading never unpickles and never allocates from a header before checking it: the header goes through its
schema, the model is built on the meta device to learn the shapes it implies, and those must be the file's own
tensors (whose sizes safetensors has checked against the file) before a byte of weights is allocated. A file
that claims a model of 38 GiB in 256 bytes is refused, not built.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.schema import Damaged, header_of
from charrnn.runs.writes import atomic_write
from charrnn.vocab import Vocab

FORMAT = "charrnn/1"
HEADER_ROOM = 1 << 20          # a weights file's JSON header, beyond its float32 weights
MAX_SAFETENSORS_HEADER = 8 << 20   # a safetensors JSON header longer than this is not read (no file of ours has one)


def max_file_bytes(max_params: int) -> int:
    """The largest weights file a model of at most ``max_params`` parameters makes (float32, and its header)."""
    return 4 * max_params + HEADER_ROOM


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or incompatible; the message names the file."""


def read_json(path: Path):
    """Any JSON file (its shape is the caller's to check, through ``charrnn.runs.schema``)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (ValueError, RecursionError) as e:          # bad JSON or UTF-8, absurd nesting or numbers
        raise CheckpointError(f"{path}: not valid JSON ({str(e).splitlines()[0][:80]})") from None


def write_weights(path: Path, model: CharRNN, vocab: Vocab, meta: dict) -> dict:
    """One atomic safetensors file of the model's weights with the charrnn header in its metadata."""
    header = {"format": FORMAT, "model_config": model.config.to_dict(), "vocab": "".join(vocab.chars), **meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"charrnn": json.dumps(header)}))
    return header


def layout_problem(path: Path, shown: str) -> str | None:
    """What is wrong with the file at ``path`` as a charrnn weights file, read from its first bytes only (the
    safetensors layout: an 8-byte header length, a JSON header with a charrnn entry, the data it describes), as a
    sentence naming it ``shown``; None when the layout holds (``load_weights`` checks the rest)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        raw = f.read(n) if 2 <= n <= MAX_SAFETENSORS_HEADER else b""
    if not raw.startswith(b"{"):
        return (f"{shown} is not a safetensors file: it does not begin with a safetensors header (a pickle or "
                "another format renamed .safetensors?).")
    if len(raw) < n:
        return f"{shown} is cut short: its header alone needs {n + 8:,} bytes and the file has {size:,}."
    try:
        index = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        index = None
    if not isinstance(index, dict):
        return f"{shown} is not a safetensors file: its header is not JSON."
    meta = index.get("__metadata__")
    if not isinstance(meta, dict) or "charrnn" not in meta:
        return (f"{shown} is a safetensors file, but not a charrnn model (it has no charrnn header: made by another "
                "program?).")
    ends = [t["data_offsets"][1] for k, t in index.items() if k != "__metadata__" and isinstance(t, dict)
            and isinstance(t.get("data_offsets"), list) and len(t["data_offsets"]) == 2
            and isinstance(t["data_offsets"][1], int)]
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        return f"{shown} is cut short: {size:,} of the {expected:,} bytes its header describes."
    return None


def read_weights_header(path: Path) -> dict:
    """The JSON header of a weights file, through its schema, without loading its weights."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("charrnn")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if raw is None:
        raise CheckpointError(f"{path}: not a charrnn checkpoint (no charrnn header)")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):               # bad JSON, or nested past the parser's depth
        raise CheckpointError(f"{path}: corrupt charrnn header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise CheckpointError(f"{path}: unsupported format {found!r:.60}, expected {FORMAT}")
    try:
        return header_of(header, "header")
    except Damaged as e:
        raise CheckpointError(f"{path}: malformed charrnn header ({e})") from None


def model_config_of(path: Path, header: dict) -> ModelConfig:
    try:
        config = ModelConfig(**header["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    if config.vocab_size != len(header.get("vocab", "")):
        raise CheckpointError(f"{path}: vocabulary has {len(header.get('vocab', ''))} characters, "
                              f"model expects {config.vocab_size}")
    return config


def check_shapes(path: Path, config: ModelConfig, max_params: int | None) -> None:
    """Refuse a file whose tensors are not the ones ``config`` implies, or a model over ``max_params``, before
    anything is allocated (the model is built on the meta device: shapes only)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in CharRNN(config).state_dict().items()}
    params = sum(torch.Size(s).numel() for s in expected.values())
    if max_params is not None and params > max_params:
        raise CheckpointError(f"{path}: a model of {params:,} parameters; at most {max_params:,} are loaded here")
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if found != expected:
        odd = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
        raise CheckpointError(f"{path}: incompatible checkpoint (its tensors do not match its model config: "
                              f"{', '.join(odd[:3])})")


def load_weights(path: Path, device: str | torch.device = "cpu", max_params: int | None = None):
    """(model, vocab, header) of a weights file, in eval mode on ``device``; everything checked before it is
    allocated (see the module's docstring)."""
    header = read_weights_header(path)
    config = model_config_of(path, header)
    vocab = Vocab(header["vocab"])
    check_shapes(path, config, max_params)
    try:
        model = CharRNN(config)
        model.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    except (RuntimeError, SafetensorError, ValueError) as e:
        raise CheckpointError(f"{path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), vocab, header
