"""One training run in its run directory: set up or resume, train, save, report.

This is the policy around ``Trainer.fit``: when to checkpoint, what to
append to metrics.jsonl, what status to leave behind on success, stop,
divergence or failure. The CLI and the app's worker both go through here.

Like nanoGPT, the kept model (model.safetensors) is rewritten only when the
validation loss improves; unlike it, the latest weights and optimizer state
are saved too (latest.safetensors, train_state-<step>.pt) so a run resumes
exactly. ``--patience N`` ends a run after N evaluations without improvement.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Corpus, CorpusError, min_corpus_chars, read_text
from charrnn.model import CharRNN
from charrnn.runs.store import (
    LATEST,
    METRICS,
    STATUS,
    WEIGHTS,
    append_metrics,
    check_room,
    corpus_path,
    latest_file,
    latest_header,
    load_checkpoint,
    load_train_state,
    plot_losses,
    read_header,
    read_metrics,
    read_status,
    resume_step,
    save_checkpoint,
    save_latest,
    truncate_metrics,
    write_corpus_record,
    write_final_status,
    write_status,
)
from charrnn.runs.weights import CheckpointError
from charrnn.runs.writes import NO_ROOM, WriteFailed, write_failure
from charrnn.train import Trainer, TrainingDiverged, is_writer, local_rank, pick_device
from charrnn.vocab import Vocab


def build_corpus(text: str, cfg: TrainConfig, vocab: Vocab | None = None) -> Corpus:
    """Encode ``text`` with the vocabulary the config asks for, refusing too-short texts."""
    if vocab is None and cfg.vocab == "printable":
        vocab = Vocab.printable()
    need = min_corpus_chars(cfg.seq_len, cfg.val_fraction)
    return Corpus.from_text(text, vocab, cfg.val_fraction, min_chars=need,
                            unknown=cfg.unknown if vocab is not None else "error")


PATIENCE_REASON = "validation stopped improving at step"     # how a run that patience ended says why, then the step


class BestSoFar:
    """The kept model's step and validation loss (inf: not evaluated yet), and the early-stopping count:
    evaluations since it.

    Any evaluation can set a new best; only scheduled ones (every ``eval_every`` steps) use up patience, so
    the extra evaluation of a stop does not make a resumed run end sooner than a straight one.
    """

    def __init__(self, patience: int, eval_every: int, step: int | None = None, val_loss: float = math.inf,
                 stale: int = 0, last_eval_step: int = -1):
        self.patience, self.eval_every = patience, eval_every
        self.step, self.val_loss, self.stale, self.last_eval_step = step, val_loss, stale, last_eval_step

    def observe(self, rec: dict) -> bool:
        """Take in a record; True when it carries a better validation loss than any before."""
        if "val_loss" not in rec or rec["step"] == self.last_eval_step:   # an end record repeating an eval
            return False
        self.last_eval_step = rec["step"]
        if rec["val_loss"] < self.val_loss:
            self.step, self.val_loss, self.stale = rec["step"], rec["val_loss"], 0
            return True
        if rec["step"] % self.eval_every == 0:
            self.stale += 1
        return False

    def exhausted(self) -> bool:
        return self.patience > 0 and self.stale >= self.patience

    def reason(self) -> str:
        return f"{PATIENCE_REASON} {self.step}"

    def fields(self) -> dict:
        """best_step / best_val_loss for headers, records and status (the loss is None before an evaluation)."""
        return {"best_step": self.step,
                "best_val_loss": self.val_loss if math.isfinite(self.val_loss) else None}

    def state_dict(self) -> dict:
        return {"stale": self.stale, "last_eval_step": self.last_eval_step}

    @classmethod
    def resumed(cls, cfg: TrainConfig, kept: dict, state: dict | None) -> BestSoFar:
        """From the kept model's header (what is actually kept) and the count saved with the optimizer state.

        A run that patience ended gets a fresh count: resuming it means "try longer"."""
        val = kept.get("val_loss")
        val = val if isinstance(val, (int, float)) and math.isfinite(val) else math.inf
        best = cls(cfg.patience, cfg.eval_every, kept.get("step"), val, **(state or {}))
        if best.exhausted():
            best.stale = 0
        return best


class Run:
    """A prepared run: model, trainer and where to save them."""

    def __init__(self, directory: Path, trainer: Trainer, data_info: dict, name: str, best: BestSoFar | None = None):
        self.directory, self.trainer, self.data_info, self.name = directory, trainer, data_info, name
        cfg = trainer.cfg
        self.best = best or BestSoFar(cfg.patience, cfg.eval_every)

    @classmethod
    def create(cls, directory: Path, data_path: str | Path, model_cfg: ModelConfig,
               train_cfg: TrainConfig, data_name: str | None = None, text: str | None = None) -> Run:
        """A new run on ``data_path`` (``text``: its contents, when the caller has read them already)."""
        text = read_text(data_path) if text is None else text
        corpus = build_corpus(text, train_cfg)
        model_cfg = ModelConfig(**{**model_cfg.to_dict(), "vocab_size": len(corpus.vocab)})
        device = pick_device(train_cfg.device, local_rank())        # refuse a missing device before writing
        if (directory / WEIGHTS).exists() or (directory / LATEST).exists():
            raise CheckpointError(f"run {directory.name!r} already exists; resume it or pick another name")
        if is_writer():
            directory.mkdir(parents=True, exist_ok=True)
            check_writable(directory)
            for stale in (METRICS, STATUS):
                (directory / stale).unlink(missing_ok=True)
            write_corpus_record(directory, data_path)
        torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
        model = CharRNN(model_cfg).to(device)
        data_info = corpus_info(data_name or Path(data_path).name, data_path, corpus)
        return cls(directory, Trainer(model, corpus, train_cfg), data_info, directory.name)

    @classmethod
    def resume(cls, directory: Path, overrides: dict | None = None, data_path: str | Path | None = None) -> Run:
        status = read_status(directory)
        if status.get("state") == "running":
            pid = status.get("pid")
            raise CheckpointError(f"run {directory.name!r} is still training (pid {pid}); stop it first")
        kept = read_header(directory)
        header = latest_header(directory)          # the kept model's own header in a run from before the split
        train_cfg = TrainConfig.from_dict({**header["train_config"], **(overrides or {})})
        data_path = data_path or corpus_path(directory, header)
        if data_path is None:
            raise CorpusError("cannot resume: the run does not record where its corpus is; pass --data FILE")
        try:
            text = read_text(data_path)
        except CorpusError as e:
            raise CorpusError(f"cannot resume: the run's corpus is unavailable ({e}); pass --data") from None
        model, vocab, _ = load_checkpoint(latest_file(directory),
                                             device=pick_device(train_cfg.device, local_rank()))
        corpus = build_corpus(text, train_cfg, vocab)
        trainer = Trainer(model, corpus, train_cfg)
        state = load_train_state(directory, header["step"])
        trainer.load_state_dict(state)
        if is_writer():
            check_writable(directory)
            check_room(directory)
            truncate_metrics(directory, header["step"])
            for leftover in directory.glob(".*.tmp"):  # from a process killed mid-write
                leftover.unlink(missing_ok=True)
            write_corpus_record(directory, data_path)
        data_info = corpus_info(header.get("data", {}).get("name") or Path(data_path).name, data_path, corpus)
        best = BestSoFar.resumed(train_cfg, kept, state.get("best"))
        return cls(directory, trainer, data_info, directory.name, best)

    def meta(self, records: list[dict]) -> dict:
        """The header of the weights as they are now; ``val_loss`` is theirs (None unless evaluated at this step)."""
        t = self.trainer
        return {"run": self.name, "train_config": t.cfg.to_dict(), "step": t.step, "elapsed": t.elapsed,
                "chars_seen": t.chars_seen, **self.best.fields(),
                "val_loss": t.last_val if self.best.last_eval_step == t.step else None,
                "train_loss": next((r["train_loss"] for r in reversed(records) if "train_loss" in r), None),
                "params": t.model.num_params(), "data": self.data_info, "precision": t.precision,
                "saved": time.time()}

    def save(self, records: list[dict], improved: bool) -> None:
        """Save where training is; when the validation loss improved (or nothing is kept yet) keep it too.

        The latest is written first, so the kept model's step is never ahead of the step a resume starts at."""
        t = self.trainer
        keep = improved or not (self.directory / WEIGHTS).exists()
        if keep and not improved:       # nothing evaluated yet: these weights are kept until an evaluation is better
            self.best.step = t.step
        meta = self.meta(records)
        state = {**t.state_dict(), "best": self.best.state_dict()}
        save_latest(self.directory, t.model, t.corpus.vocab, meta, state)
        if keep:
            save_checkpoint(self.directory, t.model, t.corpus.vocab, meta)
        kept = (self.best.step, self.best.val_loss) if math.isfinite(self.best.val_loss) else None
        plot_losses(self.directory, records, kept)

    def train(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
        """Run the trainer, writing metrics, checkpoints and status; yield each record.

        Under torchrun only rank 0 writes; the other ranks train and yield. The stopping policy
        (``should_stop`` or patience) runs on every rank: validation losses are the same on all, so they agree.
        """
        def stop() -> bool:
            return should_stop() or self.best.exhausted()

        if not is_writer():
            for rec in self.trainer.fit(stop):
                self.note(rec)
                yield rec
            return
        cfg = self.trainer.cfg
        records = read_metrics(self.directory)
        write_status(self.directory, "running", pid=os.getpid(), started=time.time(),
                        step=self.trainer.step, iterations=cfg.iterations, minutes=cfg.minutes)
        try:
            for rec in self.trainer.fit(stop):
                if records and records[-1].get("step") == rec["step"]:
                    # stopped right after a logged step: the end record replaces that step's record
                    rec = {**records.pop(), **rec}
                    truncate_metrics(self.directory, rec["step"] - 1)
                improved = self.note(rec)
                append_metrics(self.directory, rec)
                records.append(rec)
                if improved or "end" in rec or rec["step"] % cfg.checkpoint_every == 0:
                    self.save(records, improved)
                yield rec
        except TrainingDiverged as e:
            write_final_status(self.directory, "failed", reason=str(e), step=self.trainer.step, pid=os.getpid(),
                                  **self.best.fields())
            raise
        except BaseException as e:
            # a full disk may refuse this too: the status is then rewritten in place, or removed, never left running
            write_final_status(self.directory, "failed", reason=failure_reason(e, self.directory),
                                  step=self.trainer.step, pid=os.getpid(),
                                  checkpoint_step=resume_step(self.directory))
            raise
        why = {"reason": rec["reason"]} if "reason" in rec else {}
        # the pid tells the supervisor that this process is only exiting now: its run may be resumed at once
        write_final_status(self.directory, rec["end"], step=self.trainer.step, finished=time.time(),
                              val_loss=self.trainer.last_val, pid=os.getpid(), **self.best.fields(), **why)

    def note(self, rec: dict) -> bool:
        """Update the best so far from ``rec`` and mark it: eval records and the end record carry the kept
        step and loss; an end brought by patience becomes 'finished' with the reason. True on improvement."""
        improved = self.best.observe(rec)
        if "val_loss" in rec or "end" in rec:
            rec.update(self.best.fields())
        if rec.get("end") == "stopped" and self.best.exhausted():
            rec["end"], rec["reason"] = "finished", self.best.reason()
        elif rec.get("end") == "finished" and self.trainer.passes_progress() >= 1.0:
            rec["reason"] = f"it had read its text {self.trainer.cfg.max_epochs:g} times, its limit of passes"
        return improved


def failure_reason(e: BaseException, directory: Path) -> str:
    """What a failed run's status says: a failed write as itself ('disk full: 1.2 MiB free in my-run'), anything
    else with its type."""
    if isinstance(e, OSError) and not isinstance(e, WriteFailed) and e.errno in NO_ROOM:
        e = write_failure(e, directory / STATUS, None)
    if isinstance(e, WriteFailed):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def corpus_info(name: str, data_path: str | Path, corpus: Corpus) -> dict:
    """The corpus as headers record it: by name and size, never by a path on this machine."""
    return {"name": name, "chars": len(corpus.train) + len(corpus.val), "bytes": Path(data_path).stat().st_size}


def check_writable(directory: Path) -> None:
    """Refuse to start when the run directory cannot be written (read-only folder, full disk)."""
    probe = directory / ".write-test"
    try:
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as e:
        raise OSError(f"cannot write to {directory}: {e.strerror or e}") from None


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a run stops cleanly after a final checkpoint."""
    event = threading.Event()

    def handler(signum, frame):
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return event
