"""How much memory a training run will need, and how much this machine lets it have.

The estimate is an upper bound fitted to peaks measured with ``python -m bench.memory`` (resident
set high-water mark of a trainer process after a few float32 steps; bf16 autocast peaks lower; figures in
bench/RESULTS.md, "Memory"). Per character of a batch, ``nn.LSTM``'s forward keeps
about 18 floats per hidden unit of the first layer and 8 per unit of each further one (gates,
cell and hidden state for the backward pass, and their gradients), plus a few per vocabulary
entry for the logits; the weights take 16 bytes per parameter with AdamW (weights, gradients, two
moments), and a trainer process holds PROCESS_BYTES before its first step (Python, torch, data), set above what
was measured so that a fresh virtual environment fits too.
"""
from __future__ import annotations

import os
from pathlib import Path

from charrnn.config import ModelConfig, TrainConfig
from charrnn.model import count_params

PROCESS_BYTES = 360 * 2**20     # a trainer process before its first step, with room for a fresh venv (bench.memory)
WORKSPACE_BYTES = 64 * 2**20    # allocator and kernel workspace of the first step
FIRST_LAYER_FLOATS = 18         # per hidden unit, per character of a batch
MORE_LAYER_FLOATS = 8
VOCAB_FLOATS = 3                # logits, their softmax and its gradient
EMBED_FLOATS = 2


def estimate_peak_bytes(model_cfg: ModelConfig, train_cfg: TrainConfig, corpus_chars: int = 0) -> int:
    """An upper bound of a trainer process's peak memory for these configs (float32)."""
    chars = train_cfg.batch_size * train_cfg.seq_len
    floats = (FIRST_LAYER_FLOATS + MORE_LAYER_FLOATS * (model_cfg.layers - 1)) * model_cfg.hidden \
        + VOCAB_FLOATS * model_cfg.vocab_size + EMBED_FLOATS * model_cfg.embed
    weights = 16 * count_params(model_cfg)
    corpus = 6 * corpus_chars          # the text as str (1-4 bytes/char) while encoding, and its ids
    return PROCESS_BYTES + WORKSPACE_BYTES + weights + corpus + 4 * floats * chars


def memory_limit() -> int:
    """The memory this process may use: its cgroup's limit (a container's, a Space's) or the machine's RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 2**60:       # 'max' or a huge number: no limit set
            return min(int(value), machine_memory())
    return machine_memory()


def machine_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


