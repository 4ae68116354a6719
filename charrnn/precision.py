"""Training precision by measurement: time a few steps of the run's own model and batch in float32 and
in bf16 autocast, and keep the faster.

A CPU flag says an instruction exists, not that it is faster: bf16 was slower than float32 on one Xeon with
AVX512-BF16 and faster on another with AMX (bench/RESULTS.md, "Precision"). So
``autocast='auto'`` measures, on a copy of the model with its own optimizer and data stream, leaving the run's
exact-resume state untouched.

bf16 may not run at all: where oneDNN has no bf16 LSTM (as on an AVX2-only AMD EPYC) its first step raises
("could not create a primitive descriptor for the LSTM forward propagation primitive"). A precision whose first step
raises is unavailable: ``auto`` keeps float32 and says why; a set ``bf16`` is refused before the run starts.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from charrnn.data import Corpus
from charrnn.model import CharRNN

if TYPE_CHECKING:
    from charrnn.config import TrainConfig

PRECISIONS = ("float32", "bf16")


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs here at all (any CPU; a CUDA GPU that supports it). Not whether it is faster."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


class PrecisionUnavailable(ValueError):
    """A precision that was asked for does not run on this machine."""


CLOSE = 0.05          # rates within 5% of each other: the probe measures on, up to MAX_ROUNDS
MAX_ROUNDS = 6
WARMUP_STEPS = 3      # oneDNN builds its kernels (primitives) over the first steps of each precision


def probe_rates(model: CharRNN, corpus: Corpus, cfg: TrainConfig, rounds: int = 3,
                round_seconds: float = 0.15, unavailable: dict | None = None) -> dict[str, float]:
    """Training chars/s of a copy of ``model`` in each precision that runs here, on this config's batches.

    After WARMUP_STEPS of each, rounds alternate the precisions, swapping which goes first (A B, B A, ...), so a
    change in the machine's load or an order effect hits both; each precision's rate is its best round. When
    the two are within CLOSE after ``rounds`` rounds, more rounds follow, up to MAX_ROUNDS. The model, optimizer
    and data stream of the run are not touched: the copy has its own optimizer and its own generator, so an
    exact resume stays exact. A precision whose first step raises gets no rate; why goes into ``unavailable``
    (name -> reason).
    """
    device = model.head.weight.device
    names = [p for p in PRECISIONS if p == "float32" or bf16_supported(device)]
    with no_trace(device):
        return probe_all(model, corpus, cfg, names, rounds, round_seconds,
                         {} if unavailable is None else unavailable)


def probe_all(model: CharRNN, corpus: Corpus, cfg: TrainConfig, names: list[str], rounds: int,
              round_seconds: float, unavailable: dict) -> dict[str, float]:
    copy, opt, gen = probe_setup(model, cfg)
    for name in list(names):                              # warm-up: first calls pay for allocation and dispatch
        reason = first_step_error(copy, opt, corpus, cfg, gen, name == "bf16")
        if reason and name != "float32":                  # float32 failing is the run's own error: let it raise
            names.remove(name)
            unavailable[name] = reason
            continue
        for _ in range(WARMUP_STEPS - 1):
            probe_steps(copy, opt, corpus, cfg, gen, name == "bf16", 0.0)
    best = dict.fromkeys(names, 0.0)
    done = 0
    while done < rounds or (done < max(rounds, MAX_ROUNDS) and close(best)):
        for name in names if done % 2 == 0 else names[::-1]:
            steps, seconds = probe_steps(copy, opt, corpus, cfg, gen, name == "bf16", round_seconds)
            best[name] = max(best[name], steps * cfg.batch_size * cfg.seq_len / seconds)
        done += 1
    return best


def close(rates: dict[str, float]) -> bool:
    """Two rates within CLOSE of each other (one rate: nothing to decide)."""
    if len(rates) < 2:
        return False
    low, high = sorted(rates.values())[:2]
    return high > 0 and (high - low) / high < CLOSE


def probe_setup(model: CharRNN, cfg: TrainConfig):
    """A copy of ``model``, its own optimizer and its own batch generator: (copy, optimizer, generator)."""
    device = model.head.weight.device
    copy = copy_module(model).train()
    opt = (torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam)(
        copy.parameters(), lr=cfg.lr * 1e-3, fused=device.type in ("cpu", "cuda"))
    return copy, opt, torch.Generator().manual_seed(cfg.seed + 104729)


def first_step_error(model, opt, corpus: Corpus, cfg: TrainConfig, gen, bf16: bool) -> str | None:
    """One training step; None when it ran, else the error's first line (a kernel this machine lacks)."""
    try:
        probe_steps(model, opt, corpus, cfg, gen, bf16, 0.0)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        return first[0] if first else type(e).__name__
    return None


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


def no_trace(device: torch.device):
    """A context in which random draws (dropout) leave the run's random state as it was."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def copy_module(model: CharRNN) -> CharRNN:
    clone = type(model)(model.config).to(model.head.weight.device)
    clone.load_state_dict(model.state_dict())
    return clone


def choose_precision(cfg: TrainConfig, model: CharRNN, corpus: Corpus) -> dict:
    """{'choice': 'bf16' | 'float32', 'how': 'set' | 'measured', 'rates': chars/s per precision}, and
    'unavailable' (precision -> why) when one does not run here.

    ``autocast='auto'`` measures: a CPU flag says an instruction exists, not that it is faster
    (the module docstring).
    Under torchrun the ranks' rates are summed, so every rank makes the same choice; a precision
    that does not run on one rank is dropped on all. A set ``bf16`` that does not run raises
    PrecisionUnavailable, before any step of the run.
    """
    if cfg.autocast == "bf16":
        copy, opt, gen = probe_setup(model, cfg)
        with no_trace(copy.head.weight.device):
            reason = first_step_error(copy, opt, corpus, cfg, gen, True)
        if reason:
            raise PrecisionUnavailable(f"bf16 autocast does not run on this machine ({reason}); "
                                       "train with autocast 'auto' or 'none'.")
    if cfg.autocast != "auto":
        return {"choice": "bf16" if cfg.autocast == "bf16" else "float32", "how": "set", "rates": {}}
    unavailable: dict[str, str] = {}
    rates = probe_rates(model, corpus, cfg, unavailable=unavailable)
    if dist.is_available() and dist.is_initialized():
        device = model.head.weight.device
        mine = [rates.get(p, 0.0) for p in PRECISIONS]
        summed = torch.tensor(mine, dtype=torch.float64, device=device)
        runs = torch.tensor([float(r > 0) for r in mine], dtype=torch.float64, device=device)
        dist.all_reduce(summed)
        dist.all_reduce(runs, op=dist.ReduceOp.MIN)
        rates = {p: r for p, r, ok in zip(PRECISIONS, summed.tolist(), runs.tolist(), strict=True) if ok > 0}
    choice = max(rates, key=rates.get)
    got = {"choice": choice, "how": "measured", "rates": {p: round(r, 1) for p, r in rates.items()}}
    return {**got, "unavailable": unavailable} if unavailable else got
