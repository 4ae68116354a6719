"""The Train tab: pick a text and a recipe, start, stop and resume a run, and watch it learn, with every field, preset
and number explained in plain words for someone who has never trained a model."""
from __future__ import annotations

import contextlib
import functools
from types import SimpleNamespace

import gradio as gr

from charrnn.config import DEFAULT_PRESET, PRESETS
from charrnn.runs.store import RunDir
from charrnn.runs.weights import CheckpointError
from webui.context import AppContext
from webui.glue import ERRORS, QUIET, WholeNumber, handler, message_of
from webui.models import list_checkpoints, run_directory
from webui.owners import may_control
from webui.train import actions, burst, startfrom
from webui.train import browser as in_browser
from webui.train.compare import X_AXES, compare_runs, settings_table
from webui.train.forms import (
    FIELD_HINTS,
    FORM_FIELDS,
    PAGE_FIELDS,
    PRESET_PURPOSES,
    SOURCES,
    bundled_corpora,
    fitted_hidden,
    form_option,
    preset_values,
)
from webui.train.metrics import MetricsReader
from webui.train.render import (
    active_banner,
    ended_line,
    kept_line,
    latest_sample,
    loss_guide,
    overfit_note,
    overfitting,
    plot_value,
    precision_line,
    progress_line,
    run_settings,
    run_timeline,
    samples_html,
    status_line,
)

# /start_training's inputs, in order: patience comes last, so an API caller that omits it gets the preset's
START_INPUTS = ("password", "source", "bundled_name", "upload", "pasted", "preset", *FORM_FIELDS, "run_name", "key",
                *PAGE_FIELDS, "start_from")
RESUME_INPUTS = ("password", "run", "more_iterations", "more_minutes", "key")
FIELD_ROWS = (("hidden", "layers", "seq_len"), ("batch_size", "lr"), ("iterations", "minutes", "patience"))
PASTED = "pasted"                 # the pasted text box: the one input whose events may be large (webui.fair)
POLLED = ["charrnn-polled"]       # outputs of the poll: their hidden status trackers are not drawn (train_style.CSS)
PLOT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e", "kept model": "#2ca02c"}
PLOT_HELP = ("**Reading the plot.** The loss is the model's surprise at each next character, in *nats per "
             "character* (natural log; 1 nat = 1.44 bits): lower is better. **train** is measured on the 90% of the "
             "text it learns from; **validation** (dots) on the last 10%, which it never trains on: the honest score. "
             "**◇** marks the kept model, the step with the best validation loss: the one the Generate tab uses.")


FIELD_CLASS = "charrnn-field"       # the form's number boxes (train_style lines their inputs up across a row)


def form_field(name: str, value) -> gr.components.Component:
    """The input of config field ``name``: a whole-number box for an int field, else a number box."""
    opt = form_option(name)
    elem_id = name.replace("_", "-")
    kind = WholeNumber if opt.type is int else gr.Number
    extra = {"precision": 0} if opt.type is int else {}
    return kind(value, label=opt.label, info=FIELD_HINTS.get(name), elem_id=elem_id, elem_classes=[FIELD_CLASS],
                **extra)


def intro(ctx: AppContext) -> str:
    """What a newcomer landing on the tab needs first: that Generate already works, and the three steps here."""
    bundled = (ctx.settings.bundled / RunDir.WEIGHTS).is_file()
    ready = ("**New here?** The **Generate** tab already works: it comes with a model trained on Shakespeare, ready "
             "to write. " if bundled else "")
    return (f"{ready}Here you train a model of your own: pick a text (1), a recipe (2; *auto* fits itself to the "
            "text), press **Start training** and watch it learn (3): the loss falls and the samples turn from "
            "gibberish into words. " + (
                "Here a run trains in short bursts (on a GPU where there is one), each as long as you choose; closing "
                "the page ends the burst, and the run resumes where it stopped." if burst.enabled(ctx.settings) else
                f"A run takes up to {PRESETS[DEFAULT_PRESET][1]['minutes']:g} minutes by default, and goes on if you "
                "close the page."))


def build(ctx: AppContext) -> SimpleNamespace:
    """The Train tab's components (call inside ``gr.Blocks``)."""
    settings = ctx.settings
    corpora = bundled_corpora(settings.data_dir)
    first = corpora[0] if corpora else None
    corpus_md, stats = corpus_view(ctx, "bundled", first, None, None)
    values = preset_values(DEFAULT_PRESET, stats and stats["chars"])
    t = SimpleNamespace(corpus_stats=gr.State(stats), fitted=gr.State(values["hidden"]))
    gr.Markdown(intro(ctx), elem_id="train-intro")
    t.banner = gr.Markdown(visible=False, elem_id="run-banner", elem_classes=POLLED)
    with gr.Row():
        with gr.Column(min_width=320):
            gr.Markdown("### 1. Text")
            t.source = gr.Radio(SOURCES, value="bundled", label="Corpus", elem_id="corpus-source")
            t.bundled_name = gr.Dropdown(corpora, value=first, label="Bundled corpus", elem_id="bundled-corpus")
            t.upload = gr.File(file_types=[".txt"], type="filepath", label="Upload a UTF-8 .txt file",
                               visible=False, elem_id="upload")
            t.pasted = gr.Textbox(lines=8, max_lines=16, label="Paste text", visible=False, elem_id=PASTED,
                                  placeholder=f"At least a few hundred characters, at most "
                                              f"{settings.max_corpus_bytes // 2**20} MiB.")
            t.corpus_md = gr.Markdown(corpus_md, elem_id="corpus-info")
        with gr.Column(min_width=320):
            gr.Markdown("### 2. Model and training")
            t.preset = gr.Dropdown([(f"{name}: {PRESET_PURPOSES.get(name, '')}", name) for name in PRESETS],
                                   value=DEFAULT_PRESET, label="Preset", elem_id="preset",
                                   info="A recipe: the model's size and how it trains. Any field below can be "
                                        "changed.")
            t.fields = {}
            for row in FIELD_ROWS:
                with gr.Row():
                    t.fields.update({name: form_field(name, values[name]) for name in row})
            t.start_from = gr.Dropdown(startfrom.choices(settings, list_checkpoints(settings), None),
                                       value=startfrom.AUTO, label="Start from", info=startfrom.HINT,
                                       elem_id="start-from", elem_classes=POLLED)
            t.model_md = gr.Markdown(handler(actions.describe_model, inline=lambda m: f"⚠️ {m}")(
                settings, stats, DEFAULT_PRESET, values), elem_id="model-info")
            t.run_name = gr.Textbox(label="Run name (optional)", placeholder="corpus-preset-date-time",
                                    elem_id="run-name")
            t.password = gr.Textbox(label="Training password", type="password", visible=bool(settings.password))
            t.burst_seconds = gr.Number(burst.MAX_BURST_S, label="Seconds to train now", minimum=1,
                                        maximum=burst.MAX_BURST_S, info=burst.seconds_hint(),
                                        elem_id="burst-seconds") if burst.enabled(settings) else None
            with gr.Row():
                t.start_btn = gr.Button("Start training", variant="primary", elem_id="start-btn")
                t.stop_btn = gr.Button("Stop", variant="stop", visible=False, elem_id="stop-btn")   # while yours trains
            t.message = gr.Markdown(elem_id="train-message")
            with gr.Accordion("Or train in this browser: your computer, no server, no queue", open=False,
                              elem_id="browser-train-section"):
                gr.HTML(in_browser.SECTION)
    build_watch(ctx, t)
    with gr.Accordion("4. Samples over time of any run", open=False):
        gr.Markdown("Every sample a run took while training is kept with it (in its metrics.jsonl): pick a run to "
                    "review how its writing grew, step by step, as its validation loss fell.")
        t.review_run = gr.Dropdown([], label="Run", elem_id="review-run", elem_classes=POLLED)
        t.review_html = gr.HTML(timeline_of(ctx, None), elem_id="review-timeline", max_height=600)
    build_compare(ctx, t)
    with gr.Accordion("Resume a stopped run", open=False):
        with gr.Row():
            t.resume_run = gr.Dropdown([], label="Run", allow_custom_value=True, elem_id="resume-run",
                                       elem_classes=POLLED)
            t.more_iterations = WholeNumber(0, precision=0, label="More iterations", info="0 = the remaining budget")
            t.more_minutes = gr.Number(0, label="More minutes", info="used when more iterations is 0")
        t.resume_btn = gr.Button("Resume", elem_id="resume-btn")
    return t


def build_watch(ctx: AppContext, t: SimpleNamespace) -> None:
    """Section 3: the followed run's status, its loss plot with what it means beside it, and its samples."""
    gr.Markdown("### 3. Watch it learn")
    t.status_md = gr.Markdown(elem_id="train-status", elem_classes=POLLED)
    with gr.Row():
        with gr.Column(scale=3, min_width=320):
            t.loss_plot = gr.LinePlot(None, x="step", y="loss", color="split", title="Loss (nats per character)",
                                      y_title="loss", color_map=PLOT_COLOURS, height=320, elem_id="loss-plot",
                                      elem_classes=POLLED)
        with gr.Column(scale=2, min_width=320):
            t.progress_md = gr.Markdown(elem_id="train-progress", elem_classes=POLLED)
            gr.Markdown(PLOT_HELP, elem_id="plot-help")
    with gr.Row():
        with gr.Column(min_width=320):
            t.sample_box = gr.Textbox(label="Latest sample", lines=8, max_lines=12, interactive=False,
                                      elem_id="latest-sample", elem_classes=POLLED)
        with gr.Column(min_width=320):
            with gr.Accordion("Earlier samples: from gibberish to words", open=True):
                t.earlier = gr.HTML(samples_html([], ctx.settings.earlier_samples), elem_id="earlier-samples",
                                    max_height=300, elem_classes=POLLED)


def wire(ctx: AppContext, t: SimpleNamespace) -> None:
    settings = ctx.settings
    corpus_inputs = [t.source, t.bundled_name, t.upload, t.pasted]
    form = [t.fields[name] for name in FORM_FIELDS + PAGE_FIELDS]
    model_inputs = [t.corpus_stats, t.preset, *form, t.start_from, t.key]
    refit_io = ([t.preset, t.corpus_stats, t.fields["minutes"], t.fields["hidden"], t.fitted],
                [t.fields["hidden"], t.fitted])
    describe_opts = dict(**QUIET, concurrency_id="describe", concurrency_limit=1, trigger_mode="always_last")

    def describe_corpus(source, bundled_name, upload, pasted):
        return corpus_view(ctx, source, bundled_name, upload, pasted)

    def describe_model(stats, preset, *rest):
        *values, start_from, key = rest
        return actions.describe_model(settings, stats, preset, dict(zip(FORM_FIELDS + PAGE_FIELDS, values,
                                                                        strict=True)), start_from, key)

    model_md = handler(describe_model, inline=lambda m: f"⚠️ {m}")
    t.source.change(corpus_inputs_shown, t.source, [t.bundled_name, t.upload, t.pasted], **QUIET, queue=False)
    for box in corpus_inputs:
        box.change(describe_corpus, corpus_inputs, [t.corpus_md, t.corpus_stats], **describe_opts) \
            .then(refit, *refit_io, **QUIET, queue=False) \
            .then(model_md, model_inputs, t.model_md, **describe_opts)
    t.preset.change(preset_form, [t.preset, t.corpus_stats], [*form, t.fitted], **QUIET) \
        .then(model_md, model_inputs, t.model_md, **describe_opts)
    t.fields["minutes"].input(refit, *refit_io, **QUIET, queue=False) \
        .then(model_md, model_inputs, t.model_md, **describe_opts)
    for name, box in t.fields.items():
        if name != "minutes":
            box.input(model_md, model_inputs, t.model_md, **describe_opts)
    t.start_from.input(model_md, model_inputs, t.model_md, **describe_opts)
    wire_controls(ctx, t)
    t.review_run.change(lambda key: timeline_of(ctx, key), t.review_run, t.review_html, **QUIET,
                        concurrency_limit=None)


def wire_controls(ctx: AppContext, t: SimpleNamespace) -> None:
    """Start, Stop and Resume, and what they may do now: Start is off while a run trains, Stop while none does.

    A refusal stays in the message area under the buttons and still reaches the page (a toast) and API callers
    (an error) as a ``gr.Error``. The page's Start is ``/start_training``: the page sends every field; an API caller
    may omit the model and training fields, patience and Start from (``webui.demo.App``: the preset's values)."""
    corpus_inputs = [t.source, t.bundled_name, t.upload, t.pasted]

    def start_training(**kw):
        values = {name: kw.pop(name) for name in FORM_FIELDS + PAGE_FIELDS if name in kw}
        return actions.start_training(ctx, values=values, **kw)

    def stop_training(password, key, visitor=None):
        return actions.stop_training(ctx, password, key, visitor)

    def resume_training(password, run, more_iterations, more_minutes, key, visitor=None):
        return actions.resume_training(ctx, password, run, more_iterations, more_minutes, key, visitor)

    def controls(key):
        return control_states(ctx, key)

    # a refusal's "Error" badge would cover the message it keeps: the message itself is the progress shown
    train_opts = dict(concurrency_id="train-control", concurrency_limit=1, show_progress="hidden")
    shown = dict(fn=controls, inputs=t.key, outputs=[t.banner, t.start_btn, t.stop_btn], **QUIET, queue=False)
    start_inputs = [t.password, *corpus_inputs, t.preset, *(t.fields[name] for name in FORM_FIELDS), t.run_name,
                    t.key, *(t.fields[name] for name in PAGE_FIELDS), t.start_from]
    t.status_md.change(**shown)          # the poll redrew the status: a run started or ended, here or elsewhere
    t.status_md.change(lambda message: settled_message(ctx, message), t.message, t.message, **QUIET, queue=False)
    if t.burst_seconds is not None:      # ZeroGPU: Start and Resume train in this event, in the visitor's GPU bursts
        events = wire_bursts(ctx, t, start_inputs, shown)
        # Stop ends this page's burst: its event is cancelled, which closes the burst, and a closed burst saves
        t.stop_btn.click(lambda: (actions.stamp("Stopped: the burst saved its steps. **Resume** trains it more."),
                                  gr.update(visible=False)), None, [t.message, t.stop_btn], cancels=events,
                         **QUIET, queue=False)
        return
    t.start_btn.click(handler(kept_in_place(start_training), START_INPUTS, visitor=True), start_inputs, t.message,
                      api_name="start_training", **train_opts).then(**shown)
    t.resume_btn.click(handler(kept_in_place(resume_training), RESUME_INPUTS, visitor=True),
                       [t.password, t.resume_run, t.more_iterations, t.more_minutes, t.key], t.message,
                       api_name="resume_training", **train_opts).then(**shown)
    t.stop_btn.click(handler(kept_in_place(stop_training), ("password", "key"), visitor=True), [t.password, t.key],
                     t.message, api_name="stop_training", **train_opts).then(**shown)

def wire_bursts(ctx: AppContext, t: SimpleNamespace, start_inputs: list, shown: dict) -> list:
    """Start and Resume as GPU bursts (``webui.train.burst``): each streams the run's view as the poll draws it, the
    message, and Stop while it trains; the API names stay, the burst's seconds come last. Returns the two events
    (for Stop to cancel)."""
    bursts = burst.Bursts()
    outputs = [*(getattr(t, name) for name in TRAIN_VIEW), t.message, t.stop_btn]

    def view(run):
        return training_view(ctx, run)

    def start_training(seconds=None, **kw):
        values = {name: kw.pop(name) for name in FORM_FIELDS + PAGE_FIELDS if name in kw}
        yield from burst.start_burst(ctx, bursts, view, seconds, values=values, **kw)

    def resume_training(password, run, more_iterations, more_minutes, key, seconds=None, visitor=None):
        yield from burst.resume_burst(ctx, bursts, view, password, run, more_iterations, more_minutes, seconds, key,
                                      visitor=visitor)

    # its own queue: a burst takes up to a minute, and must not hold Stop or anyone's Start behind it
    opts = dict(concurrency_id="gpu-burst", concurrency_limit=burst.CONCURRENT_BURSTS, show_progress="hidden")
    start = t.start_btn.click(handler(streamed(t, start_training), (*START_INPUTS, "seconds"), visitor=True),
                              [*start_inputs, t.burst_seconds], outputs, api_name="start_training", **opts)
    resume = t.resume_btn.click(handler(streamed(t, resume_training), (*RESUME_INPUTS, "seconds"), visitor=True),
                                [t.password, t.resume_run, t.more_iterations, t.more_minutes, t.key, t.burst_seconds],
                                outputs, api_name="resume_training", **opts)
    start.then(**shown)
    resume.then(**shown)
    return [start, resume]


def streamed(t: SimpleNamespace, fn):
    """``fn``'s views (dicts keyed by component name) as a handler's updates, with Stop shown while it trains (and
    hidden after); a refusal kept in the message area and raised as a ``gr.Error``, as ``kept_in_place`` does."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            with contextlib.closing(fn(*args, **kwargs)) as views:      # closed with this: the burst stops and saves
                for view in views:
                    yield {t.stop_btn: gr.update(visible=True),
                           **{getattr(t, name): value for name, value in view.items()}}
            yield {t.stop_btn: gr.update(visible=False)}
        except ERRORS as e:
            refusal = message_of(e)
            yield {t.message: actions.stamp(f"⚠️ {refusal}"), t.stop_btn: gr.update(visible=False)}
            raise gr.Error(refusal) from None

    return run


def kept_in_place(fn):
    """``fn`` as a control button's handler: its message, or its refusal, kept in the message area (with the time)
    and then raised as a ``gr.Error``: a toast on the page, an error for API callers."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            message = fn(*args, **kwargs)
        except ERRORS as e:
            refusal = message_of(e)
            yield actions.stamp(f"⚠️ {refusal}")
            raise gr.Error(refusal) from None
        yield message

    return run


def control_states(ctx: AppContext, key=None) -> tuple:
    """The banner naming the run in progress (hidden when none), whether Start may be pressed, and whether Stop is
    there: only while a run trains that this browser started (``key``; any, with a training password, which is
    asked for), and not once it is stopping: offered only where it can work, never as a dead button."""
    job = ctx.jobs.active()
    if job is None:
        return gr.update(value="", visible=False), gr.update(interactive=True), gr.update(visible=False)
    status = ctx.jobs.state(job.name)
    ours = may_control(ctx.settings, ctx.settings.root / job.name, key)
    return (gr.update(value=active_banner(job.name, status, ours), visible=True), gr.update(interactive=False),
            gr.update(visible=ours and status.get("state") != "stopping"))


def settled_message(ctx: AppContext, message):
    """The message under Start once no run is in progress: how the last run ended, in place of what a click said
    while it ran ("Started…", "Stopping…", "Resumed…", a refusal); left alone while a run trains, or when empty."""
    if not message or ctx.jobs.active() is not None:
        return gr.skip()
    run = ctx.jobs.last_run()
    line = ended_line(run, ctx.jobs.state(run)) if run else ""
    return actions.stamp(line) if line else ""


def corpus_view(ctx: AppContext, source, bundled_name, upload, pasted) -> tuple:
    """The line on the chosen text with what a good loss is for it, and its stats (a warning and None when it
    cannot be used)."""
    def describe():
        line, stats = actions.describe_corpus(ctx.settings, source, bundled_name, upload, pasted)
        return "\n\n".join(filter(None, [line, loss_guide(stats)])), stats

    return handler(describe, inline=lambda m: (f"⚠️ {m}", None))()


def refit(preset, stats, minutes, hidden, fitted) -> tuple:
    """The hidden size the preset trains for this text and these minutes (``auto`` follows both), unless the field
    was changed by hand since the form last set it."""
    new = fitted_hidden(preset, stats["chars"] if isinstance(stats, dict) else None, minutes)
    if new is None or hidden != fitted or new == hidden:
        return gr.skip(), gr.skip()
    return new, new


def build_compare(ctx: AppContext, t: SimpleNamespace) -> None:
    """The compare accordion: pick runs, see their validation curves on one plot and their settings below it."""
    with gr.Accordion("5. Compare runs", open=False, elem_id="compare-runs-section"):
        gr.Markdown("Pick several runs to see their validation loss on one plot, against the step or the characters "
                    "each has trained on; the table says how each was set up.")
        with gr.Row():
            t.compare_runs = gr.Dropdown([], multiselect=True, label="Runs", elem_id="compare-runs", scale=3)
            t.compare_x = gr.Radio([(title, column) for column, title in X_AXES.items()], value="step",
                                   label="x axis", elem_id="compare-x", scale=1)
        t.compare_plot = gr.LinePlot(None, x="step", y="val_loss", color="run", title="Validation loss (nats per "
                                     "character)", x_title=X_AXES["step"], y_title="validation loss", height=360,
                                     elem_id="compare-plot")
        t.compare_table = gr.HTML(settings_table([], []), elem_id="compare-table")
        t.compare_colors = gr.State({})


def wire_compare(ctx: AppContext, t: SimpleNamespace) -> None:
    """Redraw the compared curves when the runs or the x axis change (the poll keeps the run choices fresh)."""
    def redraw(keys, x):
        view = compare_runs(ctx.settings, keys, x)
        return gr.update(value=view.frame, x=view.x, x_title=X_AXES[view.x]), view.table, view.colors

    # The browser draws the runs of the colour domain it built the plot with, and rebuilds it when a property such
    # as color_map changes, reading the data it has then: so the data first, then the colours of its runs.
    gr.on([t.compare_runs.change, t.compare_x.change], redraw, [t.compare_runs, t.compare_x],
          [t.compare_plot, t.compare_table, t.compare_colors], **QUIET, concurrency_limit=None,
          trigger_mode="always_last") \
        .then(lambda colors: gr.update(color_map=colors), t.compare_colors, t.compare_plot, **QUIET, queue=False)


def corpus_inputs_shown(source: str) -> list:
    """Show only the input of the chosen source: the bundled list, the upload box or the paste box."""
    return [gr.update(visible=source == value) for _, value in SOURCES]


def preset_form(preset: str, stats: dict | None = None) -> list:
    """The form's values for the chosen preset (FORM_FIELDS, then PAGE_FIELDS), fitted to the text, and the hidden
    size so set."""
    if preset not in PRESETS:
        return [gr.skip()] * (len(FORM_FIELDS) + len(PAGE_FIELDS) + 1)
    values = preset_values(preset, stats["chars"] if isinstance(stats, dict) else None)
    return [*(values[name] for name in FORM_FIELDS + PAGE_FIELDS), values["hidden"]]


def timeline_of(ctx: AppContext, key) -> str:
    """A run's samples over time (the review accordion)."""
    if not key:
        return "<p><em>Pick a run to see its samples over time.</em></p>"

    def timeline(key):
        run = RunDir(run_directory(ctx.settings, key))
        uploaded = run.status_as_written()["state"] == "uploaded"        # webui.transfer.add_model's
        return run_timeline(run.name, run.records(), ctx.settings.timeline_samples, uploaded)

    return handler(timeline, inline=lambda m: f"<p>⚠️ {m}</p>")(key)


TRAIN_VIEW = ("loss_plot", "sample_box", "earlier", "progress_md", "status_md")     # what training_view fills


def training_view(ctx: AppContext, run: str | None) -> dict:
    """What the Train tab shows of ``run``, keyed by component: plot, latest sample, earlier samples, progress (with
    the kept model, overfitting and the precision) and status line."""
    settings = ctx.settings
    if run is None:
        return {"loss_plot": None, "sample_box": gr.update(value="", label="Latest sample"),
                "earlier": samples_html([], settings.earlier_samples), "progress_md": "",
                "status_md": status_line(None, {})}
    directory = settings.root / run
    reader = ctx.readers.get(run, lambda: MetricsReader(RunDir(directory).metrics))    # one per run, for everyone
    records = reader.records()            # read from where the last view stopped: a bounded digest of the metrics
    status = ctx.jobs.state(run)
    if reader.damage_note():
        status = {**status, "metrics_damage": reader.damage_note()}
    text, label = latest_sample(records)
    dropout = run_dropout(directory) if overfitting(records) else None
    notes = [progress_line(records, status), kept_line(records, status), overfit_note(records, dropout),
             precision_line(records)]
    return {"loss_plot": plot_value(records, settings.plot_points), "sample_box": gr.update(value=text, label=label),
            "earlier": samples_html(records, settings.earlier_samples), "progress_md": "\n\n".join(filter(None, notes)),
            "status_md": status_line(run, status, RunDir(directory).log_tail()) + settings_note(directory, status)}


def run_dropout(directory):
    """The dropout the run's newest checkpoint records, unchecked (overfit_note takes only a finite number); None
    before its first checkpoint or when unreadable."""
    try:
        return RunDir(directory).latest_header()["model_config"]["dropout"]
    except (CheckpointError, OSError, KeyError, TypeError):
        return None


def settings_note(directory, status: dict) -> str:
    """A run in progress's settings, read-only, as its newest checkpoint records them (none before the first)."""
    if status.get("state") not in ("starting", "running", "stopping"):
        return ""
    try:
        header = RunDir(directory).latest_header()
    except (CheckpointError, OSError):
        return " Its settings show with its first checkpoint."
    return f" Its settings: {run_settings(header)}." if run_settings(header) else ""
