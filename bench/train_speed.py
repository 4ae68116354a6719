"""Training throughput: our fused training step vs. the lecture's per-character loop, same run.

Both train the lecture's model size (string.printable vocabulary of 100,
embedding 100, one LSTM layer of 128) on Tiny Shakespeare:

* lecture: one random 200-character portion per step, one nn.LSTMCell call per
  character from a fresh zero state, the loss summed over the characters
  (reported divided by chunk_len), Adam lr 0.005;
* ours: charrnn's Trainer.train_step (one fused nn.LSTM call over a (B, T) batch)
  as the ``auto`` preset (what the app and the CLI train by default) trains: its
  batch and sequence length, the state carried from step to step, no dropout (the
  lecture's model has none).

It also measures this machine's float32 matmul rate with a large torch.mm and
reports the fraction of it that training the ``auto`` preset's own model reaches.
FLOPs per character = 6 x (matmul weights touched per character)
  = 6 x (sum over layers of 4H(in + H)  +  H V)      [the embedding is a lookup, not a matmul]
(2 FLOPs per multiply-add, forward once, backward twice: gradients of inputs and of weights).

    python -m bench.train_speed
    python -m bench.train_speed --seconds 10
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from bench.common import ROOT, add_threads_flag, apply_threads, machine_line
from charrnn.config import ModelConfig, preset_configs
from charrnn.data import read_text
from charrnn.model import CharRNN
from charrnn.runs.runner import build_corpus
from charrnn.train import Trainer
from charrnn.vocab import Vocab

TARGET_RATIO = 40.0
LECTURE = dict(embed=100, hidden=128, layers=1, dropout=0.0, input_dropout=0.0)
PRESET = "auto"             # the preset the app and the CLI train by default
CHUNK_LEN = 200


# --- the lecture's training loop ---------------------------------------------------------
class LectureRNN(nn.Module):
    """The lecture's model: embedding -> nn.LSTMCell -> linear, called once per character."""

    def __init__(self, vocab_size: int, embed: int, hidden: int):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, embed)
        self.cell = nn.LSTMCell(embed, hidden)
        self.decoder = nn.Linear(hidden, vocab_size)
        self.hidden_size = hidden

    def forward(self, inp, hidden):
        h, c = self.cell(self.encoder(inp.view(1, -1)).view(1, -1), hidden)
        return self.decoder(h), (h, c)

    def init_hidden(self):
        return torch.zeros(1, self.hidden_size), torch.zeros(1, self.hidden_size)


def lecture_step(text: str, chars: str):
    """One training step of the lecture's loop (a random portion), as a function returning its loss."""
    decoder = LectureRNN(len(chars), LECTURE["embed"], LECTURE["hidden"])
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.005)
    criterion = nn.CrossEntropyLoss()
    index = {c: i for i, c in enumerate(chars)}

    def char_tensor(s: str) -> torch.Tensor:
        return torch.tensor([index[c] for c in s], dtype=torch.long)

    def train(inp, target) -> float:
        hidden = decoder.init_hidden()
        decoder.zero_grad()
        loss = 0
        for c in range(CHUNK_LEN):
            output, hidden = decoder(inp[c], hidden)
            loss += criterion(output, target[c].unsqueeze(0))
        loss.backward()
        optimizer.step()
        return loss.item() / CHUNK_LEN

    def step() -> float:
        start = random.randint(0, len(text) - CHUNK_LEN - 1)
        chunk = char_tensor(text[start:start + CHUNK_LEN + 1])
        return train(chunk[:-1], chunk[1:])

    return step


# --- ours ---------------------------------------------------------------------------------
def trainer_for(text: str, model_kw: dict, train_kw: dict) -> Trainer:
    model_cfg, train_cfg = preset_configs(PRESET, 100, model_kw,
                                          {**train_kw, "vocab": "printable", "unknown": "fold"})
    torch.manual_seed(0)
    return Trainer(CharRNN(model_cfg), build_corpus(text, train_cfg), train_cfg)


def best_of_rounds(steps: dict, chars_per_step: dict, seconds: float, rounds: int) -> dict:
    """Characters per second of each step function, alternating in ``rounds`` and keeping each one's best.

    Alternating makes the ratio robust to other load on the machine coming and going.
    """
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            rate, _ = timed(step, seconds / rounds, chars_per_step[name])
            best[name] = max(best[name], rate)
    return best


def timed(step, seconds: float, chars_per_step: int) -> tuple[float, float]:
    """Characters per second of step() over ``seconds`` after a short warm-up; and the last loss."""
    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        loss = step()
        n += 1
    return n * chars_per_step / (time.perf_counter() - t0), loss


def flops_per_char(cfg: ModelConfig) -> int:
    """6 x matmul weights per character: 4H(in + H) per LSTM layer plus the H x V head."""
    weights = sum(4 * cfg.hidden * ((cfg.embed if k == 0 else cfg.hidden) + cfg.hidden) for k in range(cfg.layers))
    return 6 * (weights + cfg.hidden * cfg.vocab_size)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=9.0, help="timed seconds per path, split over the rounds")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; each path's best round counts")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "tinyshakespeare.txt", help="corpus")
    add_threads_flag(p)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    apply_threads(args.threads)
    random.seed(0)
    text = read_text(args.data)
    chars = "".join(Vocab.printable().chars)

    ours_trainer, preset_trainer = trainer_for(text, LECTURE, {}), trainer_for(text, {}, {})
    # the presets train under bf16 autocast where the CPU has native bf16 ("auto"); float32 for comparison
    patched = trainer_for(text, LECTURE, {"autocast": "none"})
    preset_patched = trainer_for(text, {}, {"autocast": "none"})
    cfg, pcfg = ours_trainer.cfg, preset_trainer.cfg
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    steps = {"lecture": lecture_step(text, chars), "ours": ours_trainer.train_step, "patched": patched.train_step,
             "preset": preset_trainer.train_step, "preset_patched": preset_patched.train_step,
             "mm": lambda: (a @ b, 0.0)[1]}
    sizes = {"lecture": CHUNK_LEN, "ours": cfg.batch_size * cfg.seq_len, "patched": cfg.batch_size * cfg.seq_len,
             "preset": pcfg.batch_size * pcfg.seq_len, "preset_patched": pcfg.batch_size * pcfg.seq_len,
             "mm": 2 * 2048 ** 3}
    rates = best_of_rounds(steps, sizes, args.seconds, args.rounds)
    lecture, ours, preset_rate, peak = rates["lecture"], rates["ours"], rates["preset"], rates["mm"]
    fpc = flops_per_char(preset_trainer.model.config)

    print(f"# training throughput, lecture model size (V100 E100 H128 L1), {torch.get_num_threads()} threads")
    print(machine_line())
    print(f"command: python {' '.join(['-m', 'bench.train_speed', *sys.argv[1:]])}\n")
    print(f"{'path':<66}{'chars/s':>10}{'ratio':>8}")
    print(f"{'lecture loop (LSTMCell per char, batch 1 x 200, Adam)':<66}{lecture:>10,.0f}{'1.0x':>8}")
    mode = "bf16 autocast" if ours_trainer.bf16 else "float32"
    carried = " carried" if cfg.carry_state else ""
    label = f"ours: Trainer.train_step, batch {cfg.batch_size} x seq {cfg.seq_len}{carried}, {mode}"
    print(f"{label:<66}{ours:>10,.0f}"
          f"{ours / lecture:>7.1f}x")
    print(f"{'ours forced to float32 (autocast none)':<66}{rates['patched']:>10,.0f}"
          f"{rates['patched'] / lecture:>7.1f}x")
    verdict = "MET" if ours / lecture >= TARGET_RATIO else "NOT MET"
    print(f"target >= {TARGET_RATIO:.0f}x: {ours / lecture:.1f}x {verdict} "
          f"({rates['patched'] / lecture:.1f}x in float32)\n")
    m = preset_trainer.model.config
    print(f"{PRESET} preset model (E{m.embed} H{m.hidden} L{m.layers} V100, batch {pcfg.batch_size} x seq "
          f"{pcfg.seq_len}, {mode}): {preset_rate:,.0f} chars/s; float32 {rates['preset_patched']:,.0f} chars/s "
          f"({preset_rate / rates['preset_patched']:.2f}x: {why_precision(preset_trainer.precision)})")
    print(f"FLOPs/char = 6 x (sum_layers 4H(in+H) + H V) = {fpc:,} -> {preset_rate * fpc / 1e9:.1f} GFLOP/s")
    print(f"float32 torch.mm 2048^3 on this machine: {peak / 1e9:.1f} GFLOP/s -> training reaches "
          f"{preset_rate * fpc / peak:.0%} of it")


def why_precision(precision: dict) -> str:
    """What the preset's autocast 'auto' chose and why, as the run's first record says it."""
    if "bf16" in precision.get("unavailable", {}):
        return "bf16 does not run on this CPU, auto trains in float32"
    return f"auto chose {precision.get('choice')} from {precision.get('rates')}"


if __name__ == "__main__":
    main()
