"""Corpus scale: loading and encoding a 100 MB text, and training memory as the corpus grows.

1. A 100 MB text (random 10,000-character slices of Tiny Shakespeare) is read and
   encoded the engine's way (charrnn.data.read_text, Vocab.from_text, Corpus.from_text)
   in a fresh subprocess, which reports the time and its resident memory: the peak
   (VmHWM) above the RSS before loading, minus the text's own size, per character.
2. The ``long`` preset trains a few steps on a 1 MB and on the 100 MB corpus, each in
   a fresh subprocess; RSS growth during training is compared (the corpus is already
   resident before the first step, so growth should not depend on its size).

    python -m bench.corpus_scale
    python -m bench.corpus_scale --mb 50 --steps 30
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine_line

TARGET_SECONDS = 5.0
TARGET_BYTES_PER_CHAR = 2.0
SLICE = 10_000


def write_corpus(path: Path, megabytes: float, source: str, seed: int = 0) -> None:
    """``megabytes`` of text made of random SLICE-character pieces of ``source``."""
    rng = random.Random(seed)
    target = int(megabytes * 1e6)
    with path.open("w", encoding="utf-8") as f:
        written = 0
        while written < target:
            start = rng.randrange(0, len(source) - SLICE)
            piece = source[start:start + min(SLICE, target - written)]
            f.write(piece)
            written += len(piece)


def rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (this measurement needs Linux)")


# --- run in a subprocess: python -m bench.corpus_scale --child load|train PATH ---------------
def child_load(path: str) -> dict:
    from charrnn.data import Corpus, read_text
    from charrnn.vocab import Vocab

    before = rss_kb()
    t0 = time.perf_counter()
    text = read_text(path)
    corpus = Corpus.from_text(text, Vocab.from_text(text))
    seconds = time.perf_counter() - t0
    text_bytes = sys.getsizeof(text)
    return {"seconds": seconds, "chars": len(text), "text_bytes": text_bytes,
            "peak_extra_bytes": rss_kb("VmHWM") * 1024 - before * 1024 - text_bytes,
            "held_extra_bytes": rss_kb() * 1024 - before * 1024 - text_bytes,
            "vocab": len(corpus.vocab)}


def child_train(path: str, steps: int) -> dict:
    import torch

    from charrnn.config import preset_configs
    from charrnn.data import read_text
    from charrnn.model import CharRNN
    from charrnn.runs.runner import build_corpus
    from charrnn.train import Trainer

    text = read_text(path)
    model_cfg, train_cfg = preset_configs("long", 1)
    corpus = build_corpus(text, train_cfg)
    del text
    model_cfg.vocab_size = len(corpus.vocab)
    torch.manual_seed(0)
    trainer = Trainer(CharRNN(model_cfg), corpus, train_cfg)
    trainer.train_step()               # allocator and optimizer state settle in the first step
    before = rss_kb()
    for _ in range(steps):
        trainer.train_step()
    return {"chars": len(corpus.train) + len(corpus.val), "rss_before_mb": before / 1024,
            "growth_mb": (rss_kb() - before) / 1024}


def in_subprocess(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.corpus_scale", "--child", *args], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the benchmark ------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=100.0, help="size of the large generated text, in MB")
    p.add_argument("--steps", type=int, default=20, help="training steps measured per corpus")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "tinyshakespeare.txt", help="source text")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        kind, path, *rest = args.child
        print(json.dumps(child_load(path) if kind == "load" else child_train(path, int(rest[0]))))
        return
    source = args.data.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small.txt", Path(tmp) / "large.txt"
        write_corpus(small, 1.0, source)
        write_corpus(large, args.mb, source)
        load = in_subprocess("load", str(large))
        train_small = in_subprocess("train", str(small), str(args.steps))
        train_large = in_subprocess("train", str(large), str(args.steps))

    per_char = load["peak_extra_bytes"] / load["chars"]
    print(f"# corpus scale: {load['chars'] / 1e6:.0f} MB generated text")
    print(machine_line())
    print(f"command: python {' '.join(['-m', 'bench.corpus_scale', *sys.argv[1:]])}\n")
    print(f"read_text + Vocab.from_text + Corpus.from_text: {load['seconds']:.2f} s "
          f"(target <= {TARGET_SECONDS:.0f} s: {'MET' if load['seconds'] <= TARGET_SECONDS else 'NOT MET'})")
    print(f"resident memory beyond the text ({load['text_bytes'] / 1e6:.0f} MB str): peak "
          f"{load['peak_extra_bytes'] / 1e6:.0f} MB = {per_char:.2f} bytes/char, held after loading "
          f"{load['held_extra_bytes'] / load['chars']:.2f} bytes/char "
          f"(target <= {TARGET_BYTES_PER_CHAR:.0f}: {'MET' if per_char <= TARGET_BYTES_PER_CHAR else 'NOT MET'})\n")
    print(f"{'corpus':<10}{'RSS before training':>22}{f'growth over {args.steps} steps':>24}")
    for name, r in (("1 MB", train_small), (f"{args.mb:.0f} MB", train_large)):
        print(f"{name:<10}{r['rss_before_mb']:>19.0f} MB{r['growth_mb']:>21.1f} MB")
    diff = train_large["growth_mb"] - train_small["growth_mb"]
    print(f"\ntraining memory growth, large minus small corpus: {diff:+.1f} MB "
          f"({'flat' if abs(diff) < 20 else 'NOT flat'}; the corpus itself is resident before training)")


if __name__ == "__main__":
    main()
