"""The gradio side of the Train tab and the poll (webui.train_tab, webui.demo, webui.glue), called in-process, with
the review of a run's samples over time. (describe_checkpoint, the Generate tab's line: test_generate_tab.py.)

The tab's event handlers are taken from a built ``create_demo`` (no server): they are exactly what gradio calls,
positionally, with the values of the wired components; refusals reach the page as ``gr.Error``.
"""
from __future__ import annotations

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

from charrnn import checkpoint as ck
from charrnn.data import CorpusError
from charrnn.runner import build_corpus
from webui import actions, glue
from webui.context import AppContext
from webui.demo import checkpoint_updates, create_demo, poll
from webui.errors import UserError
from webui.forms import FORM_FIELDS, preset_values
from webui.generate_tab import describe_checkpoint
from webui.models import BUNDLED_KEY
from webui.render import samples_html
from webui.train_tab import START_INPUTS, corpus_inputs_shown, preset_form, timeline_of, training_view

VIEW = ("plot", "sample", "earlier", "progress", "status")          # training_view's outputs, poll's first five


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


def start_args(**changes) -> list:
    """/start_training's inputs, in order, as gradio passes them."""
    values = dict(password=None, source="paste", bundled_name=None, upload=None, pasted=corpus_text(),
                  run_name="tiny", **TINY_TRAINING)
    values.update(changes)
    return [values[name] for name in START_INPUTS]


@pytest.fixture
def fake_trainer(settings):
    """A sleeping process that looks like a trainer (charrnn on its command line), and a run whose status names it."""
    with fake_trainer_running(settings.root) as proc:
        yield proc


# --- glue: where refusals become gr.Error --------------------------------------------------
def test_the_handler_turns_a_user_error_into_a_gr_error():
    def refuse(x):
        raise UserError(f"No **{x}** here.")

    with pytest.raises(gr.Error, match=r"No \*\*thing\*\* here\.") as raised:
        glue.handler(refuse)("thing")
    assert not isinstance(raised.value, UserError)
    assert glue.handler(refuse, inline=lambda m: f"⚠️ {m}")("thing") == "⚠️ No **thing** here."
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
    start = wired(ctx)["start_training"]
    assert tuple(inspect.signature(start).parameters) == START_INPUTS
    assert START_INPUTS == ("password", "source", "bundled_name", "upload", "pasted", "preset", *FORM_FIELDS,
                            "run_name")
    demo = create_demo(ctx.settings, ctx)
    api = demo.get_api_info()["named_endpoints"]["/start_training"]["parameters"]
    demo.close()
    assert tuple(p["parameter_name"] for p in api) == START_INPUTS


def test_the_wired_handlers_refuse_with_gr_errors(settings, make_ctx):
    ctx = make_ctx(dataclasses.replace(settings, password="s3cret"))
    fns = wired(ctx)
    for call in (lambda pw: fns["start_training"](*start_args(password=pw)),
                 lambda pw: fns["stop_training"](pw),
                 lambda pw: fns["resume_training"](pw, "x", 0, 0)):
        with pytest.raises(gr.Error, match="password"):
            call("wrong")
    with pytest.raises(gr.Error, match="No training run is in progress"):
        fns["stop_training"]("s3cret")
    with pytest.raises(gr.Error, match="hidden=0 is out of range"):
        fns["start_training"](*start_args(password="s3cret", hidden=0))
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()


def test_a_bad_upload_is_described_inline_with_the_reason(ctx, tmp_path):
    describe = wired(ctx)["describe_corpus"]
    for content, message in ((b"", "empty"), (b"\x00\x01binary\x00", "binary"), (b"caf\xe9 au lait", "not valid")):
        path = tmp_path / "upload.txt"
        path.write_bytes(content)
        line, stats = describe("upload", None, str(path), None)
        assert line.startswith("⚠️ ") and message in line and stats is None
    line, stats = describe("bundled", "tiny.txt", None, None)
    assert f"{len(corpus_text()):,} characters" in line and stats["chars"] == len(corpus_text())


def test_the_model_line_is_drawn_inline_even_when_a_value_is_wrong(ctx):
    describe = wired(ctx)["describe_model"]
    values = preset_values("quick")
    assert describe({"chars": 5000, "distinct": 30}, "quick", *values.values()).startswith("**")
    bad = describe({"chars": 5000, "distinct": 30}, "quick", *{**values, "layers": 9}.values())
    assert bad.startswith("⚠️ ") and "allowed 1 to 8" in bad


def test_the_preset_fills_the_form_in_field_order():
    assert preset_form("quick") == [preset_values("quick")[name] for name in FORM_FIELDS]
    assert preset_form("huge") == [gr.skip()] * len(FORM_FIELDS)


def test_only_the_chosen_sources_input_is_shown():
    assert [u["visible"] for u in corpus_inputs_shown("upload")] == [False, True, False]
    assert [u["visible"] for u in corpus_inputs_shown("paste")] == [False, False, True]


# --- following a run --------------------------------------------------------------------------
def test_with_no_run_the_view_says_how_to_start(ctx):
    plot, sample, earlier, progress, status = training_view(ctx, None)
    assert plot is None and sample["value"] == "" and progress == "" and "No training run yet" in status


def test_the_view_of_a_run_shows_its_curve_latest_sample_and_progress(settings, ctx):
    directory = settings.root / "tiny"
    directory.mkdir(parents=True)
    for i in range(1, 21):
        rec = {"step": 10 * i, "train_loss": 4.0 / i, "chars_per_s": 500.0, "elapsed": float(i), "progress": i / 40}
        ck.append_metrics(directory, rec | ({"val_loss": 3.0 / i, "val_bpc": 4.0 / i, "sample": f"<{i}>"}
                                            if i % 10 == 0 else {}))
    ck.write_status(directory, "stopped", step=200)
    plot, sample, earlier, progress, status = training_view(ctx, "tiny")
    assert set(plot.split) == {"train", "validation"} and len(plot) == 22
    assert sample["value"] == "<20>" and sample["label"] == "Latest sample (step 200)"
    assert "&lt;10&gt;" in earlier and "step **200**" in progress
    assert status.startswith("**Stopped**: tiny at step 200")


def test_a_second_start_is_refused_and_the_refused_tab_is_shown_the_running_job(settings, ctx, fake_trainer):
    with pytest.raises(gr.Error, match="in progress: busy"):
        wired(ctx)["start_training"](*start_args())
    assert ctx.jobs.proc is None and not (settings.root / "tiny").exists()
    view = poll(ctx, {}, None, None)
    assert "**Training** busy" in view[4]
    assert view[-1]["run"] == "busy"


def test_a_killed_trainer_leaves_its_run_interrupted_and_the_app_serving(settings, ctx):
    fns = wired(ctx)
    message = fns["start_training"](*start_args())
    assert "Started run **tiny**" in message
    assert (settings.root / "tiny" / "corpus.txt").read_text(encoding="utf-8") == corpus_text()
    wait_for(lambda: ctx.jobs.state("tiny")["state"] == "running", what="the trainer to run")
    with pytest.raises(gr.Error, match="in progress: tiny"):
        fns["start_training"](*start_args(run_name="second"))
    os.killpg(ctx.jobs.proc.pid, signal.SIGKILL)
    ctx.jobs.proc.wait(timeout=30)
    assert ctx.jobs.active() is None
    status = poll(ctx, {}, None, None)[4]
    assert status.startswith("**Interrupted**: tiny")
    assert "train.log" not in status and (settings.root / "tiny" / "train.log").exists()
    with pytest.raises(gr.Error, match="No training run is in progress"):
        fns["stop_training"](None)                            # and the handlers still answer


def test_a_trainer_that_fails_at_start_up_shows_its_error(settings, ctx, monkeypatch):
    # let a too-short text past the app's check, so that the trainer itself refuses it
    monkeypatch.setattr(actions, "build_corpus", lambda text, cfg: build_corpus(corpus_text(), cfg))
    wired(ctx)["start_training"](*start_args(pasted="short"))
    ctx.jobs.proc.wait(timeout=60)
    status = poll(ctx, {}, None, None)[4]
    assert "ended before training began (exit status 2)" in status and "error:" in status
    assert "\n```\n" in status                                # the log is fenced, not read as Markdown


def test_poll_skips_what_did_not_change_and_selects_a_new_run(settings, ctx):
    make_checkpoint(settings.root / "first", corpus_text())
    first = poll(ctx, {}, None, None)
    assert first[5]["value"] == "first"
    again = poll(ctx, first[-1], "first", None)
    assert all(out == gr.skip() for out in again[:-1])
    make_checkpoint(settings.root / "second", corpus_text())
    third = poll(ctx, again[-1], "first", None)
    assert third[5]["value"] == "second" and [c[1] for c in third[5]["choices"]][0] == "second"
    assert third[:5] == (gr.skip(),) * 5                       # the followed run's files did not change


def test_poll_redraws_the_followed_run_when_its_files_change(settings, ctx):
    make_checkpoint(settings.root / "first", corpus_text())
    ck.append_metrics(settings.root / "first", {"step": 10, "train_loss": 3.0})
    shown = poll(ctx, {}, "first", None)
    assert shown[-1]["run"] == "first" and "step **10**" in shown[3]
    ck.append_metrics(settings.root / "first", {"step": 20, "train_loss": 2.0})
    redrawn = poll(ctx, shown[-1], "first", None)
    assert "step **20**" in redrawn[3] and redrawn[5] == gr.skip()


# --- samples over time: a run's timeline, the earlier samples, poll's review picker -------------
def write_metrics(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ck.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


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
        ck.append_metrics(settings.root / "tiny", {"step": step, "val_loss": 3.0 / step, "sample": f"s{step}"})
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


def test_the_live_timeline_ends_with_the_latest_sample(ctx):
    markup = samples_html(sample_records(50), ctx.settings.earlier_samples)
    assert [s for s, _ in timeline_rows(markup)] == list(range(50, 501, 50))


def test_poll_offers_the_runs_for_review_and_keeps_the_choice(settings, ctx):
    make_checkpoint(settings.root / "tiny", corpus_text())
    make_checkpoint(settings.root / "other", corpus_text())
    first = poll(ctx, {}, None, None, None)
    review = first[8]
    assert {key for _, key in review["choices"]} == {"tiny", "other"} and review["value"] == first[5]["value"]
    again = poll(ctx, first[-1], first[5]["value"], None, "tiny")
    assert again[8] == gr.skip()
    make_checkpoint(settings.root / "third", corpus_text())
    third = poll(ctx, again[-1], "tiny", None, "other")
    assert third[8]["value"] == "other" and "third" in {key for _, key in third[8]["choices"]}


# --- the checkpoint lists ---------------------------------------------------------------------
def test_checkpoint_updates_offer_the_runs_the_resumable_ones_and_keep_the_review(settings, ctx):
    make_checkpoint(settings.root / "older", corpus_text())
    ck.save_train_state(settings.root / "older", 10, {})
    make_checkpoint(settings.root / "newer", corpus_text())
    picker, info, resume, reviewed, keys = checkpoint_updates(ctx, None, [], "older")
    assert set(keys) == {"older", "newer"} and picker["value"] == keys[0]
    assert info == describe_checkpoint(ctx, keys[0]) and "10 steps" in info
    assert resume["choices"] == ["older"] and resume["value"] == "older"
    assert reviewed["value"] == "older" and reviewed["choices"] == picker["choices"]
    _, _, resume, reviewed, _ = checkpoint_updates(ctx, "newer", keys, "gone")
    assert reviewed["value"] == "newer"
