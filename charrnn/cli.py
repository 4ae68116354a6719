"""Command line: ``python -m charrnn train | generate | info | runs``.

User mistakes (bad file, bad value, bad checkpoint) print one line on stderr
and exit with status 2; a diverged run exits with status 3.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from . import checkpoint as ck
from .data import CorpusError
from .presets import PRESETS, preset_configs, preset_vocab_kind
from .runner import Run, init_distributed, is_writer, shared_name, stop_on_signals
from .sample import generate
from .train import TrainingDiverged, pick_device
from .vocab import UnknownCharacterError

USER_ERRORS = (CorpusError, ck.CheckpointError, UnknownCharacterError, ValueError, OSError)


def default_root() -> Path:
    return Path(os.environ.get("CHARRNN_CHECKPOINTS", "checkpoints"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m charrnn", description="Character-level LSTM text generator.")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="folder of run directories (default: $CHARRNN_CHECKPOINTS or ./checkpoints)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a text file")
    t.add_argument("--data", type=Path, help="UTF-8 text file to train on (optional with --resume)")
    t.add_argument("--data-name", help="corpus name recorded in the checkpoint (default: the file's name)")
    t.add_argument("--preset", choices=sorted(PRESETS), default="default", help="recipe to start from")
    t.add_argument("--name", help="run name (default: <corpus>-<preset>-<time>)")
    t.add_argument("--resume", metavar="RUN", help="continue the stopped run RUN")
    # model
    t.add_argument("--hidden", type=int, help="hidden units per layer")
    t.add_argument("--layers", type=int, help="recurrent layers")
    t.add_argument("--embed", type=int, help="embedding size")
    t.add_argument("--dropout", type=float, help="dropout between layers and before the head")
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"], help="recurrent cell")
    # optimisation
    t.add_argument("--batch-size", type=int, help="portions per batch")
    t.add_argument("--seq-len", type=int, help="characters per portion")
    t.add_argument("--iterations", type=int, help="training steps (0 = only the time budget)")
    t.add_argument("--minutes", type=float, help="wall-clock budget in minutes (0 = only iterations)")
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--optimizer", choices=["adam", "adamw"], help="optimizer")
    t.add_argument("--grad-clip", type=float, help="gradient norm clip (0 = off)")
    t.add_argument("--warmup", type=int, help="warm-up steps")
    t.add_argument("--decay", choices=["cosine", "linear", "none"], help="learning-rate decay")
    # bookkeeping
    t.add_argument("--eval-every", type=int, help="steps between validation passes")
    t.add_argument("--sample-every", type=int, help="steps between samples")
    t.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    t.add_argument("--seed", type=int, help="random seed")
    t.add_argument("--device", help="auto | cpu | cuda | mps")
    t.add_argument("--threads", type=int, help="torch threads (0 = torch default)")
    t.add_argument("--autocast", choices=["auto", "bf16", "none"],
                   help="bf16 autocast of the training forward (auto: where the hardware has native bf16)")
    t.add_argument("--vocab", choices=["corpus", "printable"], help="vocabulary: corpus characters or string.printable")
    t.add_argument("--unknown", choices=["error", "drop", "fold"], help="characters outside a printable vocabulary")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    g = sub.add_parser("generate", help="generate text from a checkpoint")
    g.add_argument("--checkpoint", default=None, help="run name, run directory or .safetensors file (default: latest)")
    g.add_argument("--prime", default="", help="text to start from (default: a new line)")
    g.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; <1 sharper, >1 flatter")
    g.add_argument("--length", type=int, default=500, help="characters to generate")
    g.add_argument("--top-k", type=int, default=None, help="sample only among the k likeliest")
    g.add_argument("--seed", type=int, default=None, help="random seed for repeatable text")
    g.add_argument("--unknown", choices=["error", "drop", "fold"], default="error",
                   help="prime characters the model lacks: refuse, drop or transliterate")

    i = sub.add_parser("info", help="describe a run or checkpoint")
    i.add_argument("run", help="run name, run directory or .safetensors file")
    sub.add_parser("runs", help="list runs, newest first")
    return p


MODEL_KEYS = ("hidden", "layers", "embed", "dropout", "cell")
TRAIN_KEYS = ("batch_size", "seq_len", "iterations", "minutes", "lr", "optimizer", "grad_clip", "warmup",
              "decay", "eval_every", "sample_every", "checkpoint_every", "seed", "device", "threads", "autocast",
              "vocab", "unknown")


def resolve_checkpoint(root: Path, spec: str | None) -> Path:
    """A run name, a path, or None (the latest checkpoint) -> a weights file."""
    if spec is None:
        latest = ck.latest_checkpoint(root)
        if latest is None:
            raise ck.CheckpointError(f"no checkpoints in {root}; train one first")
        return latest
    if Path(spec).exists():
        return ck.checkpoint_file(spec)
    return ck.checkpoint_file(ck.run_dir(root, spec))


def cmd_train(args, root: Path) -> int:
    distributed = init_distributed()
    try:
        return train_run(args, root)
    finally:
        if distributed:
            import torch.distributed as dist
            dist.destroy_process_group()


def train_run(args, root: Path) -> int:
    stop = stop_on_signals()  # before the slow set-up, so an early Stop still ends cleanly
    overrides_m = {k: getattr(args, k) for k in MODEL_KEYS}
    overrides_t = {k: getattr(args, k) for k in TRAIN_KEYS if getattr(args, k) is not None}
    if args.resume:
        run = Run.resume(ck.run_dir(root, args.resume), overrides_t, args.data)
    else:
        if args.data is None:
            raise ValueError("--data FILE is required (or --resume RUN)")
        vocab_size = 100 if preset_vocab_kind(args.preset, overrides_t) == "printable" else 1
        model_cfg, train_cfg = preset_configs(args.preset, vocab_size, overrides_m, overrides_t)
        name = args.name or shared_name(
            ck.safe_run_name(f"{args.data.stem}-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"))
        run = Run.create(ck.run_dir(root, name), args.data, model_cfg, train_cfg, data_name=args.data_name)
    if run.trainer.cfg.threads:
        import torch
        torch.set_num_threads(run.trainer.cfg.threads)
    if stop.is_set():
        print("stopped before training began", file=sys.stderr)
        return 0
    return report_training(run, stop, args.quiet or not is_writer())


def report_training(run: Run, stop, quiet: bool) -> int:
    from tqdm import tqdm

    t, cfg = run.trainer, run.trainer.cfg
    say = print if is_writer() else (lambda *a, **k: None)
    say(f"run {run.name}: {t.model.num_params():,} parameters, {len(t.corpus.vocab)} characters, "
          f"device {t.device}, directory {run.directory}", file=sys.stderr)
    total = cfg.iterations or None
    bar = tqdm(total=total, initial=t.step, unit="step", disable=quiet, dynamic_ncols=True)
    try:
        for rec in run.train(stop.is_set):
            bar.update(rec["step"] - bar.n)
            post = {"loss": f"{rec.get('train_loss', math.nan):.3f}", "chars/s": f"{rec['chars_per_s']:,.0f}"}
            if "val_loss" in rec:
                post["val"] = f"{rec['val_loss']:.3f}"
            bar.set_postfix(post)
            if "sample" in rec and not quiet:
                bar.write(f"--- step {rec['step']} sample ---\n{rec['sample']}\n")
    except TrainingDiverged as e:
        bar.close()
        print(f"error: training stopped: {e} (the last good checkpoint is kept)", file=sys.stderr)
        return 3
    bar.close()
    say(f"{rec['end']} at step {t.step}; validation loss {t.last_val:.4f} nats/char; "
          f"checkpoint {run.directory / ck.WEIGHTS}", file=sys.stderr)
    return 0


def cmd_generate(args, root: Path) -> int:
    path = resolve_checkpoint(root, args.checkpoint)
    model, vocab, _ = ck.load_checkpoint(path, device=pick_device("auto"))
    try:
        prime = vocab.clean(args.prime, args.unknown)
    except UnknownCharacterError as e:
        raise ValueError(f"prime: {e}; pass --unknown drop or --unknown fold to generate anyway") from None
    sys.stdout.write(prime)
    for ch in generate(model, vocab, prime, args.length, args.temperature, args.top_k, args.seed):
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_info(args, root: Path) -> int:
    path = resolve_checkpoint(root, args.run)
    header = ck.read_header(path)
    model, vocab, _ = ck.load_checkpoint(path)
    status = ck.read_status(path.parent)
    lines = [f"checkpoint: {path}", f"status:     {status.get('state')}",
             f"model:      {header['model_config']}", f"parameters: {model.num_params():,}",
             f"vocabulary: {len(vocab)} characters",
             f"data:       {header.get('data', {}).get('name')} ({header.get('data', {}).get('chars', 0):,} chars)",
             f"steps:      {header.get('step')}",
             f"best val:   {header.get('best_val_loss', math.nan):.4f} nats/char",
             f"train:      {header.get('train_config')}"]
    print("\n".join(lines))
    return 0


def cmd_runs(args, root: Path) -> int:
    for r in ck.list_runs(root):
        h = r["header"]
        print(f"{r['name']:40s} {r['status'].get('state', '?'):12s} step {h.get('step'):>7} "
              f"val {h.get('best_val_loss', math.nan):.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = args.checkpoints or default_root()
    commands = {"train": cmd_train, "generate": cmd_generate, "info": cmd_info, "runs": cmd_runs}
    try:
        return commands[args.command](args, root)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

