"""charrnn.runs.jobs, the one training job of a checkpoints folder: starting, following, stopping, resuming.

Engine only: neither gradio nor the webui package is imported here (app_fixtures imports neither at import; its
helpers used here do not import webui when called).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from app_fixtures import TINY_TRAINING, corpus_text, fake_trainer_running, kill_trainers, make_checkpoint, wait_for

from charrnn.config import ModelConfig, preset_configs
from charrnn.runs import jobs as jobs_module
from charrnn.runs import writes
from charrnn.runs.jobs import (
    Job,
    JobError,
    Supervisor,
    budget,
    capped_config,
    create_run,
    death_reason,
    recent_run,
    resumable_runs,
    running_job,
    stop_run,
)
from charrnn.runs.runner import build_corpus
from charrnn.runs.store import RunDir, load_checkpoint, read_header, run_dirs

TINY_MODEL = {k: TINY_TRAINING[k] for k in ("hidden", "layers")}
TINY_TRAIN = {k: v for k, v in TINY_TRAINING.items() if k not in ("preset", *TINY_MODEL)}


def tiny_configs(text: str, **train):
    model_cfg, train_cfg = preset_configs("quick", 1, TINY_MODEL, {**TINY_TRAIN, **train})
    vocab = build_corpus(text, train_cfg).vocab
    return ModelConfig(**{**model_cfg.to_dict(), "vocab_size": len(vocab)}), train_cfg


def state_of(jobs: Supervisor, name: str) -> str | None:
    return jobs.state(name).get("state")


@pytest.fixture
def root(tmp_path):
    return (tmp_path / "ckpts").resolve()


@pytest.fixture
def jobs(root):
    jobs = Supervisor(root, threads=1)
    yield jobs
    kill_trainers(root, jobs)


def sleeper(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *argv], start_new_session=True)


@pytest.fixture
def fake_trainer(root):
    """A sleeping process that looks like a trainer (charrnn on its command line), and a run whose status names it."""
    with fake_trainer_running(root) as proc:
        yield proc


# --- the one-job lock -----------------------------------------------------------------
def test_a_second_start_is_refused_while_a_trainer_runs(root, jobs, fake_trainer, tmp_path):
    text = corpus_text()
    assert jobs.active() == Job("busy", fake_trainer.pid) == running_job(root)
    with pytest.raises(JobError, match="in progress: busy"):
        jobs.refuse_if_busy()
    with pytest.raises(JobError, match="in progress: busy"):
        jobs.start("tiny", text, None, "pasted text", "quick", *tiny_configs(text))
    assert jobs.proc is None and not (root / "tiny").exists()       # refused before writing or spawning
    data = tmp_path / "tiny.txt"
    data.write_text(text, encoding="utf-8")
    make_checkpoint(root / "done", text, data={"name": "tiny.txt", "path": str(data)})
    RunDir(root / "done").save_train_state(10, {})
    with pytest.raises(JobError, match="in progress: busy"):
        jobs.resume("done", 5, 0)
    assert jobs.proc is None


def test_stale_running_status_or_a_reused_pid_does_not_block(root, jobs):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name, pid in (("dead", 2**22 + 12345), ("reused", other.pid)):
            (root / name).mkdir(parents=True)
            RunDir(root / name).write_status("running", pid=pid)
        assert jobs.active() is None and running_job(root) is None
        jobs.refuse_if_busy()                                           # does not raise
        assert jobs.state("reused")["state"] == "interrupted"
        assert jobs.state("dead")["state"] == "interrupted"
    finally:
        other.kill()
        other.wait()


def test_stop_sends_sigterm_to_the_running_trainer_and_marks_it_stopping(root, jobs, fake_trainer):
    job, signalled = jobs.stop()
    assert job == Job("busy", fake_trainer.pid) and signalled
    assert fake_trainer.wait(timeout=30) == -signal.SIGTERM
    assert "busy" in jobs.stopping


def test_a_running_run_reads_as_stopping_once_stop_was_pressed(root, jobs, fake_trainer):
    assert jobs.state("busy")["state"] == "running"
    jobs.stopping.add("busy")
    assert jobs.state("busy") == {"state": "stopping", "pid": fake_trainer.pid, "iterations": 100, "minutes": 0}


def test_stop_with_nothing_running_is_refused(jobs):
    with pytest.raises(JobError, match="No training run is in progress"):
        jobs.stop()


def test_stop_run_sigterms_the_named_runs_trainer_and_refuses_one_not_training(root, fake_trainer):
    assert stop_run(root, "busy") == Job("busy", fake_trainer.pid)
    assert fake_trainer.wait(timeout=30) == -signal.SIGTERM
    make_checkpoint(root / "idle", corpus_text())
    RunDir(root / "idle").write_status("finished", step=10)
    with pytest.raises(JobError, match="not training"):
        stop_run(root, "idle")
    with pytest.raises(JobError, match="not training"):
        stop_run(root, "busy")                                          # its trainer is gone now


def test_our_child_is_starting_before_it_writes_a_status_then_ended_or_cancelled(root, jobs):
    (root / "early").mkdir(parents=True)
    jobs.proc, jobs.run = sleeper(), "early"
    assert jobs.active() == Job("early", jobs.proc.pid)              # our child counts before its status exists
    assert jobs.state("early") == {"state": "starting"}
    jobs.proc.kill()
    jobs.proc.wait()
    assert jobs.active() is None
    assert jobs.state("early") == {"state": "ended", "code": -signal.SIGKILL}
    jobs.proc, jobs.run = sleeper(), "early"
    jobs.stopping.add("early")
    jobs.proc.terminate()
    jobs.proc.wait()
    assert jobs.state("early") == {"state": "cancelled"}             # stopped before training began
    assert jobs.state("other") == {"state": "unknown"}               # not ours: no exit status to report


def test_a_started_trainer_runs_stops_with_a_checkpoint_and_resumes_with_more_steps(root, jobs):
    text = corpus_text()
    job = jobs.start("tiny", text, None, "pasted text", "quick", *tiny_configs(text))
    assert job == Job("tiny", jobs.proc.pid) and jobs.run == "tiny"
    assert (root / "tiny" / "corpus.txt").read_text(encoding="utf-8") == text
    assert jobs.active() == job
    wait_for(lambda: state_of(jobs, "tiny") == "running", what="the trainer to run")
    with pytest.raises(JobError, match="in progress: tiny"):
        jobs.start("second", text, None, "pasted text", "quick", *tiny_configs(text))
    assert not (root / "second").exists()
    wait_for(lambda: RunDir(root / "tiny").records(), what="a first metrics record")
    stopped_job, signalled = jobs.stop()
    assert stopped_job == job and signalled
    assert jobs.proc.wait(timeout=120) == 0
    assert state_of(jobs, "tiny") == "stopped" and jobs.active() is None
    header = RunDir(root / "tiny").latest_header()                        # where training is: the resume starts there
    assert [r["name"] for r in resumable_runs(root)] == ["tiny"]
    assert jobs.files_signature("tiny")[0] == "tiny"
    before = jobs.files_signature("tiny")

    resumed, step = jobs.resume("tiny", 5, 0)
    assert step == header["step"] and resumed == Job("tiny", jobs.proc.pid)
    assert jobs.proc.wait(timeout=120) == 0
    assert state_of(jobs, "tiny") == "finished"
    assert RunDir(root / "tiny").records()[-1]["step"] == step + 5
    assert jobs.files_signature("tiny") != before
    assert recent_run(root) == "tiny" and jobs.last_run() == "tiny"


def test_a_killed_trainer_leaves_its_run_interrupted(root, jobs):
    text = corpus_text()
    jobs.start("tiny", text, None, "pasted text", "quick", *tiny_configs(text))
    wait_for(lambda: state_of(jobs, "tiny") == "running", what="the trainer to run")
    os.killpg(jobs.proc.pid, signal.SIGKILL)
    jobs.proc.wait(timeout=30)
    assert jobs.active() is None
    assert jobs.state("tiny")["state"] == "interrupted"
    assert (root / "tiny" / "train.log").exists()
    run = RunDir(root / "tiny")                   # killed before its first checkpoint, or (a fast machine) after one
    saved = run.latest.exists() and read_header(run.latest)["step"] in run.train_state_steps()
    assert [r["name"] for r in resumable_runs(root)] == (["tiny"] if saved else [])    # resumable only if saved


def test_start_spawns_the_trainer_with_exactly_these_configs(root, jobs, monkeypatch, tmp_path):
    spawned = []
    monkeypatch.setattr(jobs, "spawn", lambda run: spawned.append(run) or Job(run.name, 1))
    text = corpus_text()
    model_cfg, train_cfg = tiny_configs(text)
    data = tmp_path / "tiny.txt"
    data.write_text(text, encoding="utf-8")
    assert jobs.start("from-file", text, data, "tiny.txt", "quick", model_cfg, train_cfg) == Job("from-file", 1)
    (run,) = spawned
    assert run.name == "from-file" and not run.corpus_copy.exists()   # a file is trained on where it is
    config = run.read_config()                                        # what the trainer process reads
    assert config["preset"] == "quick" and config["data"] == {"name": "tiny.txt", "path": str(data)}
    assert config["model_config"] == model_cfg.to_dict()
    assert config["train_config"] == {**train_cfg.to_dict(), "threads": jobs.threads}


def test_the_trainer_process_is_started_with_the_runs_name_alone(root, jobs, monkeypatch):
    started, popen = [], subprocess.Popen
    monkeypatch.setattr(jobs_module.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or popen(["true"]))
    text = corpus_text()
    jobs.start("short", text, None, "pasted text", "quick", *tiny_configs(text))
    (cmd,) = started
    assert cmd[1:] == ["-m", "charrnn", "--checkpoints", str(root.resolve()), "train", "--run", "short", "--quiet"]


# --- run directories -----------------------------------------------------------------
def test_create_run_writes_the_text_or_uses_the_file_and_refuses_bad_or_taken_names(root, tmp_path):
    run, data = create_run(root, "pasted", "some text", None)
    assert data == run.corpus_copy == root / "pasted" / "corpus.txt"
    assert data.read_text(encoding="utf-8") == "some text"
    file = tmp_path / "book.txt"
    assert create_run(root, "bookrun", "ignored", file)[1] == file and (root / "bookrun").is_dir()
    assert not (root / "bookrun" / "corpus.txt").exists()
    with pytest.raises(JobError, match="invalid run name"):
        create_run(root, "../escape", "x", None)
    make_checkpoint(root / "taken", corpus_text())
    with pytest.raises(JobError, match="already exists"):
        create_run(root, "taken", "x", None)


def test_a_run_folder_is_never_reused_even_one_left_without_a_checkpoint(root):
    (root / "killed-early").mkdir(parents=True)                       # its trainer died before its first checkpoint
    (root / "killed-early" / "owner.json").write_text('{"sha256": "first visitor"}', encoding="utf-8")
    with pytest.raises(JobError, match="already exists"):
        create_run(root, "killed-early", "another visitor's text", None)
    assert (root / "killed-early" / "owner.json").read_text(encoding="utf-8") == '{"sha256": "first visitor"}'
    assert not (root / "killed-early" / "corpus.txt").exists()


def test_create_run_says_when_the_folder_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(JobError, match="Cannot write to"):
        create_run(blocker, "run", "x", None)


def test_log_tail_is_the_raw_last_lines_of_the_log(tmp_path):
    run = RunDir(tmp_path)
    assert run.log_tail() == ""                                         # no train.log
    lines = [f"line {i} ```" for i in range(1000)]
    run.log.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    assert run.log_tail() == "\n".join(lines[-12:])                    # not fenced, not escaped
    assert run.log_tail(lines=3) == "\n".join(lines[-3:])
    run.log.write_bytes(b"bad \xff byte\nerror: boom\n")
    assert run.log_tail() == "bad \ufffd byte\nerror: boom"


# --- resume ---------------------------------------------------------------------------
def test_resume_budget_counts_from_what_the_run_has_done():
    header = {"step": 300, "elapsed": 120.0, "train_config": {"iterations": 300, "minutes": 0.0}}
    assert budget(header, 200, 0) == {"iterations": 500, "minutes": 0}
    assert budget(header, 0, 1.5) == {"minutes": 3.5, "iterations": 0}
    with pytest.raises(JobError, match="whole budget"):
        budget(header, 0, 0)
    stopped = {**header, "step": 100}
    assert budget(stopped, 0, 0) == {}
    assert budget(stopped, None, None) == {}
    with pytest.raises(JobError, match="more minutes must be"):
        budget(header, 0, -1)
    timed = {"step": 50, "elapsed": 600.0, "train_config": {"iterations": 0, "minutes": 10.0}}
    with pytest.raises(JobError, match="whole budget"):
        budget(timed, 0, 0)


@pytest.mark.parametrize("more_iterations, more_minutes", [(-1, 0), (2.5e7, 0), ("5", 0), (True, 0), (0, 1e9)])
def test_resume_budget_refuses_values_out_of_range(more_iterations, more_minutes):
    header = {"step": 100, "elapsed": 1.0, "train_config": {"iterations": 300, "minutes": 0.0}}
    with pytest.raises(JobError, match="must be a number from 0 to"):
        budget(header, more_iterations, more_minutes)


def test_only_runs_with_their_optimizer_state_can_be_resumed(root, jobs, tmp_path):
    make_checkpoint(root / "no-state", corpus_text())
    assert resumable_runs(root) == []
    with pytest.raises(JobError, match="No resumable run"):
        jobs.resume("no-state", 10, 0)
    data = tmp_path / "tiny.txt"
    data.write_text(corpus_text(), encoding="utf-8")
    make_checkpoint(root / "old-state", corpus_text(), step=20, data={"name": "tiny.txt", "path": str(data)})
    RunDir(root / "old-state").save_train_state(10, {})                   # not the state of its step
    make_checkpoint(root / "ok", corpus_text(), step=20, data={"name": "tiny.txt", "path": str(data)})
    RunDir(root / "ok").save_train_state(20, {})
    assert [r["name"] for r in resumable_runs(root)] == ["ok"]
    RunDir(root / "ok").write_status("running", pid=os.getpid())           # a live process, but not a trainer
    assert [r["name"] for r in resumable_runs(root)] == ["ok"]
    assert jobs.proc is None


def test_resume_refuses_a_run_whose_corpus_is_gone_or_whose_budget_is_spent(root, jobs, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "spawn", lambda run: pytest.fail(f"spawned {run}"))
    make_checkpoint(root / "gone", corpus_text(), data={"name": "x.txt", "path": str(tmp_path / "x.txt")})
    RunDir(root / "gone").save_train_state(10, {})
    with pytest.raises(JobError, match="is gone"):
        jobs.resume("gone", 5, 0)
    data = tmp_path / "tiny.txt"
    data.write_text(corpus_text(), encoding="utf-8")
    make_checkpoint(root / "spent", corpus_text(), data={"name": "tiny.txt", "path": str(data)})
    RunDir(root / "spent").save_train_state(10, {})
    with pytest.raises(JobError, match="whole budget"):
        jobs.resume("spent", 0, 0)


def test_resume_counts_from_the_latest_weights_and_finds_the_corpus_through_the_run(root, jobs, tmp_path,
                                                                                    monkeypatch):
    """A run whose kept model (step 40) is behind its latest weights (step 90): the header names no corpus path;
    corpus.json says where it is."""
    spawned = []
    monkeypatch.setattr(jobs, "spawn", lambda run: spawned.append(run.read_config()) or Job(run.name, 1))
    data = tmp_path / "tiny.txt"
    data.write_text(corpus_text(), encoding="utf-8")
    make_checkpoint(root / "split", corpus_text(), step=40, best_step=40,
                    data={"name": "tiny.txt", "chars": len(corpus_text())}, train_config={"iterations": 100})
    model, vocab, _ = load_checkpoint(root / "split")
    RunDir(root / "split").save_latest(model, vocab, {"step": 90, "best_step": 40, "elapsed": 9.0,
                                                  "train_config": {"iterations": 100, "minutes": 0.0}}, {})
    assert [r["name"] for r in resumable_runs(root)] == ["split"]       # save_latest wrote train_state-90.pt
    with pytest.raises(JobError, match="does not record where its corpus is"):
        jobs.resume("split", 5, 0)
    RunDir(root / "split").record_corpus(data)
    assert jobs.resume("split", 5, 0) == (Job("split", 1), 90)
    (config,) = spawned
    assert config["train_config"]["iterations"] == 95 and config["train_config"]["minutes"] == 0
    assert config["data"]["path"] == str(data)
    assert jobs.resume("split", 0, 0) == (Job("split", 1), 90)           # 90 of 100 steps done: not spent
    (root / "split" / "train_state-90.pt").unlink()
    assert resumable_runs(root) == []             # the kept model's own step (40) is not where a resume starts


def test_resume_spawns_with_the_extended_budget(root, jobs, tmp_path, monkeypatch):
    spawned = []
    monkeypatch.setattr(jobs, "spawn", lambda run: spawned.append(run.read_config()) or Job(run.name, 1))
    data = tmp_path / "tiny.txt"
    data.write_text(corpus_text(), encoding="utf-8")
    make_checkpoint(root / "ok", corpus_text(), step=40, data={"name": "tiny.txt", "path": str(data)})
    RunDir(root / "ok").save_train_state(40, {})
    assert jobs.resume("ok", 60, 0) == (Job("ok", 1), 40)
    assert [(c["train_config"]["iterations"], c["train_config"]["minutes"]) for c in spawned] == [(100, 0)]


# --- a public folder's hostile or broken runs --------------------------------------------------
def resumable_run(root, name, tmp_path, step=1000) -> None:
    """A run with a kept model, the optimizer state of its step and its corpus: Resume can continue it."""
    data = tmp_path / f"{name}.txt"
    data.write_text(corpus_text(), encoding="utf-8")
    make_checkpoint(root / name, corpus_text(), step=step, data={"name": data.name, "path": str(data)},
                    train_config={"iterations": step + 500, "minutes": 0.0})
    RunDir(root / name).save_train_state(step, {})


def test_a_trainer_that_wrote_its_final_status_is_not_in_progress_while_it_exits(root, jobs, tmp_path, monkeypatch):
    resumable_run(root, "done", tmp_path)
    jobs.proc, jobs.run = sleeper("charrnn", "train"), "done"                 # still exiting...
    RunDir(root / "done").write_status("finished", step=1000, pid=jobs.proc.pid)   # ...after its final status
    assert jobs.active() is None
    spawned = []
    monkeypatch.setattr(jobs, "spawn", lambda run: spawned.append(run.name) or Job(run.name, 1))
    assert jobs.resume("done", 10, 0) == (Job("done", 1), 1000)      # at once, not "in progress"
    assert spawned == ["done"]


def test_a_status_left_by_an_earlier_trainer_does_not_end_our_starting_child(root, jobs, tmp_path):
    resumable_run(root, "again", tmp_path)
    RunDir(root / "again").write_status("stopped", step=1000, pid=2**22 + 7)    # the trainer before
    jobs.proc, jobs.run, jobs.spawned_ns = sleeper("charrnn", "train"), "again", time.time_ns()
    assert jobs.active() == Job("again", jobs.proc.pid)
    assert jobs.state("again") == {"state": "starting"}


def test_spawning_keeps_an_exiting_child_to_reap(root, jobs, tmp_path, monkeypatch):
    (root / "a").mkdir(parents=True)
    old = sleeper("charrnn", "train")
    jobs.proc, jobs.run = old, "a"
    monkeypatch.setattr(sys, "executable", "/bin/true")                # spawn a child that does nothing
    jobs.spawn(RunDir(root / "a"))
    assert jobs.exiting == [old] and jobs.proc is not old
    old.kill()
    old.wait()
    jobs.proc.wait()


def kill_child_at(root, jobs, name, step_in_status=0) -> None:
    """Our child running run ``name`` (its status says so), then SIGKILLed as the system's OOM killer does."""
    jobs.proc, jobs.run = sleeper("charrnn", "train"), name
    RunDir(root / name).write_status("running", pid=jobs.proc.pid, step=step_in_status)
    os.kill(jobs.proc.pid, signal.SIGKILL)
    jobs.proc.wait()


def test_a_trainer_killed_by_the_system_is_reported_so_at_the_step_of_its_last_checkpoint(root, jobs, tmp_path):
    resumable_run(root, "oom", tmp_path, step=1000)
    kill_child_at(root, jobs, "oom")
    status = jobs.state("oom")
    assert status["state"] == "interrupted" and "killed by the system (SIGKILL)" in status["reason"]
    assert status["step"] == 1000 and status["checkpoint_step"] == 1000        # not the step it started from
    assert Supervisor(root).state("oom")["reason"] == status["reason"]         # written down: an app restart knows
    assert [r["name"] for r in resumable_runs(root)] == ["oom"]


def test_a_trainer_killed_before_its_first_checkpoint_offers_no_resume(root, jobs):
    (root / "early-oom").mkdir(parents=True)
    kill_child_at(root, jobs, "early-oom")
    status = jobs.state("early-oom")
    assert status["state"] == "interrupted" and status["checkpoint_step"] is None and "step" not in status
    assert resumable_runs(root) == []


def test_a_symlinked_run_folder_is_no_run(root, jobs, tmp_path):
    resumable_run(root.parent / "elsewhere", "real", tmp_path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "link").symlink_to(root.parent / "elsewhere" / "real", target_is_directory=True)
    assert run_dirs(root) == [] and recent_run(root) is None and resumable_runs(root) == []


@pytest.mark.parametrize("content", ["[1,2,3]", '"finished"', "null",
                                     '{"state":"running","pid":123456789012345678901}'])
def test_a_run_with_a_damaged_status_is_listed_damaged_not_resumed_and_breaks_nothing(root, jobs, tmp_path, content):
    resumable_run(root, "bad", tmp_path)
    resumable_run(root, "good", tmp_path)
    (root / "bad" / RunDir.STATUS).write_text(content, encoding="utf-8")
    assert jobs.active() is None and running_job(root) is None
    assert jobs.state("bad")["state"] == "damaged"
    assert [r["name"] for r in resumable_runs(root)] == ["good"]
    with pytest.raises(JobError, match=r"Run bad cannot be resumed here: status.json"):
        jobs.resume("bad", 10, 0)


def test_resume_is_refused_while_the_disk_has_no_room_for_a_checkpoint(root, jobs, tmp_path, monkeypatch):
    resumable_run(root, "full", tmp_path)
    monkeypatch.setattr(jobs, "spawn", lambda run: pytest.fail(f"spawned {run}"))
    monkeypatch.setattr(writes, "free_bytes", lambda directory: 4096)
    with pytest.raises(JobError, match=r"Run full cannot be resumed: disk full: 4.0 KiB free in full"):
        jobs.resume("full", 10, 0)


def test_more_steps_than_a_run_may_train_are_refused_before_anything_starts():
    """D9: 10,000,000 more iterations (the documented maximum of more) on a run at step 300 would pass the step limit:
    refused with how many more it may take, instead of "Resumed" and a trainer that exits at once."""
    header = {"step": 300, "elapsed": 12.0, "train_config": {"iterations": 1000, "minutes": 0.0}}
    with pytest.raises(JobError, match="at most 9,999,700 more"):
        budget(header, 10_000_000, 0)
    assert budget(header, 9_999_700, 0)["iterations"] == 10_000_000


def test_a_visitor_cap_bounds_the_time_of_a_resumed_part():
    header = {"step": 300, "elapsed": 120.0, "train_config": {"iterations": 1000, "minutes": 0.0}}
    assert budget(header, 200, 0, cap_minutes=30) == {"iterations": 500, "minutes": 32.0}
    assert budget(header, 0, 600, cap_minutes=30) == {"minutes": 32.0, "iterations": 0}
    assert budget(header, 0, 5, cap_minutes=30) == {"minutes": 7.0, "iterations": 0}
    assert budget(header, 0, 0, cap_minutes=30) == {"minutes": 32.0}
    short = {**header, "train_config": {"iterations": 0, "minutes": 10.0}}
    assert budget(short, 0, 0, cap_minutes=30) == {}               # its own budget ends sooner


def test_capped_config_gives_a_run_at_most_the_cap():
    _, long_cfg = preset_configs("quick", 1, TINY_MODEL, {**TINY_TRAIN, "minutes": 600.0})
    _, steps_cfg = preset_configs("quick", 1, TINY_MODEL, {**TINY_TRAIN, "minutes": 0.0, "iterations": 50})
    assert capped_config(long_cfg, 30).minutes == 30.0 and capped_config(steps_cfg, 30).minutes == 30.0
    assert capped_config(long_cfg, 0) is long_cfg
    _, short_cfg = preset_configs("quick", 1, TINY_MODEL, {**TINY_TRAIN, "minutes": 2.0})
    assert capped_config(short_cfg, 30) is short_cfg


@pytest.mark.parametrize("code, says", [(-signal.SIGKILL, "killed by the system (SIGKILL)"),
                                        (-signal.SIGSEGV, "killed by SIGSEGV"), (1, "exited with status 1")])
def test_how_a_trainer_died_is_said_from_its_exit_status(code, says):
    assert says in death_reason(code)
