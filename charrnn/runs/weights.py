"""The charrnn weights file: safetensors with a JSON header."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from charrnn.model import CharRNN
from charrnn.runs.writes import atomic_write
from charrnn.vocab import Vocab

FORMAT = "charrnn/1"
class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or incompatible; the message names the file."""
def read_json(path: Path):
    """Any JSON file (its shape is the caller's to check, through ``charrnn.runfiles``)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (ValueError, RecursionError) as e:          # bad JSON or UTF-8, absurd nesting or numbers
        raise CheckpointError(f"{path}: not valid JSON ({str(e).splitlines()[0][:80]})") from None
def write_weights(path: Path, model: CharRNN, vocab: Vocab, meta: dict) -> dict:
    """One atomic safetensors file of the model's weights with the charrnn header in its metadata."""
    header = {"format": FORMAT, "model_config": model.config.to_dict(), "vocab": "".join(vocab.chars),
              **meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"charrnn": json.dumps(header)}))
    return header
