"""A public Space that one visitor cannot break: run files of the wrong shape, a trainer killed by the system,
a resume right after a run finished, a symlinked run folder, a visitor's time cap.

Each case goes through a launched app as a visitor reaches it (gradio_client), plus ``poll``, the function
every visitor's timer runs on the app's own context (it is a private event, so no client can name it).
A refusal must reach the client as the app's own message, never Gradio's generic one.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from app_fixtures import TINY_TRAINING, corpus_text, kill_trainers, last_step, launched, make_checkpoint, wait_for
from gradio_client import Client
from gradio_client.exceptions import AppError

from charrnn.runs.store import RunDir, read_header
from charrnn.runs.weights import CheckpointError
from webui.demo import poll
from webui.train.tab import TRAIN_VIEW

pytestmark = pytest.mark.slow

GENERIC = "has not enabled verbose error reporting"  # Gradio's text for an exception the app let through
START_FIELDS = ("password", "source", "bundled_name", "upload", "pasted", "preset", "hidden", "layers", "seq_len",
                "batch_size", "lr", "iterations", "minutes", "run_name", "key", "patience",
                "start_from")
BAD_STATUS = {"a list": "[1,2,3]", "a string": '"finished"', "null": "null",
              "a 20-digit pid": '{"state": "running", "pid": 123456789012345678901}'}
BAD_LINES = {"a list": "[1,2]", "null": "null", "a text step": '{"step":"x"}',
             "a text loss": '{"step":999,"val_loss":"x"}'}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "checkpoints"
    root.mkdir(parents=True)
    with launched(root) as served:
        yield served


@pytest.fixture(scope="module")
def client(served):
    client = Client(served.url, verbose=False, analytics_enabled=False)
    yield client
    client.close()


@pytest.fixture
def root(served):
    """The served checkpoints folder, emptied of runs after each test (their trainers killed)."""
    yield served.root
    kill_trainers(served.root, served.ctx.jobs)
    for d in served.root.iterdir():
        if d.is_symlink():
            d.unlink()


def start_args(run: str, **changes) -> list:
    values = dict(password=None, source="paste", bundled_name=None, upload=None, pasted=corpus_text(),
                  **TINY_TRAINING, run_name=run, key=None, patience=None, start_from=None)
    return [{**values, **changes}[k] for k in START_FIELDS]


def refusal(call) -> str:
    with pytest.raises(AppError) as info:
        call()
    assert GENERIC not in str(info.value), "an unexpected exception reached the client instead of a message"
    return str(info.value)


def resumable(root, name: str, step: int = 40) -> None:
    """A stopped run whose checkpoint, optimizer state and corpus are all there."""
    data = root / name / "corpus.txt"
    make_checkpoint(root / name, corpus_text(), step=step, data={"name": "corpus.txt", "path": str(data)},
                    train_config={"iterations": step + 1000, "minutes": 0.0})
    data.write_text(corpus_text(), encoding="utf-8")
    RunDir(root / name).save_train_state(step, {})
    RunDir(root / name).write_status("stopped", step=step)


def checkpoint_step(root, run: str) -> int:
    """The step of the run's latest weights (where a resume starts), 0 before its first checkpoint."""
    try:
        return RunDir(root / run).latest_header()["step"]
    except CheckpointError:
        return 0


def slug(kind: str) -> str:
    return kind.replace(" ", "-")


def status_file(root, run: str) -> str:
    return RunDir(root / run).status()["state"]


def follow(served, run: str) -> tuple:
    """The poll of a visitor whose page follows ``run``."""
    return poll(served.ctx, {"run": run}, None, None)


# --- run files of the wrong shape ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(BAD_STATUS))
def test_a_status_file_of_the_wrong_shape_marks_its_run_damaged_and_the_train_tab_keeps_working(served, client, root,
                                                                                              kind):
    bad, good = f"bad-{slug(kind)}", f"good-{slug(kind)}"
    resumable(root, bad)
    resumable(root, good)
    (root / bad / RunDir.STATUS).write_text(BAD_STATUS[kind], encoding="utf-8")

    view = poll(served.ctx, {}, None, None)                           # every visitor's refresh
    assert {bad, good} <= {key for _, key in view["checkpoint"]["choices"]}
    resumable_choices = view["resume_run"]["choices"]
    assert good in resumable_choices and bad not in resumable_choices  # resume offers the sound run only
    assert follow(served, bad)["status_md"].startswith(f"**Damaged**: {bad}: status.json")
    assert "cannot be resumed here: status.json" in refusal(
        lambda: client.predict(None, bad, 10, 0, api_name="/resume_training"))
    assert f"Resumed **{good}**" in client.predict(None, good, 10, 0, api_name="/resume_training")
    served.ctx.jobs.proc.wait(timeout=120)                            # (its optimizer state is a stand-in)
    assert "Started run **fresh" in client.predict(*start_args(f"fresh-{slug(kind)}", iterations=30, minutes=0),
                                                   api_name="/start_training")
    text = client.predict(bad, "the ", 0.8, 20, 0, 1, api_name="/generate")       # its model still generates
    assert text.startswith("the ") and len(text) == 24


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_a_metrics_line_of_the_wrong_shape_is_skipped_and_said_while_the_run_is_drawn(served, root, kind):
    run = f"lines-{slug(kind)}"
    make_checkpoint(root / run, corpus_text())
    RunDir(root / run).write_status("stopped", step=20)
    for step in (10, 20):
        RunDir(root / run).append_metrics({"step": step, "train_loss": 2.0, "chars_per_s": 100.0, "elapsed": 1.0,
                                       "sample": f"sample at {step}"})
    with open(root / run / RunDir.METRICS, "a", encoding="utf-8") as f:
        f.write(BAD_LINES[kind] + "\n")
    RunDir(root / run).append_metrics({"step": 30, "train_loss": 1.5, "chars_per_s": 100.0, "elapsed": 2.0,
                                   "sample": "sample at 30"})
    plot, sample, earlier, progress, status = [follow(served, run)[k] for k in TRAIN_VIEW]
    assert list(plot[plot.split == "train"].step) == [10, 20, 30]
    assert sample["value"] == "sample at 30" and "step **30**" in progress
    assert status.startswith(f"**Stopped**: {run} at step 20")
    assert "⚠️ metrics.jsonl: 1 damaged line skipped (line 3" in status


# --- a killed trainer, a resume right after the end ---------------------------------------------------------
def test_a_trainer_killed_by_the_system_is_shown_at_its_last_checkpoints_step_and_resumable(served, client, root):
    assert "Started run **killed**" in client.predict(*start_args("killed"), api_name="/start_training")
    saved = wait_for(lambda: checkpoint_step(root, "killed"), what="the first checkpoint")
    wait_for(lambda: last_step(root, "killed") > saved, what="steps past the checkpoint")
    os.killpg(served.ctx.jobs.proc.pid, signal.SIGKILL)               # as the out-of-memory killer does
    served.ctx.jobs.proc.wait(timeout=30)
    checkpoint = checkpoint_step(root, "killed")
    status = follow(served, "killed")["status_md"]
    assert status.startswith(f"**Interrupted**: killed at step {checkpoint:,} (killed by the system (SIGKILL)")
    assert f"Resume it below from its last checkpoint (step {checkpoint:,})." in status
    assert "killed" in poll(served.ctx, {}, None, None)["resume_run"]["choices"]
    assert f"from step {checkpoint:,}" in client.predict(None, "killed", 20, 0, api_name="/resume_training")


def test_a_run_killed_before_its_first_checkpoint_offers_no_resume(served, client, root):
    (root / "no-checkpoint").mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    RunDir(root / "no-checkpoint").write_status("running", pid=dead.pid, step=0)
    status = follow(served, "no-checkpoint")["status_md"]
    assert status.startswith("**Interrupted**: no-checkpoint (the training process is gone")
    assert "No checkpoint was saved, so there is nothing to resume: start it again." in status
    assert "no-checkpoint" not in poll(served.ctx, {}, None, None)["resume_run"]["choices"]
    assert "No resumable run" in refusal(lambda: client.predict(None, "no-checkpoint", 10, 0,
                                                                api_name="/resume_training"))


def test_resume_right_after_a_run_finished_is_accepted_every_time(served, client, root):
    """The trainer writes 'finished' and then takes a moment to exit: Resume in that moment is no 'in progress'."""
    assert "Started run **again**" in client.predict(*start_args("again", iterations=30, minutes=0),
                                                     api_name="/start_training")
    for target in (30, 60, 90):
        wait_for(lambda target=target: RunDir(root / "again").status() == {**RunDir(root / "again").status(),
                                                                           "state": "finished", "step": target},
                 what=f"the run to finish at step {target}", interval=0.01)
        message = client.predict(None, "again", 30, 0, api_name="/resume_training")    # at once
        assert f"Resumed **again** (pid {served.ctx.jobs.proc.pid}) from step {target}" in message


# --- folders and caps -------------------------------------------------------------------------------------------
def test_a_symlinked_run_folder_is_not_listed(served, root, tmp_path):
    make_checkpoint(tmp_path / "elsewhere", corpus_text())
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    view = poll(served.ctx, {}, None, None)
    assert "linked" not in {key for _, key in view["checkpoint"]["choices"]}
    assert "linked" not in {key for _, key in view["review_run"]["choices"]}


def test_a_visitors_run_is_capped_and_the_page_says_so(served, client, root):
    message = client.predict(*start_args("capped", iterations=30, minutes=0), api_name="/start_training")
    assert "Runs here train at most 30 minutes (no training password is set)." in message
    wait_for(lambda: status_file(root, "capped") == "finished", what="the run to finish")
    assert read_header(root / "capped")["train_config"]["minutes"] == 30.0     # a step-only run gets the cap
