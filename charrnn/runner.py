"""One training run in its run directory: set up or resume, train, save, report.

This is the policy around ``Trainer.fit``: when to checkpoint, what to
append to metrics.jsonl, what status to leave behind on success, stop,
divergence or failure. The CLI and the app's worker both go through here.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from . import checkpoint as ck
from .data import Corpus, CorpusError, min_corpus_chars, read_text
from .model import CharRNN, ModelConfig
from .train import TrainConfig, Trainer, TrainingDiverged, pick_device
from .vocab import Vocab


def build_corpus(text: str, cfg: TrainConfig, vocab: Vocab | None = None) -> Corpus:
    """Encode ``text`` with the vocabulary the config asks for, refusing too-short texts."""
    if vocab is None and cfg.vocab == "printable":
        vocab = Vocab.printable()
    need = min_corpus_chars(cfg.seq_len, cfg.val_fraction)
    return Corpus.from_text(text, vocab, cfg.val_fraction, min_chars=need,
                            unknown=cfg.unknown if vocab is not None else "error")


class Run:
    """A prepared run: model, trainer and where to save them."""

    def __init__(self, directory: Path, trainer: Trainer, data_info: dict, name: str):
        self.directory, self.trainer, self.data_info, self.name = directory, trainer, data_info, name

    @classmethod
    def create(cls, directory: Path, data_path: str | Path, model_cfg: ModelConfig,
               train_cfg: TrainConfig, data_name: str | None = None) -> Run:
        text = read_text(data_path)
        corpus = build_corpus(text, train_cfg)
        model_cfg = ModelConfig(**{**model_cfg.to_dict(), "vocab_size": len(corpus.vocab)})
        if directory.exists() and (directory / ck.WEIGHTS).exists():
            raise ck.CheckpointError(f"run {directory.name!r} already exists; resume it or pick another name")
        if is_writer():
            directory.mkdir(parents=True, exist_ok=True)
            check_writable(directory)
            for stale in (ck.METRICS, ck.STATUS):
                (directory / stale).unlink(missing_ok=True)
        torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
        model = CharRNN(model_cfg).to(pick_device(train_cfg.device, local_rank()))
        data_info = {"path": str(Path(data_path).resolve()), "name": data_name or Path(data_path).name,
                     "chars": len(corpus.train) + len(corpus.val)}
        return cls(directory, Trainer(model, corpus, train_cfg), data_info, directory.name)

    @classmethod
    def resume(cls, directory: Path, overrides: dict | None = None, data_path: str | Path | None = None) -> Run:
        status = ck.read_status(directory)
        if status.get("state") == "running":
            pid = status.get("pid")
            raise ck.CheckpointError(f"run {directory.name!r} is still training (pid {pid}); stop it first")
        header = ck.read_header(directory)
        train_cfg = TrainConfig.from_dict({**header["train_config"], **(overrides or {})})
        data_path = data_path or header["data"]["path"]
        try:
            text = read_text(data_path)
        except CorpusError as e:
            raise CorpusError(f"cannot resume: the run's corpus is unavailable ({e}); pass --data") from None
        model, vocab, _ = ck.load_checkpoint(directory, device=pick_device(train_cfg.device, local_rank()))
        corpus = build_corpus(text, train_cfg, vocab)
        trainer = Trainer(model, corpus, train_cfg)
        trainer.load_state_dict(ck.load_train_state(directory, header["step"]))
        if is_writer():
            check_writable(directory)
            ck.truncate_metrics(directory, header["step"])
            for leftover in directory.glob(".*.tmp"):  # from a process killed mid-write
                leftover.unlink(missing_ok=True)
        data_info = {**header["data"], "path": str(Path(data_path).resolve())}
        return cls(directory, trainer, data_info, directory.name)

    def save(self, records: list[dict]) -> None:
        t = self.trainer
        meta = {"run": self.name, "train_config": t.cfg.to_dict(), "step": t.step, "elapsed": t.elapsed,
                "chars_seen": t.chars_seen, "best_val_loss": t.best_val, "val_loss": t.last_val,
                "train_loss": next((r["train_loss"] for r in reversed(records) if "train_loss" in r), None),
                "params": t.model.num_params(), "data": self.data_info, "saved": time.time()}
        ck.save_train_state(self.directory, t.step, t.state_dict())
        ck.save_checkpoint(self.directory, t.model, t.corpus.vocab, meta)
        ck.plot_losses(self.directory, records)

    def train(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
        """Run the trainer, writing metrics, checkpoints and status; yield each record.

        Under torchrun only rank 0 writes; the other ranks train and yield.
        """
        if not is_writer():
            yield from self.trainer.fit(should_stop)
            return
        cfg = self.trainer.cfg
        records = ck.read_metrics(self.directory)
        ck.write_status(self.directory, "running", pid=os.getpid(), started=time.time(),
                        step=self.trainer.step, iterations=cfg.iterations, minutes=cfg.minutes)
        try:
            for rec in self.trainer.fit(should_stop):
                if records and records[-1].get("step") == rec["step"]:
                    # stopped right after a logged step: the end record replaces that step's record
                    rec = {**records.pop(), **rec}
                    ck.truncate_metrics(self.directory, rec["step"] - 1)
                ck.append_metrics(self.directory, rec)
                records.append(rec)
                if "end" in rec or rec["step"] % cfg.checkpoint_every == 0:
                    self.save(records)
                yield rec
        except TrainingDiverged as e:
            ck.write_status(self.directory, "failed", reason=str(e), step=self.trainer.step)
            raise
        except BaseException as e:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            try:
                ck.write_status(self.directory, "failed", reason=reason, step=self.trainer.step)
            except OSError:
                pass  # the disk that failed the save may fail this too; the exception says why
            raise
        ck.write_status(self.directory, rec["end"], step=self.trainer.step, finished=time.time(),
                        val_loss=self.trainer.last_val)


def is_writer() -> bool:
    """Rank 0 (or a plain single-process run) owns the run directory."""
    return int(os.environ.get("RANK", "0")) == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def check_writable(directory: Path) -> None:
    """Refuse to start when the run directory cannot be written (read-only folder, full disk)."""
    probe = directory / ".write-test"
    try:
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as e:
        raise OSError(f"cannot write to {directory}: {e.strerror or e}") from None


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


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a run stops cleanly after a final checkpoint."""
    event = threading.Event()

    def handler(signum, frame):
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return event
