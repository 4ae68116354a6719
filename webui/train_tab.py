"""The Train tab: pick a text and a recipe, start, stop and resume a run, and watch it learn."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from charrnn import checkpoint as ck
from charrnn.jobs import log_tail
from charrnn.presets import PRESETS

from . import actions
from .context import AppContext
from .forms import FORM_FIELDS, SOURCES, bundled_corpora, form_option, preset_values
from .glue import QUIET, WholeNumber, handler
from .models import run_directory
from .render import latest_sample, plot_value, progress_line, run_timeline, samples_html, status_line

START_INPUTS = ("password", "source", "bundled_name", "upload", "pasted", "preset", *FORM_FIELDS, "run_name")
CORPUS_INPUTS = ("source", "bundled_name", "upload", "pasted")
PRESET_INFO = "; ".join(f"{name}: {m['cell'].upper()} {m['layers']}x{m['hidden']}, "
                        + (f"{t['minutes']:g} min" if t.get("minutes") else f"{t['iterations']:,} steps")
                        for name, (m, t) in PRESETS.items())
FIELD_INFO = {"iterations": "0 = no step limit", "minutes": "0 = no time limit"}


def form_field(name: str, value) -> gr.components.Component:
    """The input of config field ``name``: a whole-number box for an int field, else a number box."""
    opt = form_option(name)
    elem_id = name.replace("_", "-")
    if opt.type is int:
        return WholeNumber(value, precision=0, label=opt.label, info=FIELD_INFO.get(name), elem_id=elem_id)
    return gr.Number(value, label=opt.label, info=FIELD_INFO.get(name), elem_id=elem_id)


def build(ctx: AppContext) -> SimpleNamespace:
    """The Train tab's components (call inside ``gr.Blocks``)."""
    settings = ctx.settings
    corpora = bundled_corpora(settings.data_dir)
    first = corpora[0] if corpora else None
    corpus_md, stats = handler(actions.describe_corpus, inline=lambda m: (f"⚠️ {m}", None))(
        settings, "bundled", first, None, None)
    values = preset_values("quick")
    t = SimpleNamespace(corpus_stats=gr.State(stats))
    with gr.Row():
        with gr.Column():
            gr.Markdown("### 1. Text")
            t.source = gr.Radio(SOURCES, value="bundled", label="Corpus", elem_id="corpus-source")
            t.bundled_name = gr.Dropdown(corpora, value=first, label="Bundled corpus", elem_id="bundled-corpus")
            t.upload = gr.File(file_types=[".txt"], type="filepath", label="Upload a UTF-8 .txt file",
                               visible=False, elem_id="upload")
            t.pasted = gr.Textbox(lines=8, max_lines=16, label="Paste text", visible=False, elem_id="pasted",
                                  placeholder=f"At least a few hundred characters, at most "
                                              f"{settings.max_corpus_bytes // 2**20} MB.")
            t.corpus_md = gr.Markdown(corpus_md, elem_id="corpus-info")
        with gr.Column():
            gr.Markdown("### 2. Model and training")
            t.preset = gr.Dropdown(list(PRESETS), value="quick", label="Preset", info=PRESET_INFO, elem_id="preset")
            t.fields = {}
            for row in (FORM_FIELDS[:4], FORM_FIELDS[4:]):
                with gr.Row():
                    t.fields.update({name: form_field(name, values[name]) for name in row})
            t.model_md = gr.Markdown(handler(actions.describe_model, inline=lambda m: f"⚠️ {m}")(
                settings, stats, "quick", values), elem_id="model-info")
            t.run_name = gr.Textbox(label="Run name (optional)", placeholder="corpus-preset-date-time",
                                    elem_id="run-name")
            t.password = gr.Textbox(label="Training password", type="password", visible=bool(settings.password))
            with gr.Row():
                t.start_btn = gr.Button("Start training", variant="primary", elem_id="start-btn")
                t.stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
            t.message = gr.Markdown(elem_id="train-message")
    gr.Markdown("### 3. Watch it learn")
    t.status_md = gr.Markdown(elem_id="train-status")
    t.progress_md = gr.Markdown(elem_id="train-progress")
    t.loss_plot = gr.LinePlot(None, x="step", y="loss", color="split", title="Loss (nats per character)",
                              y_title="loss", color_map={"train": "#1f77b4", "validation": "#ff7f0e"},
                              height=320, elem_id="loss-plot")
    with gr.Row():
        t.sample_box = gr.Textbox(label="Latest sample", lines=8, max_lines=12, interactive=False,
                                  elem_id="latest-sample")
        with gr.Accordion("Earlier samples: from gibberish to words", open=True):
            t.earlier = gr.HTML(samples_html([], settings.earlier_samples), elem_id="earlier-samples", max_height=300)
    with gr.Accordion("4. Samples over time of any run", open=False):
        gr.Markdown("Every sample a run took while training is kept with it (in its metrics.jsonl): pick a run to "
                    "review how its writing grew, step by step, as its validation loss fell.")
        t.review_run = gr.Dropdown([], label="Run", elem_id="review-run")
        t.review_html = gr.HTML(timeline_of(ctx, None), elem_id="review-timeline", max_height=600)
    with gr.Accordion("Resume a stopped run", open=False):
        with gr.Row():
            t.resume_run = gr.Dropdown([], label="Run", allow_custom_value=True, elem_id="resume-run")
            t.more_iterations = WholeNumber(0, precision=0, label="More iterations", info="0 = the remaining budget")
            t.more_minutes = gr.Number(0, label="More minutes", info="used when more iterations is 0")
        t.resume_btn = gr.Button("Resume", elem_id="resume-btn")
    return t


def wire(ctx: AppContext, t: SimpleNamespace) -> None:
    settings = ctx.settings
    corpus_inputs = [t.source, t.bundled_name, t.upload, t.pasted]
    model_inputs = [t.corpus_stats, t.preset, *t.fields.values()]
    describe_opts = dict(**QUIET, concurrency_id="describe", concurrency_limit=1, trigger_mode="always_last")

    def describe_corpus(source, bundled_name, upload, pasted):
        return actions.describe_corpus(settings, source, bundled_name, upload, pasted)

    def describe_model(stats, preset, *values):
        return actions.describe_model(settings, stats, preset, dict(zip(FORM_FIELDS, values, strict=True)))

    corpus_md = handler(describe_corpus, inline=lambda m: (f"⚠️ {m}", None))
    model_md = handler(describe_model, inline=lambda m: f"⚠️ {m}")
    t.source.change(corpus_inputs_shown, t.source, [t.bundled_name, t.upload, t.pasted], **QUIET, queue=False)
    for box in corpus_inputs:
        box.change(corpus_md, corpus_inputs, [t.corpus_md, t.corpus_stats], **describe_opts) \
            .then(model_md, model_inputs, t.model_md, **describe_opts)
    t.preset.change(preset_form, t.preset, list(t.fields.values()), **QUIET) \
        .then(model_md, model_inputs, t.model_md, **describe_opts)
    for box in t.fields.values():
        box.input(model_md, model_inputs, t.model_md, **describe_opts)

    def start_training(**kw):
        values = {name: kw.pop(name) for name in FORM_FIELDS}
        return actions.start_training(ctx, values=values, **kw)

    def stop_training(password):
        return actions.stop_training(ctx, password)

    def resume_training(password, run, more_iterations, more_minutes):
        return actions.resume_training(ctx, password, run, more_iterations, more_minutes)

    train_opts = dict(concurrency_id="train-control", concurrency_limit=1)
    t.start_btn.click(handler(start_training, START_INPUTS),
                      [t.password, *corpus_inputs, t.preset, *t.fields.values(), t.run_name], t.message,
                      api_name="start_training", **train_opts)
    t.stop_btn.click(handler(stop_training), t.password, t.message, api_name="stop_training", **train_opts)
    t.resume_btn.click(handler(resume_training), [t.password, t.resume_run, t.more_iterations, t.more_minutes],
                       t.message, api_name="resume_training", **train_opts)
    t.review_run.change(lambda key: timeline_of(ctx, key), t.review_run, t.review_html, **QUIET,
                        concurrency_limit=None)


def corpus_inputs_shown(source: str) -> list:
    """Show only the input of the chosen source: the bundled list, the upload box or the paste box."""
    return [gr.update(visible=source == value) for _, value in SOURCES]


def preset_form(preset: str) -> list:
    """The form's values for the chosen preset, in FORM_FIELDS order."""
    if preset not in PRESETS:
        return [gr.skip()] * len(FORM_FIELDS)
    values = preset_values(preset)
    return [values[name] for name in FORM_FIELDS]


def timeline_of(ctx: AppContext, key) -> str:
    """A run's samples over time (the review accordion)."""
    if not key:
        return "<p><em>Pick a run to see its samples over time.</em></p>"

    def timeline(key):
        directory = run_directory(ctx.settings, key)
        return run_timeline(directory.name, ck.read_metrics(directory), ctx.settings.timeline_samples)

    return handler(timeline, inline=lambda m: f"<p>⚠️ {m}</p>")(key)


def training_view(ctx: AppContext, run: str | None) -> tuple:
    """Plot, latest sample, earlier samples, progress line and status line of ``run``."""
    settings = ctx.settings
    if run is None:
        return (None, gr.update(value="", label="Latest sample"), samples_html([], settings.earlier_samples), "",
                status_line(None, {}))
    directory = settings.root / run
    records = ck.read_metrics(directory)
    status = ctx.jobs.state(run)
    text, label = latest_sample(records)
    return (plot_value(records, settings.plot_points), gr.update(value=text, label=label),
            samples_html(records, settings.earlier_samples), progress_line(records, status),
            status_line(run, status, log_tail(directory)))
