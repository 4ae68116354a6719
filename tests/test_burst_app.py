"""webui.train.burst: on ZeroGPU (here ``Settings.gpu_bursts``, on the CPU) Start and Resume train in the visitor's
own event, in bursts of the seconds chosen, streaming the Train tab's view and leaving the run folder the background
trainer leaves.

The handlers run as wired, ``@spaces.GPU`` applied: off a ZeroGPU Space the decorator does nothing. No assertion
depends on how many steps a burst of a second trains.
"""
import pickle

import gradio as gr
import pytest
from app_fixtures import TINY_TRAINING, app_settings

from charrnn.runs.burst import training_now
from charrnn.runs.jobs import JobError, resumable_runs
from charrnn.runs.store import RunDir
from webui.context import AppContext
from webui.errors import UserError
from webui.settings import Settings, settings_from_env
from webui.train import burst
from webui.train import tab as train_tab
from webui.train.tab import START_INPUTS, TRAIN_VIEW

FORM = {k: v for k, v in TINY_TRAINING.items() if k != "preset"}


@pytest.fixture
def ctx(tmp_path):
    return AppContext(app_settings(tmp_path, corpus=True, gpu_bursts=True, poll_seconds=0.05))


def built(ctx):
    """The Train tab built and wired in a Blocks, as the demo does."""
    with gr.Blocks() as demo:
        t = train_tab.build(ctx)
        t.key = gr.BrowserState(None)          # the demo makes one per page (webui.owners)
        train_tab.wire(ctx, t)
    t.demo = demo
    return t


@pytest.fixture
def tab(ctx):
    return built(ctx)


def by_api(tab, name: str):
    """The handler wired under API name ``name``, and the components it writes."""
    fn = next(f for f in tab.demo.fns.values() if f.api_name == name)
    return fn.fn, fn.outputs


def start_args(seconds, run_name="burst", key="mine") -> list:
    """/start_training's arguments as the page sends them, the burst's seconds last."""
    named = {"password": None, "source": "bundled", "bundled_name": "tiny.txt", "upload": None, "pasted": None,
             "preset": TINY_TRAINING["preset"], **FORM, "run_name": run_name, "key": key, "patience": None,
             "start_from": None}
    return [named[name] for name in START_INPUTS] + [seconds]


def named(tab, view: dict) -> dict:
    """A streamed update keyed by component name instead of component."""
    names = {id(getattr(tab, name)): name for name in (*TRAIN_VIEW, "message", "stop_btn")}
    return {names[id(component)]: value for component, value in view.items()}


# --- where bursts are on ------------------------------------------------------------------------------------------
def test_bursts_are_on_where_set_or_on_zerogpu_and_the_decorator_is_inert_elsewhere(tmp_path):
    assert settings_from_env({"CHARRNN_GPU_BURSTS": "1"}).gpu_bursts
    assert not burst.enabled(Settings(root=tmp_path))                  # SPACES_ZERO_GPU is not set here
    assert not hasattr(burst.gpu_burst, "zerogpu")                     # spaces marks the functions it wraps
    assert built(AppContext(app_settings(tmp_path))).burst_seconds is None


def test_a_burst_asks_for_its_seconds_within_an_unauthenticated_visitors_quota():
    assert burst.burst_duration("root", "run", 30.0) == 30.0 + burst.BURST_MARGIN_S
    assert burst.burst_duration("root", "run", burst.MAX_BURST_S) <= 120          # 2 GPU minutes a day
    assert burst.burst_seconds(500) == burst.MAX_BURST_S and burst.burst_seconds(2.5) == 2.5
    assert burst.burst_seconds(None) == burst.MAX_BURST_S                 # an API caller who gives none
    for bad in (0, -1, float("nan"), "ten", True):
        with pytest.raises(UserError, match="Seconds to train"):
            burst.burst_seconds(bad)
    hint = burst.seconds_hint()
    assert f"{burst.MAX_BURST_S:g} s" in hint and "2 minutes" in hint and "Generating text never" in hint


def test_the_form_says_how_long_a_burst_is_and_whose_quota_it_spends(tab):
    assert tab.burst_seconds.value == burst.MAX_BURST_S and tab.burst_seconds.info == burst.seconds_hint()


# --- Start, Resume --------------------------------------------------------------------------------------------
def test_start_trains_a_burst_streams_the_view_and_leaves_a_resumable_run(tab, ctx):
    start, outputs = by_api(tab, "start_training")
    assert list(outputs) == [*(getattr(tab, name) for name in TRAIN_VIEW), tab.message, tab.stop_btn]
    views = [named(tab, v) for v in start(*start_args(1))]

    *training, after = views
    assert len(training) >= 2 and all(set(v) == {*TRAIN_VIEW, "message", "stop_btn"} for v in training)
    assert all(v["stop_btn"]["visible"] is True for v in training) and after == {"stop_btn": after["stop_btn"]}
    assert after["stop_btn"]["visible"] is False                         # Stop while it trains, gone after
    views = training
    assert "Started run **burst**" in views[0]["message"] and "trains 1 s now" in views[0]["message"]
    assert "**Training** burst in a burst of 1 s" in views[0]["status_md"]
    assert views[-1]["status_md"].startswith("**Stopped**: burst") and views[-1]["loss_plot"] is not None
    run = RunDir(ctx.settings.root / "burst")
    for name in (RunDir.WEIGHTS, RunDir.LATEST, RunDir.METRICS, RunDir.CONFIG, "loss.png", "owner.json"):
        assert run.file(name).is_file(), name
    status = run.status_as_written()
    assert status["state"] == "stopped" and run.resume_step() == status["step"] == run.records()[-1]["step"]
    assert "burst" in [r["name"] for r in resumable_runs(ctx.settings.root)]

    resume, _ = by_api(tab, "resume_training")
    more = [named(tab, v) for v in resume(None, "burst", 0, 0, "mine", 1)][:-1]
    assert f"Resumed **burst** from step {status['step']:,}" in more[0]["message"]
    assert more[-1]["status_md"].startswith("**Stopped**: burst")
    assert run.status()["state"] == "stopped" and run.resume_step() >= status["step"]


def test_a_visitor_who_leaves_mid_burst_leaves_a_stopped_run_with_its_steps_saved(tab, ctx):
    start, _ = by_api(tab, "start_training")
    stream = start(*start_args(burst.MAX_BURST_S, run_name="left"))
    view = named(tab, next(stream))
    while "at step" not in view["status_md"]:                # training: a record came back
        view = named(tab, next(stream))
    run = RunDir(ctx.settings.root / "left")
    assert training_now(run)
    stream.close()                                           # the tab closed: gradio closes the event's generator

    status = run.status_as_written()
    assert status["state"] == "stopped" and not training_now(run)
    assert run.resume_step() == status["step"] == run.records()[-1]["step"] > 0


def test_only_the_runs_owner_may_resume_it_in_a_burst(tab, ctx):
    start, _ = by_api(tab, "start_training")
    list(start(*start_args(1, run_name="owned")))
    resume, _ = by_api(tab, "resume_training")
    refused = resume(None, "owned", 0, 0, "someone else", 1)
    assert "⚠️" in named(tab, next(refused))["message"]
    with pytest.raises(gr.Error):
        next(refused)


def test_a_run_bursting_now_is_not_burst_twice(ctx):
    bursts, run = burst.Bursts(), RunDir(ctx.settings.root / "busy")
    with bursts.holding(run):
        with pytest.raises(JobError, match="training now"):
            with bursts.holding(run):
                pass
    with bursts.holding(run):                                # released when its burst ended
        pass


# --- what crosses from ZeroGPU's worker ------------------------------------------------------------------------
def test_a_bursts_records_cross_a_process_boundary_and_a_stated_failure_comes_back_in_words(tab, ctx):
    start, _ = by_api(tab, "start_training")
    list(start(*start_args(1, run_name="crossing")))
    for rec in burst.gpu_burst(str(ctx.settings.root), "crossing", 0.5):
        assert pickle.loads(pickle.dumps(rec)) == rec       # ZeroGPU sends each one back pickled

    RunDir(ctx.settings.root / "crossing").corpus_path().unlink()      # its text is gone: refused in words
    out = list(burst.gpu_burst(str(ctx.settings.root), "crossing", 0.5))
    assert len(out) == 1 and "corpus" in out[0]["error"]


def test_stop_cancels_this_pages_burst_and_says_so(tab):
    fns = tab.demo.fns.values()
    bursts = {f._id for f in fns if f.api_name in ("start_training", "resume_training")}
    on_stop = [f for f in fns if any(target[0] == tab.stop_btn._id for target in f.targets)]
    cancel = [f for f in on_stop if f.is_cancel_function]
    assert len(cancel) == 1 and set(cancel[0].cancels) == bursts     # Gradio cancels the event: the burst closes
    said = [f for f in on_stop if f.fn is not None]
    message, hidden = said[0].fn()
    assert "Stopped: the burst saved its steps" in message and hidden["visible"] is False
