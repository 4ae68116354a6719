"""The gradio side of the Train tab and the poll (webui.train_tab, webui.demo, webui.glue), called in-process, with
the review of a run's samples over time. (describe_checkpoint, the Generate tab's line: test_generate_tab.py.)

The tab's event handlers are taken from a built ``create_demo`` (no server): they are exactly what gradio calls,
positionally, with the values of the wired components; refusals reach the page as ``gr.Error``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import re
import signal

import gradio as gr
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

from charrnn.config import PRESETS, ModelConfig
from charrnn.data import CorpusError
from charrnn.runs.jobs import Job
from charrnn.runs.store import RunDir
from charrnn.vocab import Vocab
from webui import glue
from webui.context import AppContext
from webui.demo import checkpoint_updates, create_demo, poll
from webui.errors import UserError
from webui.generate.tab import describe_checkpoint
from webui.models import BUNDLED_KEY
from webui.owners import record_owner
from webui.train import actions
from webui.train.forms import FORM_FIELDS, PAGE_FIELDS, preset_values
from webui.train.render import samples_html
from webui.train.tab import (
    START_INPUTS,
    TRAIN_VIEW,
    control_states,
    corpus_inputs_shown,
    corpus_view,
    intro,
    preset_form,
    refit,
    settled_message,
    timeline_of,
    training_view,
)


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


def wired(ctx: AppContext) -> dict:
    """The event handlers of a demo built on ``ctx``, by API name (internal events by their function's name)."""
    demo = create_demo(ctx.settings, ctx)
    fns = {}
    for block_fn in demo.fns.values():
        fns.setdefault(block_fn.api_name, block_fn.fn)
        fns.setdefault(getattr(block_fn.fn, "__name__", None), block_fn.fn)
    demo.close()
    return fns


def start_args(inputs=START_INPUTS, **changes) -> list:
    """/start_training's inputs, in order, as gradio passes them."""
    values = dict(password=None, source="paste", bundled_name=None, upload=None, pasted=corpus_text(),
                  run_name="tiny", patience=None, key=None, start_from=None, **TINY_TRAINING)
    values.update(changes)
    return [values[name] for name in inputs]


def pressed(fn, *args) -> tuple[list, gr.Error | None]:
    """What a control button's handler writes to the message area, in order, and the gr.Error it ends with (None)."""
    shown = []
    try:
        for message in fn(*args):
            shown.append(message)
    except gr.Error as e:
        return shown, e
    return shown, None


@pytest.fixture
def fake_trainer(settings):
    """A sleeping process that looks like a trainer (charrnn on its command line), and a run whose status names it."""
    with fake_trainer_running(settings.root) as proc:
        yield proc


# --- glue: where refusals become gr.Error --------------------------------------------------
def test_the_handler_turns_a_user_error_into_a_gr_error():
    def refuse(x):
        raise UserError(f"No **{x}** here.")

    with pytest.raises(gr.Error, match=r"^'?No thing here\.'?$") as raised:      # plain text: a toast, an API error
        glue.handler(refuse)("thing")
    assert not isinstance(raised.value, UserError)
    assert glue.handler(refuse, inline=lambda m: f"⚠️ {m}")("thing") == "⚠️ No thing here."
    assert glue.handler(lambda x: x * 2)(21) == 42


def test_engine_errors_become_gr_errors_with_markup_shown_as_text_and_bugs_stay_bugs():
    def engine(_):
        raise CorpusError("<b>x</b> is empty")

    with pytest.raises(gr.Error, match="&lt;b>x&lt;/b> is empty"):
        glue.handler(engine)(1)

    def bug():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):          # not dressed up as the user's mistake
        glue.handler(bug)()


def test_a_generator_handler_streams_then_shows_its_refusal():
    def stream():
        yield 1
        yield 2
        raise UserError("stopped")

    assert list(glue.handler(stream, inline=lambda m: m)()) == [1, 2, "stopped"]
    with pytest.raises(gr.Error, match="stopped"):
        list(glue.handler(stream)())


def test_a_handler_with_names_takes_them_positionally_and_shows_them():
    def fn(**kw):
        return kw

    wrapped = glue.handler(fn, ("a", "b"))
    assert list(inspect.signature(wrapped).parameters) == ["a", "b"]
    assert wrapped(1, 2) == {"a": 1, "b": 2}
    with pytest.raises(ValueError):
        wrapped(1)                                            # every named input is passed


# --- the wired Train tab ----------------------------------------------------------------------
def test_the_start_training_handler_names_its_inputs(ctx):
    fns = wired(ctx)
    assert tuple(inspect.signature(fns["start_training"]).parameters) == (*START_INPUTS, "request")  # the visitor's
    assert START_INPUTS == ("password", "source", "bundled_name", "upload", "pasted", "preset", "hidden", "layers",
                            "seq_len", "batch_size", "lr", "iterations", "minutes", "run_name", "key",
                            "patience", "start_from")         # patience and where it starts, which callers may omit
    demo = create_demo(ctx.settings, ctx)
    endpoints = demo.get_api_info()["named_endpoints"]
    demo.close()
    assert tuple(p["parameter_name"] for p in endpoints["/start_training"]["parameters"]) == START_INPUTS
    assert [name for name in endpoints if "start" in name] == ["/start_training"]   # one start endpoint


def test_the_wired_handlers_refuse_with_gr_errors(settings, make_ctx):
    ctx = make_ctx(dataclasses.replace(settings, password="s3cret"))
    fns = wired(ctx)
    with pytest.raises(gr.Error, match="password"):
        list(fns["start_training"](*start_args(password="wrong")))
    for fn, args in ((fns["start_training"], start_args(password="wrong")),
                     (fns["stop_training"], ["wrong", None]), (fns["resume_training"], ["wrong", "x", 0, 0, None])):
        shown, error = pressed(fn, *args)
        assert "password" in str(error) and len(shown) == 1 and "⚠️ Training controls need the password" in shown[0]
    assert "No training run is in progress" in str(pressed(fns["stop_training"], "s3cret", None)[1])
    with pytest.raises(gr.Error, match="hidden=0 is out of range"):
        list(fns["start_training"](*start_args(password="s3cret", hidden=0)))
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()


@pytest.mark.parametrize("case", ["busy", "nothing to stop", "too short"])
def test_a_refusal_stays_in_the_message_area_and_still_fails_the_event(settings, make_ctx, case):
    ctx = make_ctx(settings)
    fns = wired(ctx)
    with fake_trainer_running(settings.root) if case == "busy" else contextlib.nullcontext():
        call, expected = {
            "busy": ((fns["start_training"], *start_args()), "A training run is in "
                     "progress: busy"),
            "nothing to stop": ((fns["stop_training"], None, None), "No training run is in progress."),
            "too short": ((fns["start_training"], *start_args(pasted="short text")),
                          "the text has 10 characters; at least"),
        }[case]
        shown, error = pressed(*call)
    assert error is not None and expected in str(error)                # a toast, and an error for API callers
    assert len(shown) == 1 and re.match(r"^\d\d:\d\d:\d\d · ⚠️ ", shown[0]) and expected in shown[0]   # and it stays


def test_the_pages_start_sends_the_forms_patience_and_the_api_the_presets(ctx, monkeypatch):
    spawned = []
    monkeypatch.setattr(ctx.jobs, "spawn", lambda run: spawned.append(run.read_config()) or Job(run.name, 4242))
    fns = wired(ctx)
    shown, error = pressed(fns["start_training"], *start_args(patience=3))
    assert error is None and "Started run **tiny** (pid 4242)" in shown[0]
    assert spawned[0]["train_config"]["patience"] == 3
    list(fns["start_training"](*start_args(run_name="by-api")))
    assert spawned[1]["train_config"]["patience"] == PRESETS["quick"][1].get("patience", 0)


def test_start_is_off_while_a_run_trains_and_stop_is_there_only_while_one_of_yours_does(settings, ctx):
    banner, start, stop = control_states(ctx)
    assert banner == {"__type__": "update", "value": "", "visible": False}
    assert start["interactive"] is True and stop["visible"] is False
    with fake_trainer_running(settings.root):
        banner, start, stop = control_states(ctx)
        record_owner(settings.root / "busy", "their-key")
        _, _, theirs = control_states(ctx, "my-key")
        ctx.jobs.stopping.add("busy")
        _, _, stopping = control_states(ctx, "their-key")
    assert banner["visible"] and banner["value"].startswith("**Training now: busy**. Section 3 below follows")
    assert "The form is for your next run" in banner["value"]
    assert start["interactive"] is False and stop["visible"] is True      # no owner recorded: the operator's
    assert theirs["visible"] is False                                       # another browser's run: no Stop here
    assert stopping["visible"] is False                                     # pressed already: nothing more to stop


def test_the_message_under_start_says_how_the_run_ended_once_it_has(settings, ctx):
    started = actions.stamp("Started run **busy** (pid 4242): 1,000 parameters on tiny.txt.")
    with fake_trainer_running(settings.root):
        assert settled_message(ctx, started) == gr.skip()                  # still true while it trains
    RunDir(settings.root / "busy").metrics.write_text('{"step": 1234}\n')       # the newest run: the one followed
    RunDir(settings.root / "busy").write_final_status("stopped", step=1234)
    stopping = actions.stamp("Stopping **busy**: it finishes the current step and saves a final checkpoint.")
    settled = settled_message(ctx, stopping)
    assert "Stopping" not in settled
    assert settled.endswith("Run **busy** stopped at step 1,234, with a final checkpoint: **Resume** (below) "
                            "continues it.")
    RunDir(settings.root / "busy").write_final_status("finished", step=2000)
    assert "Run **busy** finished at step 2,000: generate from it" in settled_message(ctx, started)
    assert settled_message(ctx, "") == gr.skip()                            # a fresh page: nothing to replace
    RunDir(settings.root / "busy").write_status("uploaded", file="busy.safetensors")
    assert settled_message(ctx, started) == ""                              # nothing trained here: cleared


def test_the_status_of_a_run_in_progress_gives_its_settings_read_only(settings, ctx):
    with fake_trainer_running(settings.root):
        before = training_view(ctx, "busy")["status_md"]
        make_checkpoint(settings.root / "busy", corpus_text(), train_config={"batch_size": 8, "seq_len": 32,
                        "lr": 0.01, "iterations": 0, "minutes": 2.0, "patience": 5})
        status = training_view(ctx, "busy")["status_md"]
    assert before.endswith(" Its settings show with its first checkpoint.")
    assert status.endswith("Its settings: on tiny.txt (" + f"{len(corpus_text()):,} characters) · LSTM 1 x 16 · "
                           "batch 8 x 32, learning rate 0.01 · 2 min · patience 5.")
    assert "Its settings" not in training_view(ctx, "busy")["status_md"]          # not once it has ended


def test_the_buttons_follow_every_status_change_and_every_control(ctx):
    demo = create_demo(ctx.settings, ctx)
    demo.close()
    by_id = {getattr(c, "elem_id", None): c for c in demo.blocks.values()}
    deps = demo.config["dependencies"]
    controls = [d for d in deps if d["outputs"] == [by_id[e]._id for e in ("run-banner", "start-btn", "stop-btn")]]
    assert (by_id["train-status"]._id, "change") in [t for d in controls for t in d["targets"]]   # the poll redrew it
    clicks = {d["id"]: d["targets"][0][0] for d in deps if d["targets"] and d["targets"][0][1] == "click"}
    after = [clicks.get(d["trigger_after"]) for d in controls if d["targets"] == [(None, "then")]]
    assert sorted(after) == sorted(by_id[e]._id for e in ("start-btn", "stop-btn", "resume-btn"))
    settles = [d for d in deps if d["outputs"] == [by_id["train-message"]._id]
               and (by_id["train-status"]._id, "change") in d["targets"]]
    assert settles, "the message under Start follows the status the poll redraws"


def test_the_model_line_is_drawn_inline_even_when_a_value_is_wrong(ctx):
    describe = wired(ctx)["describe_model"]
    values = preset_values("quick")
    assert list(values) == [*FORM_FIELDS, *PAGE_FIELDS]
    assert describe({"chars": 5000, "distinct": 30}, "quick", *values.values(), "auto", None).startswith("**")
    bad = describe({"chars": 5000, "distinct": 30}, "quick", *{**values, "layers": 9}.values(), "auto", None)
    assert bad.startswith("⚠️ ") and "allowed 1 to 8" in bad
    stops = describe({"chars": 5000, "distinct": 30}, "quick", *{**values, "patience": 7}.values(), "none", None)
    assert "stopping early after 7 checks" in stops
    tuned = describe({"chars": 5000, "distinct": 30}, "quick", *values.values(), "english-base", None)
    assert tuned.startswith("Fine-tuning **english-base**")                    # Start from gives the model


def test_the_preset_fills_the_form_in_field_order_with_the_hidden_size_it_set():
    values = preset_values("quick")
    assert preset_form("quick") == [*(values[name] for name in FORM_FIELDS + PAGE_FIELDS), values["hidden"]]
    assert preset_form("huge") == [gr.skip()] * (len(FORM_FIELDS) + len(PAGE_FIELDS) + 1)
    assert preset_form("auto", {"chars": 6000, "distinct": 20})[-1] == preset_values("auto", 6000)["hidden"]


def test_the_form_opens_on_the_auto_preset_with_patience_and_says_what_each_field_is(ctx):
    demo = create_demo(ctx.settings, ctx)
    demo.close()
    by_id = {getattr(c, "elem_id", None): c for c in demo.blocks.values()}
    assert by_id["preset"].value == "auto"
    assert [label for label, _ in by_id["preset"].choices][:2] == [
        "seed: the lecture's exact model, a few min", "quick: a first look, 30 s"]
    assert by_id["patience"].value == PRESETS["auto"][1]["patience"] > 0
    assert all(by_id[name.replace("_", "-")].info for name in (*FORM_FIELDS, *PAGE_FIELDS))
    assert by_id["stop-btn"].visible is False                        # nothing to stop until a run trains


def test_the_hidden_size_follows_the_minutes_unless_it_was_changed_by_hand():
    stats = {"chars": 6000, "distinct": 20}
    assert refit("auto", stats, 0.5, 384, 384) == (256, 256)        # under a minute: auto's smaller model
    assert refit("auto", stats, 3, 256, 256) == (512, 512)          # a small text: the larger model
    assert refit("auto", stats, 0.5, 300, 384) == (gr.skip(), gr.skip())        # typed by hand: left alone
    assert refit("auto", stats, 2, 512, 512) == (gr.skip(), gr.skip())          # nothing to change
    assert refit("auto", None, 0.5, 384, 384) == (gr.skip(), gr.skip())         # no text yet: nothing fitted
    assert refit("quick", stats, 0.2, 256, 256) == (gr.skip(), gr.skip())


def test_the_tab_tells_a_newcomer_that_generate_already_works(settings, make_ctx):
    assert "Generate** tab already works" not in intro(make_ctx(settings))          # no bundled model here
    make_checkpoint(settings.bundled, corpus_text())
    text = intro(make_ctx(settings))
    assert text.startswith("**New here?** The **Generate** tab already works") and "Start training" in text


def test_the_corpus_line_says_what_a_good_loss_is_for_that_text(ctx):
    line, stats = corpus_view(ctx, "bundled", "tiny.txt", None, None)
    assert line.startswith("**tiny.txt**") and f"ln {stats['distinct']} =" in line
    assert corpus_view(ctx, "paste", None, None, None) == ("⚠️ Paste some text first.", None)


def test_only_the_chosen_sources_input_is_shown():
    assert [u["visible"] for u in corpus_inputs_shown("upload")] == [False, True, False]
    assert [u["visible"] for u in corpus_inputs_shown("paste")] == [False, False, True]


# --- following a run --------------------------------------------------------------------------
def test_with_no_run_the_view_says_how_to_start(ctx):
    plot, sample, earlier, progress, status = training_view(ctx, None).values()
    assert plot is None and sample["value"] == "" and progress == "" and "No training run yet" in status


def test_the_view_of_a_run_shows_its_curve_latest_sample_and_progress(settings, ctx):
    directory = settings.root / "tiny"
    directory.mkdir(parents=True)
    for i in range(1, 21):
        rec = {"step": 10 * i, "train_loss": 4.0 / i, "chars_per_s": 500.0, "elapsed": float(i), "progress": i / 40}
        RunDir(directory).append_metrics(rec | ({"val_loss": 3.0 / i, "val_bpc": 4.0 / i, "sample": f"<{i}>"}
                                            if i % 10 == 0 else {}))
    RunDir(directory).write_status("stopped", step=200)
    plot, sample, earlier, progress, status = training_view(ctx, "tiny").values()
    assert set(plot.split) == {"train", "validation", "kept model"} and len(plot) == 23   # kept: a placeholder
    assert sample["value"] == "<20>" and sample["label"] == "Latest sample (step 200)"
    assert "&lt;10&gt;" in earlier and "step **200**" in progress
    assert status.startswith("**Stopped**: tiny at step 200")


def test_a_second_start_is_refused_and_the_refused_tab_is_shown_the_running_job(settings, ctx, fake_trainer):
    with pytest.raises(gr.Error, match="in progress: busy"):
        list(wired(ctx)["start_training"](*start_args()))
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()
    view = poll(ctx, {}, None, None)
    assert "**Training** busy" in view["status_md"]
    assert view["view"]["run"] == "busy"


def test_the_view_explains_the_kept_model_overfitting_and_the_precision(settings, ctx):
    directory = settings.root / "tiny"
    directory.mkdir(parents=True)
    measured = {"choice": "bf16", "how": "measured", "rates": {"bf16": 3e4, "float32": 2e4}}
    RunDir(directory).append_metrics({"step": 10, "train_loss": 3.0, "precision": measured})
    for i, (train, val) in enumerate([(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.1, 1.75), (0.9, 1.85)]):
        RunDir(directory).append_metrics({"step": 200 * (i + 1), "train_loss": train, "val_loss": val,
                                      "best_step": 600 if i >= 2 else 200 * (i + 1), "best_val_loss": min(val, 1.7)})
    RunDir(directory).write_status("stopped", step=1000)
    plot, _, _, progress, _ = training_view(ctx, "tiny").values()
    assert "**Kept model**: step 600, validation loss 1.700" in progress
    assert "overfitting" in progress and "the kept model is step 600's, the best one" in progress
    assert "**Precision**: bf16" in progress and "bf16 ran at 1.50x" in progress
    assert plot[plot.split == "kept model"].step.tolist() == [600]


def test_a_killed_trainer_leaves_its_run_interrupted_and_the_app_serving(settings, ctx):
    fns = wired(ctx)
    message = list(fns["start_training"](*start_args()))[-1]
    assert "Started run **tiny**" in message
    assert (settings.root / "tiny" / "corpus.txt").read_text(encoding="utf-8") == corpus_text()
    wait_for(lambda: ctx.jobs.state("tiny")["state"] == "running", what="the trainer to run")
    with pytest.raises(gr.Error, match="in progress: tiny"):
        list(fns["start_training"](*start_args(run_name="second")))
    os.killpg(ctx.jobs.proc.pid, signal.SIGKILL)
    ctx.jobs.proc.wait(timeout=30)
    assert ctx.jobs.active() is None
    status = poll(ctx, {}, None, None)["status_md"]
    assert status.startswith("**Interrupted**: tiny")
    assert "train.log" not in status and (settings.root / "tiny" / "train.log").exists()
    assert "No training run is in progress" in str(pressed(fns["stop_training"], None, None)[1])   # the handlers answer


def test_a_trainer_that_fails_at_start_up_shows_its_error(settings, ctx, monkeypatch):
    # let a too-short text past the app's check, so that the trainer itself refuses it
    monkeypatch.setattr(actions, "check_corpus", lambda text, cfg: len(set(text)))
    list(wired(ctx)["start_training"](*start_args(pasted="short")))
    ctx.jobs.proc.wait(timeout=60)
    status = poll(ctx, {}, None, None)["status_md"]
    assert "ended before training began (exit status 2)" in status and "error:" in status
    assert "\n```\n" in status                                # the log is fenced, not read as Markdown


def test_poll_skips_what_did_not_change_and_selects_a_new_run(settings, ctx):
    make_checkpoint(settings.root / "first", corpus_text())
    first = poll(ctx, {}, None, None)
    assert first["checkpoint"]["value"] == "first"
    again = poll(ctx, first["view"], "first", None)
    assert list(again) == ["view"]                              # nothing changed: nothing else is sent
    make_checkpoint(settings.root / "second", corpus_text())
    third = poll(ctx, again["view"], "first", None)
    assert third["checkpoint"]["value"] == "second" and [c[1] for c in third["checkpoint"]["choices"]][0] == "second"
    assert not set(TRAIN_VIEW) & set(third)                    # the followed run's files did not change


def test_poll_redraws_the_followed_run_when_its_files_change(settings, ctx):
    make_checkpoint(settings.root / "first", corpus_text())
    RunDir(settings.root / "first").append_metrics({"step": 10, "train_loss": 3.0})
    shown = poll(ctx, {}, "first", None)
    assert shown["view"]["run"] == "first" and "step **10**" in shown["progress_md"]
    RunDir(settings.root / "first").append_metrics({"step": 20, "train_loss": 2.0})
    redrawn = poll(ctx, shown["view"], "first", None)
    assert "step **20**" in redrawn["progress_md"] and "checkpoint" not in redrawn


# --- samples over time: a run's timeline, the earlier samples, poll's review picker -------------
def write_metrics(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RunDir.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def sample_records(n):
    out = []
    for i in range(1, n + 1):
        out.append({"step": i * 10, "train_loss": 3.0 / i, "elapsed": float(i)})
        if i % 5 == 0:
            out[-1] |= {"val_loss": 4.0 / i, "sample": f"text <{i}> & more"}
    return out


def timeline_rows(markup: str) -> list[tuple[int, str]]:
    rows = re.findall(r"<strong>step ([\d,]+)</strong>.*?<td style='vertical-align:top'>([^<]*)", markup)
    return [(int(step.replace(",", "")), loss) for step, loss in rows]


def test_a_runs_timeline_or_what_is_wrong_with_the_pick(settings, ctx):
    assert "Pick a run" in timeline_of(ctx, None)
    assert timeline_of(ctx, "../x").startswith("<p>⚠️ ") and "invalid run name" in timeline_of(ctx, "../x")
    (settings.root / "tiny").mkdir(parents=True)
    for step in (100, 200):
        RunDir(settings.root / "tiny").append_metrics({"step": step, "val_loss": 3.0 / step, "sample": f"s{step}"})
    assert timeline_of(ctx, "tiny").startswith("<p><strong>tiny</strong>: 2 samples from step 100 to step 200")


def test_timeline_lists_a_runs_samples_with_steps_in_order_and_losses(ctx):
    write_metrics(ctx.settings.root / "tiny", sample_records(50))
    markup = timeline_of(ctx, "tiny")
    rows = timeline_rows(markup)
    assert [s for s, _ in rows] == list(range(50, 501, 50))                 # every sample, the last one included
    assert rows[0][1] == f"{4.0 / 5:.3f}" and rows[-1][1] == f"{4.0 / 50:.3f}"
    assert "&lt;5&gt; &amp; more" in markup and "<5>" not in markup
    assert "10 samples from step 50 to step 500" in markup and "0.800 → 0.080" in markup


@pytest.mark.parametrize("fields", [{}, {"timeline_samples": 7}])
def test_a_long_timeline_is_thinned_keeping_the_first_and_last(settings, make_ctx, fields):
    ctx = make_ctx(dataclasses.replace(settings, **fields))
    write_metrics(ctx.settings.root / "tiny", sample_records(1000))
    steps = [s for s, _ in timeline_rows(timeline_of(ctx, "tiny"))]
    assert len(steps) == ctx.settings.timeline_samples == fields.get("timeline_samples", 40)
    assert steps[0] == 50 and steps[-1] == 10_000 and steps == sorted(steps)


def test_the_bundled_run_has_a_timeline_and_a_run_without_samples_says_so(ctx):
    write_metrics(ctx.settings.bundled, sample_records(10))
    assert [s for s, _ in timeline_rows(timeline_of(ctx, BUNDLED_KEY))] == [50, 100]
    assert "no samples yet" in timeline_of(ctx, "nothing-here")


def test_an_uploaded_model_says_it_trained_elsewhere_instead_of_no_samples_yet(settings, ctx):
    make_checkpoint(settings.root / "added", corpus_text())
    RunDir(settings.root / "added").write_status("uploaded", file="added.safetensors")    # as add_model writes it
    markup = timeline_of(ctx, "added")
    assert "no samples yet" not in markup
    assert "added is an uploaded model: it was trained elsewhere, so no samples were recorded here" in markup
    assert training_view(ctx, "added")["status_md"].startswith("**Uploaded**: added, a model trained elsewhere")


def test_the_live_timeline_ends_with_the_latest_sample(ctx):
    markup = samples_html(sample_records(50), ctx.settings.earlier_samples)
    assert [s for s, _ in timeline_rows(markup)] == list(range(50, 501, 50))


def test_poll_offers_the_runs_for_review_and_keeps_the_choice(settings, ctx):
    make_checkpoint(settings.root / "tiny", corpus_text())
    make_checkpoint(settings.root / "other", corpus_text())
    first = poll(ctx, {}, None, None, None)
    review = first["review_run"]
    assert {key for _, key in review["choices"]} == {"tiny", "other"}
    assert review["value"] == first["checkpoint"]["value"]
    again = poll(ctx, first["view"], first["checkpoint"]["value"], None, "tiny")
    assert "review_run" not in again
    make_checkpoint(settings.root / "third", corpus_text())
    third = poll(ctx, again["view"], "tiny", None, "other")
    assert third["review_run"]["value"] == "other" and "third" in {key for _, key in third["review_run"]["choices"]}


# --- the checkpoint lists ---------------------------------------------------------------------
def test_checkpoint_updates_offer_the_runs_the_resumable_ones_and_keep_the_review(settings, ctx):
    make_checkpoint(settings.root / "older", corpus_text())
    RunDir(settings.root / "older").save_train_state(10, {})
    make_checkpoint(settings.root / "newer", corpus_text())
    picker, info, resume, reviewed, keys = checkpoint_updates(ctx, None, [], "older")
    assert set(keys) == {"older", "newer"} and picker["value"] == keys[0]
    assert info == describe_checkpoint(ctx, keys[0]) and "10 steps" in info
    assert resume["choices"] == ["older"] and resume["value"] == "older"
    assert reviewed["value"] == "older" and reviewed["choices"] == picker["choices"]
    _, _, resume, reviewed, _ = checkpoint_updates(ctx, "newer", keys, "gone")
    assert reviewed["value"] == "newer"


@pytest.mark.parametrize("dropout, advice", [(0.7, "It already trained with dropout 0.7, so next time give it more "
                                                    "text or a smaller model"),
                                             (0.0, "Next time, give it more text, more dropout")])
def test_the_overfitting_advice_reads_the_runs_dropout(settings, ctx, dropout, advice):
    """A run that already trained with strong dropout (auto's on a small text) is not told to add more."""
    directory = settings.root / "memorised"
    text = corpus_text()
    config = ModelConfig(vocab_size=len(Vocab.from_text(text)), embed=8, hidden=16, dropout=dropout).to_dict()
    make_checkpoint(directory, text, step=600, model_config=config)
    records = [{"step": 200 * (i + 1), "train_loss": train, "val_loss": val, "elapsed": float(i + 1)}
               for i, (train, val) in enumerate([(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.1, 1.75), (0.9, 1.85)])]
    (directory / RunDir.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    RunDir(directory).write_status("finished", step=1000, best_step=600, best_val_loss=1.7)
    progress = training_view(ctx, "memorised")["progress_md"]
    assert "learn the text by heart (overfitting)" in progress and advice in progress


def test_the_training_view_follows_a_runs_metrics_incrementally_and_says_what_is_damaged(ctx, settings):
    (settings.root / "r").mkdir(parents=True)
    RunDir(settings.root / "r").append_metrics({"step": 10, "train_loss": 2.0})
    training_view(ctx, "r")
    reader = ctx.readers.get("r", lambda: pytest.fail("the view keeps one reader per run"))
    with open(settings.root / "r" / RunDir.METRICS, "a", encoding="utf-8") as f:
        f.write('{"step": 999, "val_loss": "x"}\n')
    RunDir(settings.root / "r").append_metrics({"step": 20, "train_loss": 1.5})
    status = training_view(ctx, "r")["status_md"]
    assert [r["step"] for r in reader.records()] == [10, 20]
    assert "metrics.jsonl: 1 damaged line skipped (line 2: val_loss is text, not a number)" in status


def test_a_newcomers_page_opens_on_the_operators_model_and_no_other_visitors_run_takes_it_over(settings, ctx):
    make_checkpoint(settings.root / "operators", corpus_text())                  # from the CLI: no owner
    make_checkpoint(settings.root / "alices", corpus_text())
    record_owner(settings.root / "alices", "alice")
    first = poll(ctx, {}, None, None, key="bob")
    assert first["checkpoint"]["value"] == "operators"                           # not the newest, alice's
    make_checkpoint(settings.root / "alices-second", corpus_text())
    record_owner(settings.root / "alices-second", "alice")
    later = poll(ctx, first["view"], "operators", None, key="bob")
    assert later["checkpoint"]["value"] == "operators"                           # bob's page stays where it was
    mine = poll(ctx, {}, None, None, key="alice")
    assert mine["checkpoint"]["value"] == "alices-second"                        # alice's opens on her newest


def test_the_intro_says_what_closing_the_page_does_where_runs_train_in_bursts(settings, make_ctx):
    assert "goes on if you close the page" in intro(make_ctx(settings))
    bursting = intro(make_ctx(dataclasses.replace(settings, gpu_bursts=True)))
    assert "closing the page ends the burst" in bursting and "goes on if you close" not in bursting
