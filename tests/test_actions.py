"""webui.actions: Start, Stop and Resume from the form, and the lines the form shows about its values.

No gradio: every refusal is a UserError (the tabs turn it into a toast); called in-process, no server.
"""
from __future__ import annotations

import dataclasses
import os
import signal

import pytest
from app_fixtures import (
    TINY_TRAINING,
    app_contexts,
    app_settings,
    corpus_text,
    fake_trainer_running,
    make_checkpoint,
    wait_for,
)

import charrnn.runs.jobs
from charrnn.config import PRESETS, ModelConfig
from charrnn.data import min_corpus_chars
from charrnn.model import CharRNN, count_params
from charrnn.runs.jobs import Job, JobError
from charrnn.runs.store import RunDir
from charrnn.runs.weights import read_json
from webui import owners
from webui.errors import UserError
from webui.settings import Settings
from webui.train import actions
from webui.train.forms import FORM_FIELDS

TINY_VALUES = {k: v for k, v in TINY_TRAINING.items() if k != "preset"}
assert tuple(TINY_VALUES) == FORM_FIELDS


@pytest.fixture
def settings(tmp_path):
    return app_settings(tmp_path, corpus=True)


@pytest.fixture
def make_ctx():
    """An AppContext on given settings; its trainers are killed after the test."""
    with app_contexts() as make:
        yield make


@pytest.fixture
def ctx(settings, make_ctx):
    return make_ctx(settings)


@pytest.fixture
def fake_trainer(settings):
    """A sleeping process that looks like a trainer (charrnn on its command line), and a run whose status names it."""
    with fake_trainer_running(settings.root) as proc:
        yield proc


@pytest.fixture
def spawned(ctx, monkeypatch):
    """Record what the supervisor would spawn instead of spawning it: (run name, the run.json it would read)."""
    calls = []
    monkeypatch.setattr(ctx.jobs, "spawn",
                        lambda run: calls.append((run.name, run.read_config())) or Job(run.name, 4242))
    return calls


def start(ctx, **changes):
    kwargs = dict(password=None, source="paste", bundled_name=None, upload=None, pasted=corpus_text(),
                  preset="quick", run_name="tiny")
    values = {**TINY_VALUES, **{k: changes.pop(k) for k in list(changes) if k in FORM_FIELDS}}
    return actions.start_training(ctx, **{**kwargs, **changes}, values=values)


# --- what the form says about its values ---------------------------------------------------
def test_bundled_corpus_is_described_with_size_and_characters(settings):
    line, stats = actions.describe_corpus(settings, "bundled", "tiny.txt", None, None)
    text = corpus_text()
    assert f"{len(text):,} characters" in line and stats == {"chars": len(text), "distinct": len(set(text))}
    assert line.startswith("**tiny.txt**:")


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01binary\x00", "binary"),
    (b"caf\xe9 au lait", "not valid UTF-8"),
])
def test_bad_uploads_are_described_by_the_reason(settings, tmp_path, content, message):
    path = tmp_path / "upload.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        actions.describe_corpus(settings, "upload", None, str(path), None)


def test_parameter_count_is_that_of_the_model_built_from_the_config(settings):
    values = dict(hidden=96, layers=2, seq_len=32, batch_size=8, lr=0.01, iterations=0, minutes=1.0)
    line = actions.describe_model(settings, {"chars": 5000, "distinct": 30}, "quick", values)
    expected = CharRNN(ModelConfig(vocab_size=30, embed=PRESETS["quick"][0]["embed"], hidden=96, layers=2))
    assert f"**{expected.num_params():,} parameters**" in line and "30-character vocabulary" in line
    assert count_params(ModelConfig(vocab_size=30, embed=PRESETS["quick"][0]["embed"], hidden=96,
                                    layers=2)) == expected.num_params()
    unknown = actions.describe_model(settings, None, "quick", values)        # no corpus yet
    assert "vocabulary of the corpus" in unknown


def test_a_model_over_the_limit_is_described_with_a_warning(tmp_path):
    small = Settings(root=tmp_path, max_params=1000)
    line = actions.describe_model(small, {"chars": 5000, "distinct": 30}, "quick", TINY_VALUES)
    assert "over the app's limit of 1,000" in line


def test_describing_an_invalid_model_is_refused_naming_the_value(settings):
    with pytest.raises(UserError, match="hidden=0 is out of range"):
        actions.describe_model(settings, {"chars": 5000, "distinct": 30}, "quick", {**TINY_VALUES, "hidden": 0})


# --- validation before a trainer is spawned ------------------------------------------------
@pytest.mark.parametrize("changes, message", [
    (dict(hidden=0), "hidden=0 is out of range; allowed 1 to 4096"),
    (dict(layers=9), "allowed 1 to 8"),
    (dict(lr=5.0), "lr=5.0 is out of range"),
    (dict(seq_len=-3), "seq_len=-3 is out of range"),
    (dict(iterations=0, minutes=0), "iterations > 0, minutes > 0"),
    (dict(preset="huge"), "Unknown preset"),
    (dict(batch_size=4096, seq_len=4096), "characters per batch"),
    (dict(hidden=4096, layers=8), "at most 20,000,000"),
])
def test_out_of_range_settings_are_refused_before_spawning(settings, ctx, changes, message):
    with pytest.raises(UserError, match=message):
        start(ctx, **changes)
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()


def test_the_parameter_limit_is_the_settings(tmp_path, make_ctx):
    ctx = make_ctx(Settings(root=tmp_path / "ckpts", max_params=1000))
    with pytest.raises(UserError, match="the app trains at most 1,000"):
        start(ctx)
    assert ctx.jobs.proc is None and not (tmp_path / "ckpts" / "tiny").exists()


def test_too_short_corpus_is_refused_naming_the_minimum(ctx):
    with pytest.raises(UserError, match=f"at least {min_corpus_chars(32, 0.1)} are needed"):
        start(ctx, pasted="too short for training", seq_len=32)
    assert ctx.jobs.proc is None


def test_invalid_run_names_and_existing_runs_are_refused(settings, ctx):
    with pytest.raises(JobError, match="invalid run name"):
        start(ctx, run_name="../escape")
    make_checkpoint(settings.root / "taken", corpus_text())
    with pytest.raises(JobError, match="already exists"):
        start(ctx, run_name="taken")
    assert ctx.jobs.proc is None


def test_training_controls_need_the_password_when_one_is_set(settings, make_ctx):
    ctx = make_ctx(dataclasses.replace(settings, password="s3cret"))
    for call in (lambda pw: start(ctx, password=pw), lambda pw: actions.stop_training(ctx, pw),
                 lambda pw: actions.resume_training(ctx, pw, "x", 0, 0)):
        for wrong in ("wrong", None, ""):
            with pytest.raises(UserError, match="password"):
                call(wrong)
    with pytest.raises(JobError, match="No training run is in progress"):
        actions.stop_training(ctx, "s3cret")        # right password: past the check
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()


# --- what is spawned ---------------------------------------------------------------------
def test_a_blank_run_name_is_made_from_the_corpus_and_preset(ctx, spawned):
    message = start(ctx, run_name="  ")
    (name, config), = spawned
    assert name.startswith("pasted-quick-") and f"Started run **{name}** (pid 4242)" in message
    assert "parameters on pasted text" in message
    assert (ctx.settings.root / name / "corpus.txt").read_text(encoding="utf-8") == corpus_text()


def test_a_bundled_corpus_is_trained_on_where_it_is(settings, ctx, spawned):
    start(ctx, source="bundled", bundled_name="tiny.txt", pasted=None, run_name=None)
    (name, config), = spawned
    assert name.startswith("tiny-quick-")
    assert config["data"] == {"name": "tiny.txt", "path": str(settings.data_dir / "tiny.txt")}
    model, train = config["model_config"], config["train_config"]
    assert (model["hidden"], model["layers"], train["batch_size"]) == (32, 1, 8)       # the form's values


# --- the one-job lock ---------------------------------------------------------------------
def test_a_second_start_is_refused_while_a_trainer_runs(settings, ctx, fake_trainer):
    assert ctx.jobs.active() == Job("busy", fake_trainer.pid)
    with pytest.raises(JobError, match="in progress: busy"):
        start(ctx)
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()


def test_stop_sends_sigterm_to_the_running_trainer(ctx, fake_trainer):
    message = actions.stop_training(ctx, None)
    assert "Stopping **busy**" in message
    assert fake_trainer.wait(timeout=30) == -signal.SIGTERM


def test_stop_says_so_when_the_trainer_had_ended_meanwhile(ctx, fake_trainer, monkeypatch):
    kill = os.kill

    def gone(pid, sig):
        if sig == signal.SIGTERM:          # it ended between the check and the signal
            raise ProcessLookupError(pid)
        kill(pid, sig)

    monkeypatch.setattr(charrnn.runs.jobs.os, "kill", gone)
    assert "Run **busy** had already ended." in actions.stop_training(ctx, None)


def test_a_killed_trainer_leaves_its_run_interrupted(settings, ctx):
    message = start(ctx)
    assert "Started run **tiny**" in message and f"(pid {ctx.jobs.proc.pid})" in message
    assert (settings.root / "tiny" / "corpus.txt").read_text(encoding="utf-8") == corpus_text()
    wait_for(lambda: ctx.jobs.state("tiny")["state"] == "running", what="the trainer to run")
    with pytest.raises(JobError, match="in progress: tiny"):
        start(ctx, run_name="second")
    assert not (settings.root / "second").exists()
    os.killpg(ctx.jobs.proc.pid, signal.SIGKILL)
    ctx.jobs.proc.wait(timeout=30)
    assert ctx.jobs.active() is None
    assert ctx.jobs.state("tiny")["state"] == "interrupted"
    assert (settings.root / "tiny" / "train.log").exists()


# --- resume ---------------------------------------------------------------------------------
def test_only_runs_with_their_optimizer_state_can_be_resumed(settings, ctx):
    make_checkpoint(settings.root / "no-state", corpus_text())
    with pytest.raises(JobError, match="No resumable run"):
        actions.resume_training(ctx, None, "no-state", 10, 0)
    assert ctx.jobs.proc is None


def test_resume_refusals_of_the_budget_are_user_errors(settings, ctx, spawned):
    data = settings.data_dir / "tiny.txt"
    make_checkpoint(settings.root / "spent", corpus_text(), data={"name": "tiny.txt", "path": str(data)})
    RunDir(settings.root / "spent").save_train_state(10, {})
    with pytest.raises(JobError, match="whole budget"):
        actions.resume_training(ctx, None, "spent", 0, 0)
    with pytest.raises(JobError, match="more iterations must be"):
        actions.resume_training(ctx, None, "spent", -5, 0)
    assert spawned == []


def test_resume_names_the_run_and_the_step_it_continues_from(settings, ctx, spawned):
    data = settings.data_dir / "tiny.txt"
    make_checkpoint(settings.root / "ok", corpus_text(), step=1500, data={"name": "tiny.txt", "path": str(data)})
    RunDir(settings.root / "ok").save_train_state(1500, {})
    message = actions.resume_training(ctx, None, "ok", 100, 0)
    assert "Resumed **ok** (pid 4242) from step 1,500." in message
    # no password: the resumed part may train the visitor's cap past the minute the run has done
    ((name, config),) = spawned
    assert name == "ok" and config["train_config"]["iterations"] == 1600
    assert config["train_config"]["minutes"] == 1.0 / 60 + 30.0


# --- a visitor's time cap -----------------------------------------------------------------
def flag(config: dict, name: str):
    """A train setting of the run.json a spawned trainer would read."""
    return config["train_config"][name]


@pytest.mark.parametrize("minutes, iterations", [(600.0, 0), (0.0, 100)])
def test_with_no_password_a_run_trains_at_most_the_visitor_minutes_and_the_message_says_so(ctx, spawned, minutes,
                                                                                         iterations):
    message = start(ctx, minutes=minutes, iterations=iterations)
    assert ctx.settings.password is None and ctx.settings.visitor_minutes == 30.0
    assert float(flag(spawned[0][1], "minutes")) == 30.0             # a long run and a step-only run alike
    assert "at most 30 minutes" in message


def test_a_run_shorter_than_the_visitor_cap_keeps_its_budget(ctx, spawned):
    message = start(ctx, minutes=2.0, iterations=0)
    assert float(flag(spawned[0][1], "minutes")) == 2.0 and "at most 30 minutes" in message


def test_with_a_password_there_is_no_visitor_cap(settings, make_ctx, monkeypatch):
    ctx = make_ctx(dataclasses.replace(settings, password="pw"))
    calls = []
    monkeypatch.setattr(ctx.jobs, "spawn", lambda run: calls.append(run.read_config()) or Job(run.name, 4242))
    message = start(ctx, password="pw", minutes=600.0, iterations=0)
    assert float(flag(calls[0], "minutes")) == 600.0 and "at most" not in message
    data = settings.data_dir / "tiny.txt"
    make_checkpoint(settings.root / "ok", corpus_text(), step=1500, data={"name": "tiny.txt", "path": str(data)})
    RunDir(settings.root / "ok").save_train_state(1500, {})
    actions.resume_training(ctx, "pw", "ok", 0, 600)
    assert float(flag(calls[1], "minutes")) == 1.0 / 60 + 600


@pytest.mark.parametrize("more_iterations, more_minutes, expected", [(0, 600, 30.0), (0, 10, 10.0), (100, 0, 30.0),
                                                                    (0, 0, 30.0)])
def test_with_no_password_a_resumed_part_trains_at_most_the_visitor_minutes(settings, ctx, spawned, more_iterations,
                                                                           more_minutes, expected):
    data = settings.data_dir / "tiny.txt"
    make_checkpoint(settings.root / "ok", corpus_text(), step=1500, elapsed=120.0,
                    data={"name": "tiny.txt", "path": str(data)}, train_config={"iterations": 0, "minutes": 0})
    RunDir(settings.root / "ok").save_train_state(1500, {})
    message = actions.resume_training(ctx, None, "ok", more_iterations, more_minutes)
    assert float(flag(spawned[0][1], "minutes")) == pytest.approx(2.0 + expected)    # 2 minutes done + this part
    assert "at most 30 more minutes" in message


def test_a_run_that_would_not_fit_in_memory_is_refused_naming_what_to_lower(settings, make_ctx):
    tight = dataclasses.replace(settings, train_memory=600 * 2**20)
    ctx = make_ctx(tight)
    values = {**TINY_VALUES, "hidden": 1024, "batch_size": 256, "seq_len": 256}
    with pytest.raises(UserError, match=r"would need about .* of memory; this server lets a run use 600.0 MiB"):
        actions.start_training(ctx, None, "paste", None, None, corpus_text(), "quick", values, "too-big")
    assert not (tight.root / "too-big").exists() and ctx.jobs.proc is None


def test_a_new_run_is_refused_while_the_saved_runs_are_over_the_cap(settings, make_ctx):
    capped = dataclasses.replace(settings, max_checkpoints_bytes=1000)
    (capped.root / "old").mkdir(parents=True)
    (capped.root / "old" / "model.safetensors").write_bytes(b"x" * 2000)
    ctx = make_ctx(capped)
    with pytest.raises(UserError, match=r"saved runs take 2.0 KiB, over this server's 1000 bytes: delete a run"):
        actions.start_training(ctx, None, "paste", None, None, corpus_text(), "quick", TINY_VALUES, "one-more")
    assert not (capped.root / "one-more").exists() and ctx.jobs.proc is None


# --- who may stop, resume and delete a run (webui.owners) -----------------------------------
def test_with_no_password_only_the_browser_that_started_a_run_can_stop_it(settings, ctx, spawned, monkeypatch):
    assert "Started run **tiny**" in start(ctx, key="browser-a-key")
    assert read_json(settings.root / "tiny" / "owner.json") == {"key_sha256": owners.digest("browser-a-key")}
    assert "browser-a-key" not in (settings.root / "tiny" / "owner.json").read_text()   # only its digest is kept
    monkeypatch.setattr(ctx.jobs, "active", lambda: Job("tiny", 4242))
    sent = []
    monkeypatch.setattr(charrnn.runs.jobs.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    for other in ("browser-b-key", None, "", 12345):
        with pytest.raises(UserError, match=r"Only the browser that started or added tiny can stop it"):
            actions.stop_training(ctx, None, other)
    assert sent == []
    assert "Stopping **tiny**" in actions.stop_training(ctx, None, "browser-a-key")
    assert sent == [(4242, signal.SIGTERM)]


def test_with_no_password_only_the_browser_that_started_a_run_can_resume_it(settings, ctx, spawned):
    data = settings.data_dir / "tiny.txt"
    make_checkpoint(settings.root / "ok", corpus_text(), step=1500, data={"name": "tiny.txt", "path": str(data)})
    RunDir(settings.root / "ok").save_train_state(1500, {})
    owners.record_owner(settings.root / "ok", "browser-a-key")
    with pytest.raises(UserError, match="can resume it"):
        actions.resume_training(ctx, None, "ok", 100, 0, "browser-b-key")
    assert spawned == []
    assert "Resumed **ok**" in actions.resume_training(ctx, None, "ok", 100, 0, "browser-a-key")


def test_the_password_holder_controls_every_run_and_a_run_without_an_owner_is_anyones(tmp_path, make_ctx,
                                                                                       monkeypatch):
    guarded = make_ctx(app_settings(tmp_path / "guarded", corpus=True, password="pw"))
    (guarded.settings.root / "busy").mkdir(parents=True)
    owners.record_owner(guarded.settings.root / "busy", "browser-a-key")
    monkeypatch.setattr(guarded.jobs, "active", lambda: Job("busy", 4242))
    monkeypatch.setattr(charrnn.runs.jobs.os, "kill", lambda pid, sig: None)
    assert "Stopping **busy**" in actions.stop_training(guarded, "pw", "browser-b-key")
    open_ctx = make_ctx(app_settings(tmp_path / "open", corpus=True))
    (open_ctx.settings.root / "cli-run").mkdir(parents=True)
    monkeypatch.setattr(open_ctx.jobs, "active", lambda: Job("cli-run", 4242))
    assert "Stopping **cli-run**" in actions.stop_training(open_ctx, None, None)   # started from the CLI: no owner


def test_an_owner_file_that_cannot_be_read_lets_no_visitor_control_the_run(settings):
    directory = settings.root / "odd"
    directory.mkdir(parents=True)
    for content in ("[1, 2]", "not json", '{"key_sha256": 5}'):
        (directory / owners.OWNER).write_text(content)
        assert not owners.may_control(settings, directory, "any-key")
    owners.record_owner(directory, "mine")
    assert owners.may_control(settings, directory, "mine") and not owners.may_control(settings, directory, "mine ")


def test_a_browser_keeps_its_key_and_gets_a_new_one_only_when_it_has_none():
    assert owners.browser_key("kept-key") == "kept-key"
    fresh = {owners.browser_key(v) for v in (None, "", 7, ["x"], "k" * 201)}
    assert len(fresh) == 5 and all(len(k) >= 32 for k in fresh)
