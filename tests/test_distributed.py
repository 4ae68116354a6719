"""The trainer under torchrun: 2 CPU ranks with gloo, one run directory, falling loss."""
import json
import os
import subprocess
import sys

import pytest

from charrnn.runs.store import RunDir, load_checkpoint


def patterned_text(n_lines: int = 400) -> str:
    words = ["the cat sat", "on the mat", "a dog ran", "to the sun"]
    return "\n".join(f"{words[i % 4]} {i % 7}" for i in range(n_lines)) + "\n"


@pytest.mark.slow
def test_two_gloo_ranks_write_one_complete_run_and_loss_falls(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(patterned_text(), encoding="utf-8")
    root = tmp_path / "ck"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "charrnn", "--checkpoints", str(root), "train", "--data", str(corpus), "--name", "ddp",
           "--preset", "quick", "--hidden", "32", "--embed", "16", "--batch-size", "8", "--seq-len", "32",
           "--iterations", "120", "--minutes", "0", "--eval-every", "60", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]

    run = root / "ddp"
    for name in ("model.safetensors", "checkpoint.json", "metrics.jsonl", "loss.png", "loss.pdf",
                 "status.json", "train_state-120.pt"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in root.iterdir()) == ["ddp"]      # rank 1 wrote no run of its own
    records = RunDir(run).records()
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps))                             # one writer: no duplicated records
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses[-1] < losses[0] - 0.5
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    model, vocab, header = load_checkpoint(run)
    assert header["step"] == 120
    assert header["val_loss"] < 3.0
