"""The training loop: batches in, progress records out.

``Trainer.fit`` yields small dicts (step, losses, chars/s, lr, sample, ...);
it never prints or writes files. The caller (``charrnn.runner``) decides
what to save and show. Everything needed to continue a run exactly is in
``Trainer.state_dict``.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist

from charrnn.config import TrainConfig
from charrnn.data import Corpus
from charrnn.model import CharRNN
from charrnn.precision import choose_precision
from charrnn.sample import generate


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' picks cuda (this rank's GPU under torchrun), then mps, then cpu."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this torch build sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps': not available here; use --device cpu or auto")
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def lr_factor(progress: float, step: int, cfg: TrainConfig) -> float:
    """Multiplier of cfg.lr: linear warm-up over cfg.warmup steps, then decay by progress in [0, 1]."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(max(progress, 0.0), 1.0)
    if cfg.decay == "none":
        return 1.0
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.decay == "cosine" else 1 - progress
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape


@torch.no_grad()
def evaluate(model: CharRNN, val: torch.Tensor, seq_len: int, batch: int, max_chars: int = 0) -> float:
    """Mean next-character loss (nats) over the validation ids, read as B streams carrying state.

    Under torch.distributed each rank reads its own contiguous shard and the sums are reduced.
    """
    device = model.head.weight.device
    rank, world = dist_rank_world()
    n = len(val) - 1 if not max_chars else min(len(val) - 1, max_chars)
    lo, hi = n * rank // world, n * (rank + 1) // world
    total, count = loss_sum(model, val[lo:hi + 1], seq_len, batch, device)
    if world > 1:
        sums = torch.tensor([total, count], dtype=torch.float64, device=device)
        dist.all_reduce(sums)
        total, count = sums.tolist()
    return total / max(count, 1)


def loss_sum(model: CharRNN, ids: torch.Tensor, seq_len: int, batch: int, device) -> tuple[float, int]:
    """Summed loss and number of predictions over ``ids`` laid out as B parallel streams."""
    n = len(ids) - 1
    batch = max(1, min(batch, n // max(seq_len, 1)))
    length = n // batch
    if length == 0:
        return 0.0, 0
    x = ids[:batch * length].long().view(batch, length).to(device)          # (B, L)
    y = ids[1:batch * length + 1].long().view(batch, length).to(device)     # (B, L)
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    for t in range(0, length, seq_len):
        _, loss, state = model(x[:, t:t + seq_len], y[:, t:t + seq_len], state)
        total += loss.item() * x[:, t:t + seq_len].numel()
    model.train(was_training)
    return total, batch * length


def dist_rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def as_tuple(state) -> tuple:
    """A recurrent state as a tuple of tensors: (h, c) for an LSTM, (h,) for a GRU or RNN."""
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def restart_streams(state, restarted: torch.Tensor):
    """``state`` with the streams marked in ``restarted`` (B bools) set back to zero; None stays None."""
    if state is None or not restarted.any():
        return state
    if restarted.all():
        return None
    keep = (~restarted).to(as_tuple(state)[0].dtype)[None, :, None]          # (1, B, 1)
    zeroed = tuple(t * keep for t in as_tuple(state))
    return zeroed if isinstance(state, tuple) else zeroed[0]


class TrainingDiverged(RuntimeError):
    """The loss became non-finite or exploded."""


class Trainer:
    """Owns the model, optimizer, data stream and counters of one training run."""

    def __init__(self, model: CharRNN, corpus: Corpus, cfg: TrainConfig):
        self.model, self.corpus, self.cfg = model, corpus, cfg
        self.device = model.head.weight.device
        opt = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        # fused: one kernel for all parameters (a few % per step at small batches on CPU)
        self.optimizer = opt(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                             fused=self.device.type in ("cpu", "cuda"))
        probe_start = time.perf_counter()
        self.precision = choose_precision(cfg, model, corpus)
        self.setup_seconds = time.perf_counter() - probe_start     # the precision probe counts in the run's time
        self.bf16 = self.precision["choice"] == "bf16"
        self.rank, self.world = dist_rank_world()
        self.generator = torch.Generator().manual_seed(cfg.seed + self.rank)
        # under torchrun, gradients are averaged across ranks by DDP; each rank draws its own batches
        self.net = model if self.world == 1 else torch.nn.parallel.DistributedDataParallel(model)
        self.step = 0
        self.elapsed = 0.0
        self.best_val = math.inf
        self.last_val = math.nan
        self.chars_seen = 0
        self.stream_pos: torch.Tensor | None = None      # carry_state: where each stream reads next
        self.stream_state = None                          # carry_state: the state each stream ended in (detached)

    # --- resume ----------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                 "step": self.step, "elapsed": self.elapsed, "best_val": self.best_val,
                 "last_val": self.last_val, "chars_seen": self.chars_seen}
        if self.stream_pos is not None:
            state["stream_pos"] = self.stream_pos.clone()
            state["stream_state"] = [t.detach().cpu().clone() for t in as_tuple(self.stream_state)]
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if self.rank:  # only rank 0's stream is saved; other ranks continue on a fresh, distinct stream
            self.generator.manual_seed(self.cfg.seed + self.rank + 7919 * state["step"])
        for key in ("step", "elapsed", "best_val", "last_val", "chars_seen"):
            setattr(self, key, state[key])
        # streams carried across steps continue where they were (a state saved without them starts fresh ones)
        if self.cfg.carry_state and not self.rank and "stream_pos" in state:
            self.stream_pos = state["stream_pos"].clone()
            saved = [t.to(self.device) for t in state["stream_state"]]
            self.stream_state = tuple(saved) if self.model.config.cell == "lstm" else saved[0]

    # --- schedule ---------------------------------------------------------------
    def progress(self) -> float:
        parts = []
        if self.cfg.iterations:
            parts.append(self.step / self.cfg.iterations)
        if self.cfg.minutes:
            parts.append(self.elapsed / (60 * self.cfg.minutes))
        if self.cfg.max_epochs:     # a small text on a fast machine: the schedule ends after these passes over it
            parts.append(self.passes_progress())
        return max(parts)

    def passes_progress(self) -> float:
        """The fraction of cfg.max_epochs passes over the training text read so far (0 when there is no such limit)."""
        return self.chars_seen / (self.cfg.max_epochs * len(self.corpus.train)) if self.cfg.max_epochs else 0.0

    def done(self) -> bool:
        return self.progress() >= 1.0

    def set_lr(self) -> float:
        lr = self.cfg.lr * lr_factor(self.progress(), self.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    # --- one step ---------------------------------------------------------------
    def train_step(self) -> float:
        cfg = self.cfg
        state = None
        if cfg.carry_state:
            x, y, self.stream_pos, restarted = self.corpus.stream_batch(
                self.stream_pos, cfg.batch_size, cfg.seq_len, self.generator)
            state = restart_streams(self.stream_state, restarted.to(self.device))
        else:
            x, y = self.corpus.get_batch(cfg.batch_size, cfg.seq_len, self.generator)   # (B, T)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        self.net.train()
        # bf16 where it measured faster (choose_precision); the loss is float32
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            _, loss, state = self.net(x, y, state)
        if cfg.carry_state:   # the gradient stops at the step's first character; the state goes on
            self.stream_state = tuple(t.detach().float() for t in as_tuple(state))
            if self.model.config.cell != "lstm":
                self.stream_state = self.stream_state[0]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        value = self.mean_over_ranks(loss.detach())
        self.check_loss(value)
        self.optimizer.step()
        return value

    def mean_over_ranks(self, value: torch.Tensor) -> float:
        if self.world > 1:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value = value / self.world
        return value.item()

    def agree_to_continue(self, should_stop: Callable[[], bool]) -> bool:
        """True while training should go on; under torchrun every rank gets the same answer."""
        if self.world > 1:  # share the slowest clock, so lr schedules stay identical
            flags = torch.tensor([float(should_stop()), self.elapsed], dtype=torch.float64, device=self.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            stop, self.elapsed = bool(flags[0].item()), flags[1].item()
            return not stop and not self.done()
        return not self.done() and not should_stop()

    def check_loss(self, value: float) -> None:
        limit = self.cfg.max_loss_factor * math.log(len(self.corpus.vocab)) + 1.0
        if not math.isfinite(value):
            raise TrainingDiverged(f"loss became {value} at step {self.step + 1}; try a lower learning rate")
        if value > limit:
            raise TrainingDiverged(
                f"loss exploded to {value:.2f} (> {limit:.2f}) at step {self.step + 1}; "
                "try a lower learning rate or gradient clipping")

    def validate(self) -> float:
        cfg = self.cfg
        self.last_val = evaluate(self.model, self.corpus.val, cfg.seq_len, cfg.batch_size, cfg.eval_chars)
        self.best_val = min(self.best_val, self.last_val)
        return self.last_val

    def sample(self) -> str:
        cfg = self.cfg
        chars = generate(self.model, self.corpus.vocab, cfg.sample_prime, cfg.sample_length,
                         cfg.sample_temperature, seed=self.step, unknown="drop")
        text = cfg.sample_prime + "".join(chars)
        self.model.train()
        return text

    # --- the loop ---------------------------------------------------------------
    def fit(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
        """Train until done or ``should_stop()``; yield a record every cfg.log_every steps.

        Records carry ``val_loss``/``val_bpc`` on eval steps and ``sample`` on
        sample steps; the last record has ``end`` set to 'finished' or 'stopped'.
        Raises TrainingDiverged on a non-finite or exploding loss.
        """
        cfg = self.cfg
        losses, chars_log, first = [], 0, True
        t_start = t_log = time.perf_counter()
        elapsed_before, self.setup_seconds = self.elapsed + self.setup_seconds, 0.0
        while self.agree_to_continue(should_stop):
            lr = self.set_lr()
            losses.append(self.train_step())
            self.step += 1
            self.chars_seen += cfg.batch_size * cfg.seq_len * self.world
            chars_log += cfg.batch_size * cfg.seq_len * self.world
            now = time.perf_counter()
            self.elapsed = elapsed_before + now - t_start
            # the step limit is the same on every rank; a time budget is agreed at the loop's top
            if (self.cfg.iterations and self.step >= self.cfg.iterations) or (self.world == 1 and self.done()):
                break
            due_eval = self.step % cfg.eval_every == 0
            due_sample = self.step % cfg.sample_every == 0
            if self.step % cfg.log_every == 0 or due_eval or due_sample:
                rec = self.record(losses, lr, chars_log / max(now - t_log, 1e-9), due_eval, due_sample)
                if first:
                    rec["precision"], first = self.precision, False
                losses, chars_log = [], 0
                yield rec
                t_log = time.perf_counter()
        now = time.perf_counter()
        rec = self.record(losses, self.optimizer.param_groups[0]["lr"], chars_log / max(now - t_log, 1e-9),
                          True, True)
        rec["end"] = "finished" if self.done() else "stopped"
        if first:
            rec["precision"] = self.precision
        yield rec

    def record(self, losses: list[float], lr: float, chars_per_s: float, with_eval: bool,
               with_sample: bool) -> dict:
        rec = {"step": self.step, "lr": lr, "chars_per_s": round(chars_per_s, 1),
               "elapsed": round(self.elapsed, 3), "progress": round(min(self.progress(), 1.0), 5),
               "time": time.time()}
        if losses:
            rec["train_loss"] = sum(losses) / len(losses)
        if with_eval:
            rec["val_loss"] = self.validate()
            rec["val_bpc"] = rec["val_loss"] / math.log(2)
        if with_sample and self.rank == 0:
            rec["sample"] = self.sample()
        return rec


def is_writer() -> bool:
    """Rank 0 (or a plain single-process run) owns the run directory."""
    return int(os.environ.get("RANK", "0")) == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed() -> bool:
    """Join the torchrun process group when launched by torchrun; gloo on CPU, nccl on GPU."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend)
    return True


def shared_name(name: str) -> str:
    """Rank 0's choice of run name, so every rank writes to the same run."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return name
    box = [name]
    dist.broadcast_object_list(box, src=0)
    return box[0]
