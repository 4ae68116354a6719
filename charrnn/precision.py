"""Training precision by measurement: time a few steps of the run's own model and batch in float32 and
in bf16 autocast, and keep the faster.

A CPU flag says an instruction exists, not that it is faster: bf16 trained at 0.57x of float32 on one
Xeon with AVX512-BF16 and at 1.2-2.2x on another with AMX. So ``autocast='auto'`` measures, on a copy
of the model with its own optimizer and data stream, leaving the run's exact-resume state untouched.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from .data import Corpus
from .model import CharRNN

if TYPE_CHECKING:
    from .train import TrainConfig

PRECISIONS = ("float32", "bf16")


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs here at all (any CPU; a CUDA GPU that supports it). Not whether it is faster."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def probe_rates(model: CharRNN, corpus: Corpus, cfg: TrainConfig, rounds: int = 3,
                round_seconds: float = 0.15) -> dict[str, float]:
    """Training chars/s of a copy of ``model`` in each precision available here, on this config's batches.

    Rounds alternate the precisions (A B A B ...) so a change in the machine's load hits both; each
    precision's rate is its best round. The model, optimizer and data stream of the run are not
    touched: the copy has its own optimizer and its own generator, so an exact resume stays exact.
    """
    device = model.head.weight.device
    names = [p for p in PRECISIONS if p == "float32" or bf16_supported(device)]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):   # dropout draws leave no trace
        return probe_all(model, corpus, cfg, names, rounds, round_seconds)


def probe_all(model: CharRNN, corpus: Corpus, cfg: TrainConfig, names: list[str], rounds: int,
              round_seconds: float) -> dict[str, float]:
    device = model.head.weight.device
    copy = copy_module(model).train()
    opt = (torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam)(
        copy.parameters(), lr=cfg.lr * 1e-3, fused=device.type in ("cpu", "cuda"))
    gen = torch.Generator().manual_seed(cfg.seed + 104729)
    best = dict.fromkeys(names, 0.0)
    for name in names:                                    # warm-up: first calls pay for allocation and dispatch
        probe_steps(copy, opt, corpus, cfg, gen, name == "bf16", 0.0)
    for _ in range(rounds):
        for name in names:
            steps, seconds = probe_steps(copy, opt, corpus, cfg, gen, name == "bf16", round_seconds)
            best[name] = max(best[name], steps * cfg.batch_size * cfg.seq_len / seconds)
    return best


def probe_steps(model, opt, corpus: Corpus, cfg: TrainConfig, gen, bf16: bool, seconds: float) -> tuple[int, float]:
    """Training steps for at least ``seconds`` (at least one step): (steps, elapsed seconds)."""
    device = model.head.weight.device
    steps, t0 = 0, time.perf_counter()
    while steps == 0 or time.perf_counter() - t0 < seconds:
        x, y = corpus.get_batch(cfg.batch_size, cfg.seq_len, gen)                  # (B, T)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            _, loss, _ = model(x.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        steps += 1
    return steps, time.perf_counter() - t0


def copy_module(model: CharRNN) -> CharRNN:
    clone = type(model)(model.config).to(model.head.weight.device)
    clone.load_state_dict(model.state_dict())
    return clone


def choose_precision(cfg: TrainConfig, model: CharRNN, corpus: Corpus) -> dict:
    """{'choice': 'bf16' | 'float32', 'how': 'set' | 'measured', 'rates': chars/s per precision}.

    ``autocast='auto'`` measures: a CPU flag says an instruction exists, not that it is faster
    (bf16 trained at 0.57x of float32 on one Xeon with AVX512-BF16 and 1.2-2.2x on another with AMX).
    Under torchrun the ranks' rates are summed, so every rank makes the same choice.
    """
    if cfg.autocast != "auto":
        return {"choice": "bf16" if cfg.autocast == "bf16" else "float32", "how": "set", "rates": {}}
    rates = probe_rates(model, corpus, cfg)
    if dist.is_available() and dist.is_initialized():
        device = model.head.weight.device
        summed = torch.tensor([rates.get(p, 0.0) for p in PRECISIONS], dtype=torch.float64, device=device)
        dist.all_reduce(summed)
        rates = {p: r for p, r in zip(PRECISIONS, summed.tolist(), strict=True) if r > 0}
    choice = max(rates, key=rates.get)
    return {"choice": choice, "how": "measured", "rates": {p: round(r, 1) for p, r in rates.items()}}
