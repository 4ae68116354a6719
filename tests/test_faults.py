"""Faults lose nothing: a killed trainer, a death mid-write, a full disk, a diverging loss."""
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from charrnn.config import preset_configs
from charrnn.runs import writes
from charrnn.runs.runner import Run
from charrnn.runs.store import RunDir, load_checkpoint, read_header
from charrnn.runs.writes import WriteFailed
from charrnn.sample import generate

TINY = ["--preset", "quick", "--hidden", "32", "--embed", "16", "--batch-size", "8", "--seq-len", "32",
        "--minutes", "0"]


def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"line {i % 13}: the quick brown fox\n" for i in range(600)), encoding="utf-8")
    return path


def charrnn(root, *args, **kw):
    return [sys.executable, "-m", "charrnn", "--checkpoints", str(root), *args]


def wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_loadable_checkpoint_and_the_run_resumes(tmp_path):
    root, data = tmp_path / "ck", corpus_file(tmp_path)
    cmd = charrnn(root, "train", "--data", str(data), "--name", "killed", *TINY, "--iterations", "100000",
                  "--checkpoint-every", "20", "--eval-every", "20", "--sample-every", "1000", "--quiet")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = root / "killed"
    try:
        assert wait_for(lambda: (run / RunDir.WEIGHTS).exists() and read_header(run)["step"] >= 40)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert RunDir(run).status()["state"] == "interrupted"
    model, vocab, header = load_checkpoint(run)
    assert len("".join(generate(model, vocab, "line", 50, 0.8, seed=0))) == 50

    step = header["step"]
    resumed = subprocess.run(charrnn(root, "train", "--resume", "killed", "--iterations", str(step + 20), "--quiet"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert read_header(run)["step"] == step + 20
    steps = [r["step"] for r in RunDir(run).records()]
    assert steps == sorted(set(steps)) and steps[-1] == step + 20      # metrics continue, no duplicates
    assert RunDir(run).status()["state"] == "finished"


def test_death_mid_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model_cfg, _ = preset_configs("quick", 10, {"hidden": 8, "embed": 4})
    from charrnn.model import CharRNN
    from charrnn.vocab import Vocab
    RunDir(run).keep(CharRNN(model_cfg), Vocab("abcdefghij"), {"step": 1})
    before = (run / RunDir.WEIGHTS).read_bytes()
    # a child process starts overwriting the checkpoint and dies (os._exit) halfway through
    child = f"""
import os, sys
sys.path.insert(0, {os.getcwd()!r})
from pathlib import Path
from charrnn.runs.writes import atomic_write
def half_then_die(tmp):
    Path(tmp).write_bytes(b"x" * 1000)
    os._exit(9)
atomic_write(Path({str(run / RunDir.WEIGHTS)!r}), half_then_die)
"""
    assert subprocess.run([sys.executable, "-c", child]).returncode == 9
    assert (run / RunDir.WEIGHTS).read_bytes() == before
    assert load_checkpoint(run)[2]["step"] == 1


def test_disk_full_during_a_save_fails_the_run_with_a_reason_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    root, data = tmp_path / "ck", corpus_file(tmp_path)
    model_cfg, train_cfg = preset_configs("quick", 1, {"hidden": 16, "embed": 8},
                                          {"batch_size": 4, "seq_len": 16, "iterations": 40, "minutes": 0,
                                           "checkpoint_every": 10, "eval_every": 10, "sample_every": 100})
    run = Run.create(root / "full", data, model_cfg, train_cfg)
    real_save = RunDir.keep

    def save_then_fill_disk(self, model, vocab, meta):
        if meta["step"] > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, model, vocab, meta)

    monkeypatch.setattr(RunDir, "keep", save_then_fill_disk)
    with pytest.raises(OSError, match="No space left"):
        for _ in run.train():
            pass
    status = RunDir(root / "full").status()
    assert status["state"] == "failed" and status["reason"].startswith("disk full: ")
    assert status["reason"].endswith(" free in full")
    assert load_checkpoint(root / "full")[2]["step"] == 10


def test_a_full_disk_mid_run_fails_it_saying_disk_full_with_no_half_file_and_no_running_status(tmp_path, monkeypatch):
    """The disk fills between two checkpoints: torch.save writes part of the optimizer state and raises its own
    RuntimeError, and no new file fits any more (not even a status.json): the run still ends 'failed', saying so."""
    root, data = tmp_path / "ck", corpus_file(tmp_path)
    model_cfg, train_cfg = preset_configs("quick", 1, {"hidden": 16, "embed": 8},
                                          {"batch_size": 4, "seq_len": 16, "iterations": 40, "minutes": 0,
                                           "checkpoint_every": 10, "eval_every": 10, "sample_every": 100})
    run = Run.create(root / "full", data, model_cfg, train_cfg)
    real_save, real_atomic = torch.save, writes.atomic_write
    full = []

    def save_until_full(obj, path, *args, **kwargs):
        if obj.get("step", 0) > 10:
            full.append(True)
            Path(path).write_bytes(b"x" * 598)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        return real_save(obj, path, *args, **kwargs)

    def new_file_unless_full(*args, **kwargs):
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_atomic(*args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    monkeypatch.setattr(writes, "atomic_write", new_file_unless_full)      # the final status cannot be a new file
    monkeypatch.setattr(writes, "free_bytes", lambda directory: 300 * 1024)
    with pytest.raises(WriteFailed, match="disk full"):
        for _ in run.train():
            pass
    status = RunDir(root / "full").status()
    assert status["state"] == "failed" and status["reason"] == "disk full: 300.0 KiB free in full"
    assert status["checkpoint_step"] == 10                              # what a resume would start from
    assert not list((root / "full").glob(".*.tmp")) and RunDir(root / "full").train_state_steps() == [10]
    assert load_checkpoint(root / "full")[2]["step"] == 10
    assert [json.loads(line) for line in (root / "full" / RunDir.METRICS).read_text().splitlines()]   # whole lines


def test_a_write_the_file_system_refuses_ends_the_trainer_with_one_error_line_and_a_failed_status(tmp_path):
    """A real refusal, not a simulated one: the trainer may write no file over 50 kB (RLIMIT_FSIZE), so torch.save
    of its first optimizer state (75 kB) fails with torch's own RuntimeError."""
    root, data = tmp_path / "ck", corpus_file(tmp_path)
    cmd = charrnn(root, "train", "--data", str(data), "--name", "capped", *TINY, "--iterations", "20",
                  "--checkpoint-every", "10", "--quiet")
    limit = 50_000
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: cannot write train_state-10.pt in capped: the write " \
                                                   "stopped short"
    status = RunDir(root / "capped").status()
    assert status["state"] == "failed" and status["reason"].startswith("cannot write train_state-10.pt in capped")
    assert not list((root / "capped").glob(".*.tmp")) and not list((root / "capped").glob("*.pt"))


def test_unwritable_checkpoints_folder_is_refused_before_training(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoints folder should be")
    proc = subprocess.run(charrnn(blocker, "train", "--data", str(corpus_file(tmp_path)), "--name", "x", *TINY,
                                  "--iterations", "5"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_exploding_loss_stops_the_run_with_the_reason_and_keeps_the_last_good_checkpoint(tmp_path):
    root, data = tmp_path / "ck", corpus_file(tmp_path)
    first = subprocess.run(charrnn(root, "train", "--data", str(data), "--name", "boom", *TINY, "--iterations", "20",
                                   "--quiet"), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    good = (root / "boom" / RunDir.WEIGHTS).read_bytes()
    # resume with an absurd learning rate and no clipping: the loss explodes
    boom = subprocess.run(charrnn(root, "train", "--resume", "boom", "--iterations", "400", "--lr", "1.0",
                                  "--grad-clip", "0", "--warmup", "0", "--checkpoint-every", "1000", "--quiet"),
                          capture_output=True, text=True, timeout=300)
    assert boom.returncode == 3, boom.stderr
    assert "loss" in boom.stderr and "Traceback" not in boom.stderr
    status = json.loads((root / "boom" / RunDir.STATUS).read_text())
    assert status["state"] == "failed" and ("exploded" in status["reason"] or "loss became" in status["reason"])
    assert (root / "boom" / RunDir.WEIGHTS).read_bytes() == good
