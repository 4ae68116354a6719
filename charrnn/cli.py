"""Command line: ``python -m charrnn train | generate | info | runs | stop | hub``.

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

from charrnn.config import (
    DEFAULT_PRESET,
    PRESETS,
    ModelConfig,
    TrainConfig,
    options,
    preset_configs,
)
from charrnn.data import CorpusError, read_text
from charrnn.finetune import BaseMismatch
from charrnn.runs import hub, startpoint
from charrnn.runs.jobs import JobError, stop_run
from charrnn.runs.runner import Run, stop_on_signals
from charrnn.runs.store import (
    RunDir,
    checkpoint_file,
    default_root,
    latest_checkpoint,
    list_runs,
    load_checkpoint,
    read_header,
    safe_run_name,
)
from charrnn.runs.weights import CheckpointError
from charrnn.sample import generate
from charrnn.train import TrainingDiverged, init_distributed, is_writer, pick_device, shared_name
from charrnn.vocab import UnknownCharacterError

USER_ERRORS = (BaseMismatch, CorpusError, CheckpointError, JobError, UnknownCharacterError, ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m charrnn", description="Character-level LSTM text generator.")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="folder of run directories (default: $CHARRNN_CHECKPOINTS, else the project's checkpoints/)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a text file")
    t.add_argument("--data", type=Path, help="UTF-8 text file to train on (optional with --resume)")
    t.add_argument("--data-name", help="corpus name recorded in the checkpoint (default: the file's name)")
    t.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                   help="recipe to start from (auto: fitted to the size of the text and the budget)")
    t.add_argument("--name", help="run name (default: <corpus>-<preset>-<time>)")
    t.add_argument("--resume", metavar="RUN", help="continue the stopped run RUN from its latest weights")
    t.add_argument("--init", metavar="RUN_OR_FILE", help="start from this trained model (a run name or a "
                   ".safetensors file): its shape and weights, its vocabulary extended with the text's new characters "
                   "(fine-tuning); "
                   "'none': from zero; 'auto' (the auto preset's default): the bundled English base where a probe on "
                   "the text's held-out part says it knows this kind of text, else zero")
    t.add_argument("--run", metavar="RUN", help="train the run whose configs are in RUN/run.json (how the app starts "
                   "and resumes a run): started when it has no checkpoint yet, else continued")
    # every field of the model and train configs is a flag; unset flags keep the preset's value
    for title, cls in (("model", ModelConfig), ("training", TrainConfig)):
        group = t.add_argument_group(title)
        for opt in options(cls):
            group.add_argument(opt.flag, dest=opt.name, type=opt.parse, choices=opt.choices, help=opt.help)
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    g = sub.add_parser("generate", help="generate text from a checkpoint")
    g.add_argument("--checkpoint", default=None,
                   help="run name (its kept model), run directory, .safetensors file, or hf:OWNER/NAME (a model on "
                   "the Hugging Face Hub, checked in full) (default: the newest run)")
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
    s = sub.add_parser("stop", help="stop a run that is training (it saves a final checkpoint first)")
    s.add_argument("run", help="run name")

    h = sub.add_parser("hub", help="share models on the Hugging Face Hub (token: HF_TOKEN or `hf auth login`)")
    hub_sub = h.add_subparsers(dest="hub_command", required=True)
    hp = hub_sub.add_parser("push", help="upload a run's kept model, header, loss plot and a model card")
    hp.add_argument("run", help="run name or run directory")
    hp.add_argument("repo_id", metavar="REPO_ID", help="model repository OWNER/NAME (made if new)")
    hp.add_argument("--private", action="store_true", help="make a new repository private")
    hl = hub_sub.add_parser("pull", help="download a model (checked in full) and add it as a new run")
    hl.add_argument("repo_id", metavar="REPO_ID", help="model repository OWNER/NAME")
    hl.add_argument("--name", help="run name (default: the repository's name, -2, -3, ... if taken)")
    hl.add_argument("--max-params", type=int, default=hub.MAX_PARAMS,
                    help=f"refuse a model of more parameters (default {hub.MAX_PARAMS:,})")
    return p


def resolve_checkpoint(root: Path, spec: str | None) -> Path:
    """A run name, a path, hf:OWNER/NAME (a model on the Hub) or None (the latest checkpoint) -> a weights file."""
    if spec is not None and spec.startswith(hub.HUB_PREFIX):
        return hub.cached_model(spec.removeprefix(hub.HUB_PREFIX))
    if spec is None:
        latest = latest_checkpoint(root)
        if latest is None:
            raise CheckpointError(f"no checkpoints in {root}; train one first")
        return latest
    if Path(spec).exists():
        return checkpoint_file(spec)
    return checkpoint_file(RunDir.of(root, spec).path)


def cmd_train(args, root: Path) -> int:
    distributed = init_distributed()
    try:
        code = train_run(args, root)
        if distributed:             # the writer may still be saving: no rank tears the group down before all are done
            import torch.distributed as dist
            dist.barrier()
        return code
    finally:
        if distributed:
            import torch.distributed as dist
            dist.destroy_process_group()


def train_run(args, root: Path) -> int:
    stop = stop_on_signals()  # before the slow set-up, so an early Stop still ends cleanly
    overrides_m = {o.name: getattr(args, o.name) for o in options(ModelConfig)}
    overrides_t = {o.name: getattr(args, o.name) for o in options(TrainConfig) if getattr(args, o.name) is not None}
    if args.run:
        run = Run.configured(RunDir.of(root, args.run), overrides_t)
    elif args.resume:
        run = Run.resume(RunDir.of(root, args.resume), overrides_t, args.data)
    else:
        if args.data is None:
            raise ValueError("--data FILE is required (or --resume RUN)")
        text = read_text(args.data) if args.data.is_file() else None       # read once: sized here, trained on below
        size = len(text) if text is not None else None                      # characters, as the app counts them
        model_cfg, train_cfg = preset_configs(args.preset, None, overrides_m, overrides_t, size)
        name = args.name or shared_name(
            safe_run_name(f"{args.data.stem}-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"))
        init = args.init or (startpoint.AUTO if args.preset == "auto" else None)
        if init not in (None, startpoint.AUTO, startpoint.NONE):
            init = resolve_checkpoint(root, init)
        asked = {k: v for k, v in overrides_m.items() if v is not None}
        run = Run.create(RunDir.of(root, name), args.data, model_cfg, train_cfg, data_name=args.data_name,
                         text=text, preset=args.preset, init=init, asked=asked)
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
    if run.start:
        where = f"from the base {run.start['base']}" if run.start["choice"] == "base" else "from zero"
        say(f"auto starts {where}" + (f": {run.start['why']}" if run.start.get("why") else ""), file=sys.stderr)
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
    why = f" ({rec['reason']})" if "reason" in rec else ""
    say(f"{rec['end']} at step {t.step}{why}; validation loss {t.last_val:.4f} nats/char; "
        f"kept model: {kept_line(rec.get('best_step'), rec.get('best_val_loss'))}, {run.directory / RunDir.WEIGHTS}",
        file=sys.stderr)
    return 0


def kept_line(step, val_loss) -> str:
    """'step S, validation loss V nats/char' of a kept model (V may be missing: not evaluated yet)."""
    if not (isinstance(val_loss, (int, float)) and math.isfinite(val_loss)):
        return f"step {step}, not evaluated yet"
    return f"step {step}, validation loss {val_loss:.4f} nats/char ({val_loss / math.log(2):.3f} bits/char)"


def cmd_generate(args, root: Path) -> int:
    path = resolve_checkpoint(root, args.checkpoint)
    model, vocab, _ = load_checkpoint(path, device=pick_device("auto"))
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
    header = read_header(path)
    model, vocab, _ = load_checkpoint(path)
    status = RunDir(path.parent).status()
    state = status["state"] + (f" ({status['reason']})" if status.get("reason") else "")
    lines = [f"checkpoint: {path}", f"status:     {state}", *metrics_lines(path.parent),
             f"model:      {header['model_config']}", f"parameters: {model.num_params():,}",
             f"vocabulary: {len(vocab)} characters",
             f"data:       {header.get('data', {}).get('name')} ({header.get('data', {}).get('chars', 0):,} chars)",
             *step_lines(path, header),
             f"train:      {header.get('train_config') or 'not recorded in this file'}"]
    print("\n".join(lines))
    return 0


def step_lines(path: Path, header: dict) -> list[str]:
    """The kept model's step and validation loss, and the latest weights' step where it differs."""
    if path.name == RunDir.LATEST:                       # asked about the latest weights themselves
        lines = [f"this file:  {kept_line(header.get('step'), header.get('val_loss'))} (the latest weights)"]
        if header.get("best_step") is not None:
            kept = kept_line(header["best_step"], header.get("best_val_loss"))
            lines.append(f"kept:       {kept} ({RunDir.WEIGHTS})")
        return lines
    best = ", the best validation loss of the run" \
        if header.get("best_step") == header.get("step") and header.get("val_loss") is not None else ""
    lines = [f"kept:       {kept_line(header.get('step'), header.get('val_loss'))}{best}"]
    latest = path.parent / RunDir.LATEST
    if latest.is_file():
        try:
            step = read_header(latest).get("step")
        except CheckpointError as e:
            return [*lines, f"latest:     damaged ({str(e).rsplit(': ', 1)[-1]})"]
        if step != header.get("step"):
            lines.append(f"latest:     step {step} ({RunDir.LATEST}: where a resume continues)")
    return lines


def metrics_lines(directory: Path) -> list[str]:
    """The run's metrics.jsonl in a line: how many records, and what is damaged (nothing when there is none)."""
    records, damaged, first = RunDir(directory).metrics_of()
    if not records and not damaged:
        return []
    skipped = f"; {damaged:,} damaged lines skipped ({first})" if damaged else ""
    return [f"metrics:    {len(records):,} records{skipped}"]


def cmd_runs(args, root: Path) -> int:
    for r in list_runs(root):
        h, latest = r["header"], r["latest"] or {}
        val = h.get("val_loss")
        val = f"{val:.3f}" if isinstance(val, (int, float)) else "-"
        more = f" (latest step {latest.get('step')})" if latest.get("step") not in (None, h.get("step")) else ""
        damaged = f"  damaged: {r['damaged']}" if r["damaged"] else ""
        print(f"{r['name']:40s} {r['status']['state']:12s} step {h.get('step', '-')!s:>7} val {val}{more}{damaged}")
    return 0


def cmd_stop(args, root: Path) -> int:
    job = stop_run(root, args.run)
    print(f"stopping {job.name} (pid {job.pid}): it finishes its step and saves a final checkpoint", file=sys.stderr)
    return 0


def cmd_hub(args, root: Path) -> int:
    if args.hub_command == "push":
        directory = Path(args.run) if Path(args.run).is_dir() else RunDir.of(root, args.run).path
        url = hub.push(directory, args.repo_id, args.private)
        print(f"pushed {directory.name} to {url}", file=sys.stderr)
        return 0
    run = hub.pull(args.repo_id, root, args.name, args.max_params)
    header = run.header()
    print(f"added {args.repo_id} as run {run.name} ({kept_line(header.get('step'), header.get('val_loss'))}); "
          f"generate with: python -m charrnn generate --checkpoint {run.name}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = args.checkpoints or default_root(os.environ)
    commands = {"train": cmd_train, "generate": cmd_generate, "info": cmd_info, "runs": cmd_runs, "stop": cmd_stop,
                "hub": cmd_hub}
    try:
        return commands[args.command](args, root)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

