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

import hashlib
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
from charrnn.finetune import BaseMismatch, extended_vocab, from_base, shape_config
from charrnn.model import CharRNN
from charrnn.runs import startpoint
from charrnn.runs.store import RunDir, checkpoint_file, load_checkpoint, read_header
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


def check_corpus(text: str, cfg: TrainConfig) -> int:
    """The checks ``build_corpus`` makes, without encoding: the vocabulary size the run will have, or the same
    refusal (a text too short, characters a printable vocabulary refuses). For a caller that starts a trainer
    process and must refuse a bad text first."""
    if not text:
        raise CorpusError("the text is empty")
    if cfg.vocab == "printable":
        vocab = Vocab.printable()
        text = vocab.clean(text, cfg.unknown)
        size = len(vocab)
    else:
        size = len(set(text))
    need = min_corpus_chars(cfg.seq_len, cfg.val_fraction)
    if len(text) < need:
        raise CorpusError(f"the text has {len(text):,} characters; at least {need:,} are needed "
                          f"(one training portion plus validation)")
    return size


def run_config(preset: str, data_name: str, data_path: str | Path, model_cfg: ModelConfig,
               train_cfg: TrainConfig, init: str | Path | None = None) -> dict:
    """What run.json holds: the resolved configs (the vocabulary size is the corpus's, set by the trainer), the
    preset they were resolved from, the corpus by name and place, and the model it starts from (if any)."""
    return {"preset": preset, "data": {"name": data_name, "path": str(data_path)},
            "model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict(),
            **({"init": str(init)} if init is not None else {})}


def start_from(init: str | Path, text: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
               asked: dict | None = None) -> tuple[CharRNN, Corpus, dict]:
    """The model, corpus and header record of a run that starts from the trained model ``init``: its shape and
    weights, its vocabulary (extended with the text's new characters, unless it reads only string.printable)."""
    path = checkpoint_file(init)
    base, base_vocab, header = load_checkpoint(path)
    if header.get("train_config", {}).get("vocab") == "printable":
        outside = base_vocab.unknown_chars(text)
        if outside and train_cfg.unknown == "error":
            shown = ", ".join(repr(c) for c in outside[:5])
            raise BaseMismatch(f"the base model reads only string.printable, and this text has characters outside it "
                               f"({shown}{', ...' if len(outside) > 5 else ''}): pass --unknown fold or drop, "
                               "or train from zero")
        vocab = base_vocab
    else:
        vocab = extended_vocab(base_vocab, text)
    corpus = build_corpus(text, train_cfg, vocab)
    config = shape_config(base.config, model_cfg, len(vocab), asked)
    model = from_base(base, base_vocab, vocab, config, train_cfg.seed)
    record = {"name": str(header.get("run") or path.parent.name), "sha256": file_sha256(path),
              "added_chars": len(vocab) - len(base_vocab)}
    return model, corpus, record


def choose_start(text: str, model_cfg: ModelConfig, train_cfg: TrainConfig, asked: dict | None
                 ) -> tuple[Path | None, dict, tuple | None]:
    """auto's start: the base model when its probe on the run's held-out split says it knows this kind of text
    (``startpoint``), else zero. Returns the base's file (or None), the choice as headers record it, and the
    model, corpus and init record built from the base (None when starting from zero)."""
    base = startpoint.base_model()
    if base is None:
        return None, {"choice": "zero", "how": "no base model"}, None
    path = checkpoint_file(base)
    header = read_header(path)
    name = str(header.get("run") or path.parent.name)
    clash = startpoint.asked_shape(asked, model_cfg, ModelConfig(**header["model_config"]))
    if clash:
        return None, {"choice": "zero", "how": "asked", "base": name,
                      "why": f"{clash} was set, and the base {name} has {clash} {header['model_config'][clash]}"}, None
    try:
        built = start_from(path, text, model_cfg, train_cfg, asked)
    except BaseMismatch as e:
        return None, {"choice": "zero", "how": "refused", "base": name, "why": str(e)}, None
    measured = startpoint.probe(built[0], built[1], train_cfg)
    choice = startpoint.decide(measured)
    record = {"choice": choice, "how": "measured", "base": name, **measured, "why": startpoint.why(choice, measured)}
    return (path, record, built) if choice == "base" else (None, record, None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_of_header(header: dict, data_path: str | Path) -> dict:
    """run.json for a run from before it: the configs its latest header records (its preset is not known)."""
    return {"preset": "", "data": {"name": str(header.get("data", {}).get("name") or Path(data_path).name),
                                   "path": str(data_path)},
            "model_config": dict(header["model_config"]), "train_config": dict(header["train_config"])}


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
        return f"{PATIENCE_REASON} {self.step:,}"

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

    def __init__(self, run: RunDir, trainer: Trainer, data_info: dict, best: BestSoFar | None = None,
                 started_from: dict | None = None, start: dict | None = None):
        self.run, self.trainer, self.data_info, self.started_from = run, trainer, data_info, started_from
        self.start = start              # auto's choice between the base and zero, and why (None: not auto's)
        self.directory, self.name = run.path, run.name
        self.in_burst = False           # trains inside another program (an app's GPU burst), not a trainer process
        cfg = trainer.cfg
        self.best = best or BestSoFar(cfg.patience, cfg.eval_every)

    @classmethod
    def create(cls, run: RunDir | Path, data_path: str | Path, model_cfg: ModelConfig, train_cfg: TrainConfig,
               data_name: str | None = None, text: str | None = None, preset: str = "",
               init: str | Path | None = None, asked: dict | None = None) -> Run:
        """A new run on ``data_path`` (``text``: its contents, when the caller has read them already); its run.json
        records these configs, resolved from ``preset``. ``init``: a trained model (run or file) to start from
        (``start_from``; ``asked``: the model settings given explicitly, which must fit its shape)."""
        run = as_run(run)
        text = read_text(data_path) if text is None else text
        device = pick_device(train_cfg.device, local_rank())        # refuse a missing device before writing
        if run.has_model():
            raise CheckpointError(f"run {run.name!r} already exists; resume it or pick another name")
        began, start = time.perf_counter(), None
        if init == startpoint.AUTO:
            init, start, built = choose_start(text, model_cfg, train_cfg, asked)
        elif init == startpoint.NONE:
            init, built = None, None
        elif init is not None:
            init = checkpoint_file(init)                             # run.json names the very file it started from
            built = start_from(init, text, model_cfg, train_cfg, asked)
        else:
            built = None
        if built is not None:
            model, corpus, started_from = built
            model_cfg = model.config
        else:
            corpus, started_from = build_corpus(text, train_cfg), None
            model_cfg = ModelConfig(**{**model_cfg.to_dict(), "vocab_size": len(corpus.vocab)})
            torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
            model = CharRNN(model_cfg)
        data_info = corpus_info(data_name or Path(data_path).name, data_path, corpus)
        if is_writer():
            run.prepare_new(data_path, run_config(preset, data_info["name"], data_path, model_cfg, train_cfg, init))
        trainer = Trainer(model.to(device), corpus, train_cfg)
        if start is not None:           # auto's probe counts in the run's time, as the precision probe does
            trainer.setup_seconds += time.perf_counter() - began
        return cls(run, trainer, data_info, started_from=started_from, start=start)

    @classmethod
    def configured(cls, run: RunDir, overrides: dict | None = None) -> Run:
        """The run that run.json describes: started when it has no checkpoint yet, else resumed from it."""
        config = run.read_config()
        if config is None:
            raise CheckpointError(f"run {run.name!r} has no {RunDir.CONFIG}; start it with --data FILE")
        if run.resume_step() is not None:
            return cls.resume(run, {**config["train_config"], **(overrides or {})})
        try:
            train = TrainConfig.from_dict({**config["train_config"], **(overrides or {})})
            model = ModelConfig(**config["model_config"])
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{run.file(RunDir.CONFIG)}: {e}") from None
        data = Path(config["data"]["path"])
        return cls.create(run, data if data.is_absolute() else run.path / data, model, train, config["data"]["name"],
                          preset=config["preset"], init=config.get("init"))

    @classmethod
    def resume(cls, run: RunDir | Path, overrides: dict | None = None, data_path: str | Path | None = None) -> Run:
        """Continue ``run`` exactly from its latest weights and optimizer state (``overrides``: train settings that
        change, such as a longer budget; ``data_path``: where its text is now, when it moved)."""
        run = as_run(run)
        point = run.open_for_resume()
        train_cfg = TrainConfig.from_dict({**point.header["train_config"], **(overrides or {})})
        data_path = data_path or point.corpus
        if data_path is None:
            raise CorpusError("cannot resume: the run does not record where its corpus is; pass --data FILE")
        try:
            text = read_text(data_path)
        except CorpusError as e:
            raise CorpusError(f"cannot resume: the run's corpus is unavailable ({e}); pass --data") from None
        model = point.model.to(pick_device(train_cfg.device, local_rank()))
        trainer = Trainer(model, build_corpus(text, train_cfg, point.vocab), train_cfg)
        trainer.load_state_dict(point.state)
        name = point.header.get("data", {}).get("name") or Path(data_path).name
        if is_writer():
            preset = (run.read_config() or {}).get("preset", "")
            run.prepare_resume(point.header["step"], data_path,
                               run_config(preset, name, data_path, point.model.config, train_cfg))
        best = BestSoFar.resumed(train_cfg, point.kept, point.state.get("best"))
        return cls(run, trainer, corpus_info(name, data_path, trainer.corpus), best, point.header.get("init"),
                   point.header.get("start"))

    def meta(self, records: list[dict]) -> dict:
        """The header of the weights as they are now; ``val_loss`` is theirs (None unless evaluated at this step)."""
        t = self.trainer
        return {"run": self.name, "train_config": t.cfg.to_dict(), "step": t.step, "elapsed": t.elapsed,
                "chars_seen": t.chars_seen, **self.best.fields(),
                "val_loss": t.last_val if self.best.last_eval_step == t.step else None,
                "train_loss": next((r["train_loss"] for r in reversed(records) if "train_loss" in r), None),
                "params": t.model.num_params(), "data": self.data_info, "precision": t.precision,
                "saved": time.time(), **({"init": self.started_from} if self.started_from else {}),
                **({"start": self.start} if self.start else {})}

    def save(self, records: list[dict], improved: bool) -> None:
        """Save where training is; when the validation loss improved (or nothing is kept yet) keep it too."""
        t = self.trainer
        keep = improved or not self.run.weights.exists()
        if keep and not improved:       # nothing evaluated yet: these weights are kept until an evaluation is better
            self.best.step = t.step
        state = {**t.state_dict(), "best": self.best.state_dict()}
        kept = (self.best.step, self.best.val_loss) if math.isfinite(self.best.val_loss) else None
        self.run.checkpoint(t.model, t.corpus.vocab, self.meta(records), state, keep, records, kept)

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
        records = self.run.records()
        burst = {"burst": True} if self.in_burst else {}
        self.run.write_status("running", pid=os.getpid(), started=time.time(), step=self.trainer.step,
                              iterations=cfg.iterations, minutes=cfg.minutes, **burst)
        try:
            for rec in self.trainer.fit(stop):
                if "precision" in rec and self.start and not any("start" in r for r in records):
                    rec["start"] = self.start           # the first record says where the run started, and why
                if records and records[-1].get("step") == rec["step"]:
                    # stopped right after a logged step: the end record replaces that step's record
                    rec = {**records.pop(), **rec}
                    self.run.truncate_metrics(rec["step"] - 1)
                improved = self.note(rec)
                self.run.append_metrics(rec)
                records.append(rec)
                if improved or "end" in rec or rec["step"] % cfg.checkpoint_every == 0:
                    self.save(records, improved)
                yield rec
        except TrainingDiverged as e:
            self.run.write_final_status("failed", reason=str(e), step=self.trainer.step, pid=os.getpid(),
                                  **self.best.fields())
            raise
        except BaseException as e:
            # a full disk may refuse this too: the status is then rewritten in place, or removed, never left running
            self.run.write_final_status("failed", reason=failure_reason(e, self.run),
                                  step=self.trainer.step, pid=os.getpid(),
                                  checkpoint_step=self.run.resume_step())
            raise
        why = {"reason": rec["reason"]} if "reason" in rec else {}
        # the pid tells the supervisor that this process is only exiting now: its run may be resumed at once
        self.run.write_final_status(rec["end"], step=self.trainer.step, finished=time.time(),
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


def as_run(run: RunDir | Path) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(run)


def failure_reason(e: BaseException, run: RunDir) -> str:
    """What a failed run's status says: a failed write as itself ('disk full: 1.2 MiB free in my-run'), anything
    else with its type."""
    if isinstance(e, OSError) and not isinstance(e, WriteFailed) and e.errno in NO_ROOM:
        e = write_failure(e, run.status_file, None)
    if isinstance(e, WriteFailed):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def corpus_info(name: str, data_path: str | Path, corpus: Corpus) -> dict:
    """The corpus as headers record it: by name and size, never by a path on this machine."""
    return {"name": name, "chars": len(corpus.train) + len(corpus.val), "bytes": Path(data_path).stat().st_size}


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a run stops cleanly after a final checkpoint."""
    event = threading.Event()

    def handler(signum, frame):
        event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return event
