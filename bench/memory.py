"""Training memory: the estimate the app refuses runs by (charrnn.runs.memory) vs the measured peak, per config.

Each config trains 3 steps in its own process on random text; the peak is that process's resident
high-water mark (VmHWM). The estimate must bound every peak (ratio >= 1) without being loose (<= 1.5).

    python -m bench.memory
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys

from bench.common import ROOT, machine_line

# (hidden, layers, batch, seq_len, vocab, embed)
CONFIGS = [(256, 1, 16, 64, 65, 64), (256, 1, 256, 64, 65, 64), (512, 1, 256, 64, 65, 64),
           (512, 2, 256, 128, 65, 64), (1024, 1, 512, 64, 65, 64), (128, 1, 1024, 256, 100, 64)]


def vm_hwm() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def child(hidden: int, layers: int, batch: int, seq_len: int, vocab_size: int, embed: int) -> dict:
    """Train 3 float32 steps of this config; return the estimate and the measured peak (bytes)."""
    import torch

    from charrnn.config import ModelConfig, TrainConfig
    from charrnn.data import Corpus
    from charrnn.model import CharRNN
    from charrnn.runs.memory import estimate_peak_bytes
    from charrnn.train import Trainer
    from charrnn.vocab import Vocab

    rng = random.Random(0)
    alphabet = "".join(chr(33 + i) for i in range(vocab_size))
    text = "".join(rng.choice(alphabet) for _ in range(max(200_000, batch * (seq_len + 1) * 3)))
    vocab = Vocab.from_text(text)
    model_cfg = ModelConfig(vocab_size=len(vocab), embed=embed, hidden=hidden, layers=layers)
    train_cfg = TrainConfig(batch_size=batch, seq_len=seq_len, iterations=3, eval_every=10**6, sample_every=10**6,
                            log_every=1, eval_chars=1000)
    torch.manual_seed(0)
    trainer = Trainer(CharRNN(model_cfg), Corpus.from_text(text, vocab, 0.1), train_cfg)
    list(trainer.fit())
    return {"estimate": estimate_peak_bytes(model_cfg, train_cfg, len(text)), "peak": vm_hwm()}


def measure(config: tuple) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", *map(str, config)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=6, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    print("# training memory: estimate vs measured peak")
    print(machine_line())
    print("command: python -m bench.memory\n")
    print(f"{'H':>5}{'L':>3}{'B':>6}{'T':>5}{'V':>5}{'chars/batch':>12}{'measured MB':>13}{'estimate MB':>13}"
          f"{'ratio':>7}")
    ratios = []
    for config in CONFIGS:
        r = measure(config)
        ratios.append(r["estimate"] / r["peak"])
        h, layers, b, t, v, _ = config
        print(f"{h:>5}{layers:>3}{b:>6}{t:>5}{v:>5}{b * t:>12,}{r['peak'] / 2**20:>13,.0f}"
              f"{r['estimate'] / 2**20:>13,.0f}{ratios[-1]:>7.2f}")
    ok = min(ratios) >= 1 and max(ratios) <= 1.5
    print(f"\nestimate / peak from {min(ratios):.2f} to {max(ratios):.2f} (target 1.0 to 1.5: "
          f"{'MET' if ok else 'NOT MET'})")


if __name__ == "__main__":
    main()
