"""Generation speed: our streaming sampler vs. the lecture's evaluate() loop, same weights, same run.

Single stream, batch 1, characters per second, on the lecture-size model
(string.printable vocabulary of 100, embedding 100, one LSTM layer of 128) and
on the ``long`` preset's model size. Weights are random: speed does not depend on them.

    python -m bench.generate_speed
    python -m bench.generate_speed --chars 20000 --repeats 5
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn as nn

from bench.common import add_threads_flag, apply_threads, machine_line
from charrnn.config import ModelConfig, preset_configs
from charrnn.model import CharRNN
from charrnn.sample import generate
from charrnn.vocab import Vocab

TARGET_CHARS_PER_S = 50_000
TARGET_RATIO = 5.0


# --- the lecture's model and evaluate() -------------------------------------------------
class LectureRNN(nn.Module):
    """The lecture's decoder: embedding -> nn.LSTMCell -> linear, one character per call."""

    def __init__(self, model: CharRNN):
        super().__init__()
        cfg = model.config
        self.encoder = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.cell = nn.LSTMCell(cfg.embed, cfg.hidden)
        self.decoder = nn.Linear(cfg.hidden, cfg.vocab_size)
        with torch.no_grad():  # the same weights as ours: nn.LSTM layer 0 is an nn.LSTMCell
            self.encoder.weight.copy_(model.embed.weight)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.cell, name).copy_(getattr(model.rnn, name + "_l0"))
            self.decoder.load_state_dict(model.head.state_dict())
        self.hidden_size = cfg.hidden

    def forward(self, inp, hidden):
        h, c = self.cell(self.encoder(inp.view(1, -1)).view(1, -1), hidden)
        return self.decoder(h), (h, c)

    def init_hidden(self):
        return torch.zeros(1, self.hidden_size), torch.zeros(1, self.hidden_size)


def char_tensor(s: str, chars: str) -> torch.Tensor:
    return torch.tensor([chars.index(c) for c in s], dtype=torch.long)


def lecture_evaluate(decoder: LectureRNN, chars: str, prime_str: str = "A", predict_len: int = 100,
                     temperature: float = 0.8) -> str:
    """The lecture's sampling loop, as written there (a tensor per character); the caller runs it under
    ``torch.no_grad()``, as the lecture's notebook does."""
    hidden = decoder.init_hidden()
    prime_input = char_tensor(prime_str, chars)
    predicted = prime_str
    for p in range(len(prime_str) - 1):
        _, hidden = decoder(prime_input[p], hidden)
    inp = prime_input[-1]
    for _ in range(predict_len):
        output, hidden = decoder(inp, hidden)
        output_dist = output.data.view(-1).div(temperature).exp()
        top_i = torch.multinomial(output_dist, 1)[0]
        predicted_char = chars[top_i]
        predicted += predicted_char
        inp = char_tensor(predicted_char, chars)
    return predicted


# --- timing ------------------------------------------------------------------------------
def best_rate(fn, chars: int, repeats: int) -> float:
    """Characters per second of the fastest of ``repeats`` runs of fn() (which makes ``chars`` characters)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return chars / best


def measure(model: CharRNN, vocab: Vocab, chars: int, repeats: int, lecture: bool) -> dict:
    model.eval()
    ours = best_rate(lambda: "".join(generate(model, vocab, "Th", chars, 0.8, seed=0)), chars, repeats)
    row = {"ours": ours}
    if lecture:
        decoder = LectureRNN(model)
        n = max(chars // 5, 1000)  # the lecture loop is slow; fewer characters suffice
        with torch.no_grad():                       # the lecture calls evaluate() under no_grad
            row["lecture"] = best_rate(lambda: lecture_evaluate(decoder, "".join(vocab.chars), "Th", n, 0.8), n,
                                       repeats)
    return row


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chars", type=int, default=20_000, help="characters per timed run of our sampler")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the fastest counts")
    add_threads_flag(p)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    apply_threads(args.threads)
    vocab = Vocab.printable()
    torch.manual_seed(0)
    lecture_size = CharRNN(ModelConfig(vocab_size=len(vocab), embed=100, hidden=128, layers=1))
    default_cfg, _ = preset_configs("long", len(vocab))
    default_size = CharRNN(default_cfg)
    small = measure(lecture_size, vocab, args.chars, args.repeats, lecture=True)
    big = measure(default_size, vocab, args.chars, args.repeats, lecture=default_cfg.layers == 1)

    print(f"# generation speed, batch 1, {torch.get_num_threads()} torch threads")
    print(machine_line())
    print(f"command: python {' '.join(['-m', 'bench.generate_speed', *sys.argv[1:]])}\n")
    print(f"{'model':<34}{'ours chars/s':>14}{'lecture chars/s':>17}{'ratio':>8}")
    for name, row in (("lecture size (E100 H128 L1 V100)", small),
                      (f"default (E{default_cfg.embed} H{default_cfg.hidden} L{default_cfg.layers})", big)):
        lec, ours = row.get("lecture"), row["ours"]
        lec_text, ratio = (f"{lec:,.0f}", f"{ours / lec:.1f}x") if lec else ("-", "-")
        print(f"{name:<34}{ours:>14,.0f}{lec_text:>17}{ratio:>8}")
    ok_rate = small["ours"] >= TARGET_CHARS_PER_S
    ok_ratio = small["ours"] / small["lecture"] >= TARGET_RATIO
    print(f"\ntarget >= {TARGET_CHARS_PER_S:,} chars/s on the lecture size: {small['ours']:,.0f} "
          f"{'MET' if ok_rate else 'NOT MET'}")
    print(f"target >= {TARGET_RATIO:.0f}x the lecture loop: {small['ours'] / small['lecture']:.1f}x "
          f"{'MET' if ok_ratio else 'NOT MET'}")


if __name__ == "__main__":
    main()
