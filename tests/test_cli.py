"""The command line end to end: train on a small corpus, generate, describe; user errors are one line.

Every command runs as ``python -m charrnn`` in a subprocess. One run is trained per module; the
commands that only read it run side by side, so the module stays quick.
"""
import os
import string
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import charrnn
from charrnn.runs.store import RunDir, load_checkpoint, read_header

REPO = Path(charrnn.__file__).resolve().parent.parent
RUN = "tiny"
TRAIN = ["--preset", "seed", "--iterations", "60", "--quiet"]


def charrnn_cmd(cwd: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m charrnn --checkpoints root ARGS`` with bytes output (no newline translation)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CHARRNN_CHECKPOINTS": str(root)}
    return subprocess.run([sys.executable, "-m", "charrnn", "--checkpoints", str(root), *args],
                          cwd=cwd, env=env, capture_output=True, timeout=240)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, make_text):
    """A folder with a trained run under ./ck and some files that are not text."""
    work = tmp_path_factory.mktemp("cli")
    (work / "corpus.txt").write_text(make_text(), encoding="utf-8")
    (work / "empty.txt").write_bytes(b"")
    (work / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    (work / "corrupt.safetensors").write_bytes(b"\x20\x00\x00\x00\x00\x00\x00\x00{not json" + bytes(100))
    proc = charrnn_cmd(work, work / "ck", "train", "--data", "corpus.txt", "--name", RUN, *TRAIN)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return work


# name -> (command line, what the error line must say)
USER_ERRORS = {
    "missing file": (["train", "--data", "absent.txt", "--name", "x1"], "no such file"),
    "empty file": (["train", "--data", "empty.txt", "--name", "x2"], "empty"),
    "binary file": (["train", "--data", "image.png", "--name", "x3"], "binary"),
    "bad run name": (["train", "--data", "corpus.txt", "--name", "../escape"], "invalid run name"),
    "hidden 0": (["train", "--data", "corpus.txt", "--name", "x5", "--hidden", "0"], "hidden=0"),
    "negative lr": (["train", "--data", "corpus.txt", "--name", "x6", "--lr", "-1"], "lr=-1"),
    "corrupt checkpoint": (["generate", "--checkpoint", "corrupt.safetensors"], "corrupt.safetensors"),
    "unknown prime char": (["generate", "--checkpoint", RUN, "--prime", "Th€"], "'€'"),
    "negative length": (["generate", "--checkpoint", RUN, "--length", "-5"], "length"),
    "stop a finished run": (["stop", RUN], "is not training"),
    "stop an unknown run": (["stop", "nobody"], "is not training"),
    "bogus device": (["train", "--data", "corpus.txt", "--name", "x7", "--device", "bogus"], "device must be"),
    "negative threads": (["train", "--data", "corpus.txt", "--name", "x8", "--threads", "-1"], "threads=-1"),
    "folder as data": (["train", "--data", ".", "--name", "x9"], "is a folder"),
    **({} if torch.cuda.is_available() else
       {"cuda without a gpu": (["train", "--data", "corpus.txt", "--name", "x10", "--device", "cuda"], "no CUDA")}),
}

READS = {
    "generate": ["generate", "--checkpoint", RUN, "--prime", "Th", "--length", "80", "--seed", "1"],
    "generate zero": ["generate", "--checkpoint", RUN, "--prime", "Th", "--length", "0"],
    "generate no prime": ["generate", "--length", "25", "--temperature", "0"],
    "info": ["info", RUN],
}


@pytest.fixture(scope="module")
def results(workdir) -> dict[str, subprocess.CompletedProcess]:
    """Every read-only command and every user error, run side by side against the trained run."""
    commands = {**{k: v for k, (v, _) in USER_ERRORS.items()}, **READS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {k: pool.submit(charrnn_cmd, workdir, workdir / "ck", *argv) for k, argv in commands.items()}
        return {k: f.result() for k, f in futures.items()}


def stdout_of(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return proc.stdout.decode("utf-8")


# --- train ----------------------------------------------------------------------------------
def test_train_writes_a_complete_run(workdir):
    run = workdir / "ck" / RUN
    for name in (RunDir.WEIGHTS, RunDir.META, RunDir.METRICS, RunDir.STATUS, "loss.png", "train_state-60.pt"):
        assert (run / name).is_file(), name
    header = read_header(run)
    assert header["step"] == 60 and header["model_config"]["hidden"] == 128
    assert header["vocab"] == string.printable                      # the seed preset is the lecture's vocabulary
    assert RunDir(run).status()["state"] == "finished"


# --- generate -------------------------------------------------------------------------------
def test_generate_prints_the_prime_then_exactly_length_characters_and_a_newline(results):
    out = stdout_of(results["generate"])
    assert out.startswith("Th") and out.endswith("\n")
    assert len(out) == 2 + 80 + 1
    assert set(out) <= set(string.printable)


def test_generate_zero_length_prints_only_the_prime(results):
    assert stdout_of(results["generate zero"]) == "Th\n"


def test_generate_without_checkpoint_or_prime_uses_the_latest_run_and_default_start(results):
    assert len(stdout_of(results["generate no prime"])) == 25 + 1


# --- info ----------------------------------------------------------------------------
def test_info_prints_parameters_and_steps(workdir, results):
    out = stdout_of(results["info"])
    model, _, _ = load_checkpoint(workdir / "ck" / RUN)
    header = read_header(workdir / "ck" / RUN)
    assert f"parameters: {model.num_params():,}" in out
    assert f"kept:       step 60, validation loss {header['val_loss']:.4f} nats/char" in out
    assert "the best validation loss of the run" in out
    assert "latest:" not in out                                     # one evaluation, at the end: kept = latest
    assert "vocabulary: 100 characters" in out


def test_patience_ends_a_run_early_and_info_and_runs_show_the_kept_and_the_latest_step(tmp_path):
    import random

    rng = random.Random(0)                       # random letters: validation soon gets worse, whatever is learnt
    (tmp_path / "letters.txt").write_text("".join(rng.choice("abcdefgh \n") for _ in range(3000)), encoding="utf-8")
    root = tmp_path / "ck"
    proc = charrnn_cmd(tmp_path, root, "train", "--data", "letters.txt", "--name", "over", "--preset", "quick",
                       "--hidden", "128", "--embed", "16", "--batch-size", "8", "--seq-len", "32", "--lr", "0.01",
                       "--warmup", "0", "--iterations", "2000", "--eval-every", "10", "--eval-chars", "0",
                       "--patience", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    status = RunDir(root / "over").status()
    kept, latest = read_header(root / "over"), RunDir(root / "over").latest_header()
    vals = {r["step"]: r["val_loss"] for r in RunDir(root / "over").records() if "val_loss" in r}
    assert status["state"] == "finished" and latest["step"] == status["step"] < 2000
    assert kept["step"] == min(vals, key=vals.get) < latest["step"] and kept["val_loss"] == min(vals.values())
    reason = f"validation stopped improving at step {kept['step']:,}"
    assert status["reason"] == reason and reason in proc.stderr.decode()
    assert f"kept model: step {kept['step']}, validation loss {kept['val_loss']:.4f}" in proc.stderr.decode()

    info = stdout_of(charrnn_cmd(tmp_path, root, "info", "over"))
    assert f"status:     finished ({reason})" in info
    assert f"kept:       step {kept['step']}, validation loss {kept['val_loss']:.4f} nats/char" in info
    assert f"latest:     step {latest['step']} (latest.safetensors" in info
    runs = stdout_of(charrnn_cmd(tmp_path, root, "runs"))
    assert f"step {kept['step']:>7} val {kept['val_loss']:.3f} (latest step {latest['step']})" in runs
    latest_info = stdout_of(charrnn_cmd(tmp_path, root, "info", str(root / "over" / RunDir.LATEST)))
    assert f"this file:  step {latest['step']}" in latest_info and f"kept:       step {kept['step']}" in latest_info


# --- user errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_error_exits_nonzero_with_one_error_line_and_no_traceback(results, case):
    proc = results[case]
    stderr = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert USER_ERRORS[case][1] in lines[0]


def test_user_errors_leave_no_run_behind(workdir, results):
    assert sorted(p.name for p in (workdir / "ck").iterdir()) == [RUN]
    assert not (workdir / "escape").exists()


# --- stop ------------------------------------------------------------------------------------
def test_stop_ends_a_training_run_with_a_final_checkpoint(tmp_path, make_text):
    (tmp_path / "corpus.txt").write_text(make_text(), encoding="utf-8")
    root = tmp_path / "ck"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    trainer = subprocess.Popen([sys.executable, "-m", "charrnn", "--checkpoints", str(root), "train", "--data",
                                "corpus.txt", "--name", "long", "--preset", "quick", "--hidden", "16",
                                "--minutes", "5", "--quiet"], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: RunDir(root / "long").status().get("state") == "running" and RunDir(root / "long").records())
        proc = charrnn_cmd(tmp_path, root, "stop", "long")
        assert proc.returncode == 0, proc.stderr.decode()
        assert "stopping long" in proc.stderr.decode()
        assert trainer.wait(timeout=120) == 0
    finally:
        trainer.kill()
    status = RunDir(root / "long").status()
    assert status["state"] == "stopped"
    assert RunDir(root / "long").latest_header()["step"] == status["step"]
    assert read_header(root / "long")["step"] == status["best_step"] <= status["step"]


def wait_until(predicate, timeout: float = 120.0):
    """Bounds a hung test only; nothing asserts on speed."""
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_the_default_checkpoints_folder_is_the_projects_whatever_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CHARRNN_CHECKPOINTS"}
    proc = subprocess.run([sys.executable, "-m", "charrnn", "runs"], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "shakespeare" in proc.stdout                     # the bundled run, in the project's checkpoints/


# --- run files of the wrong shape -------------------------------------------------------------------
def test_runs_and_info_show_a_damaged_run_as_damaged_with_the_reason_and_never_a_traceback(tmp_path):
    from app_fixtures import corpus_text, make_checkpoint

    root = tmp_path / "ck"
    for name in ("good", "list-status", "huge-pid", "bad-meta", "bad-metrics"):
        make_checkpoint(root / name, corpus_text())
        RunDir(root / name).write_status("finished", step=10)
    (root / "list-status" / RunDir.STATUS).write_text("[1, 2, 3]", encoding="utf-8")
    (root / "huge-pid" / RunDir.STATUS).write_text('{"state": "running", "pid": 123456789012345678901}',
                                                   encoding="utf-8")
    (root / "bad-meta" / RunDir.META).write_text("null", encoding="utf-8")
    (root / "bad-metrics" / RunDir.METRICS).write_text('{"step": 10, "train_loss": 2.0}\n[1,2]\nnull\n{"step":"x"}\n',
                                                   encoding="utf-8")
    make_checkpoint(tmp_path / "outside", corpus_text())
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)

    runs = charrnn_cmd(tmp_path, root, "runs")
    assert runs.returncode == 0 and b"Traceback" not in runs.stderr, runs.stderr.decode()
    lines = {line.split()[0]: line for line in runs.stdout.decode().splitlines()}
    assert set(lines) == {"good", "list-status", "huge-pid", "bad-meta", "bad-metrics"}        # no symlinked run
    assert "damaged" not in lines["good"] and "damaged" not in lines["bad-metrics"]
    assert lines["list-status"].split()[1] == "damaged"
    assert lines["list-status"].endswith("damaged: status.json holds a list, not an object")
    assert "damaged: status.json: pid is 123456789012345678901, outside" in lines["huge-pid"]
    assert lines["bad-meta"].endswith("damaged: checkpoint.json holds null, not an object")

    info = charrnn_cmd(tmp_path, root, "info", "list-status")
    assert info.returncode == 0, info.stderr.decode()
    assert "status:     damaged (status.json holds a list, not an object)" in info.stdout.decode()
    info = charrnn_cmd(tmp_path, root, "info", "bad-metrics")
    assert "metrics:    1 records; 3 damaged lines skipped (line 2 holds a list, not an object)" in info.stdout.decode()
    text = charrnn_cmd(tmp_path, root, "generate", "--checkpoint", "list-status", "--prime", "the", "--length", "5")
    assert text.returncode == 0 and len(text.stdout.decode()) == 3 + 5 + 1     # its model still generates


def test_auto_fits_its_recipe_to_the_characters_of_the_file_not_its_bytes(tmp_path):
    """150,000 Cyrillic characters are 300,000 bytes: a small text for auto, as the app counts it (len(text))."""
    import random

    from charrnn.config import SMALL_MAX_EPOCHS, SMALL_TEXT, preset_configs

    rng = random.Random(0)
    text = "".join(rng.choice("абвгдежзийклмноп \n") for _ in range(150_000))
    assert len(text) < SMALL_TEXT <= len(text.encode("utf-8"))
    (tmp_path / "cyrillic.txt").write_text(text, encoding="utf-8")
    root = tmp_path / "ck"
    proc = charrnn_cmd(tmp_path, root, "train", "--data", "cyrillic.txt", "--name", "small", "--hidden", "16",
                       "--embed", "8", "--iterations", "2", "--eval-chars", "2000", "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    header = read_header(root / "small")
    small_model, _ = preset_configs("auto", 1, corpus_chars=len(text))
    assert header["model_config"]["dropout"] == small_model.dropout == 0.7
    assert header["train_config"]["max_epochs"] == SMALL_MAX_EPOCHS
