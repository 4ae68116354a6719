"""The Inside a unit tab: one hidden unit's cell or hidden value over a text, and suggested units."""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from webui.colours import warning_html
from webui.context import AppContext
from webui.glue import QUIET, WholeNumber, handler, warn
from webui.inside.units import UNIT_KINDS, suggestions, unit_view
from webui.models import BUNDLED_KEY, default_checkpoint
from webui.passages import PASSAGE, corpus_passage, model_passage

INTRO = ("Each character the LSTM reads updates its state: a few hundred numbers (units) per layer. Some "
         "units come to track something about the text: whether a line is a speaker's name, how far "
         "along a line we are... Pick a unit, or let the app suggest the ones that best follow a simple "
         "feature, and see the text coloured by its value after each character (blue negative, red "
         "positive), as in Karpathy's *The Unreasonable Effectiveness of Recurrent Neural Networks*. "
         "The model is the one chosen in the Generate tab, and it reads a passage of its own text.")


def build(ctx: AppContext) -> SimpleNamespace:
    settings = ctx.settings
    gr.Markdown(INTRO)
    u = SimpleNamespace(shown=gr.State(False), passage=corpus_passage(settings.data_dir, *PASSAGE),
                        suggested=gr.State([]))                  # the suggestions last listed
    u.model_md = gr.Markdown(elem_id="unit-model")
    with gr.Row():
        with gr.Column(scale=1, min_width=220):
            u.kind = gr.Radio(list(UNIT_KINDS), value="cell", label="State", elem_id="unit-kind",
                              info="cell: the LSTM's memory c; hidden: what it outputs, h = o * tanh(c): the "
                                   "memory squashed to -1..1, let through by its output gate o")
            u.layer = WholeNumber(1, precision=0, label="Layer", info="1 = next to the input", elem_id="unit-layer")
            u.unit = WholeNumber(0, precision=0, label="Unit", info="0 to hidden size - 1", elem_id="unit")
            u.unit_btn = gr.Button("Show this unit", variant="primary", elem_id="unit-btn")
            u.suggest_btn = gr.Button("Suggest units", elem_id="suggest-btn")
            u.suggestions = gr.Radio([], label="Suggested units", elem_id="suggestions",
                                     info="r: how closely the unit follows the feature, -1 to +1 (0 = not at "
                                          "all; below 0 it falls as the feature rises)")
        with gr.Column(scale=3):
            u.text = gr.Textbox(u.passage, label="Text the model reads", lines=5, max_lines=10,
                                info=f"at most {settings.max_inside_chars:,} characters are shown", elem_id="unit-text")
            with gr.Row():
                u.passage_btn = gr.Button("A Shakespeare passage", size="sm", elem_id="passage-btn")
                u.from_output_btn = gr.Button("The generated text", size="sm", elem_id="from-output-btn")
            u.view = gr.HTML(elem_id="unit-view", max_height=640, elem_classes=["charrnn-view"])
    return u


def wire(ctx: AppContext, u: SimpleNamespace, tab: gr.Tab, checkpoint: gr.Dropdown, output: gr.Textbox) -> None:
    """Wire the tab; it reads the Generate tab's ``checkpoint`` picker and its ``output``."""
    inside_opts = dict(**QUIET, concurrency_id="inside", concurrency_limit=2)
    unit_inputs = [checkpoint, u.text, u.kind, u.layer]

    def show(checkpoint, text, kind, layer, unit):
        return unit_view(ctx, checkpoint, text, kind, layer, unit, warn)

    parts = {"shown": u.shown, "suggestions": u.suggestions, "unit": u.unit, "view": u.view, "suggested": u.suggested}

    def suggest(checkpoint, text, kind, layer, before):
        return {parts[k]: v for k, v in suggest_and_show(ctx, checkpoint, text, kind, layer, before).items()}

    def first(shown, checkpoint, text, kind, layer):
        return {parts[k]: v for k, v in first_look(ctx, shown, checkpoint, text, kind, layer).items()}

    show_unit = dict(fn=handler(show), inputs=[*unit_inputs, u.unit], outputs=u.view, **inside_opts)
    suggested = [u.suggestions, u.unit, u.view, u.suggested]
    tab.select(first, [u.shown, *unit_inputs], [u.shown, *suggested], **inside_opts)
    u.unit_btn.click(**show_unit)
    u.unit.submit(**show_unit)
    u.suggest_btn.click(handler(suggest), [*unit_inputs, u.suggested], suggested, **inside_opts)
    u.suggestions.input(pick_suggestion, u.suggestions, [u.kind, u.unit], **QUIET, queue=False).then(**show_unit)
    def passage(checkpoint):
        text, label, _ = model_passage(ctx.settings, ctx.models, checkpoint)
        return text, gr.update(value=label)

    def follow(checkpoint):
        """A newly chosen model: its own passage (and where it comes from), its name, and fresh suggestions when the
        tab opens next."""
        text, label, note = model_passage(ctx.settings, ctx.models, checkpoint)
        named = f"Model: **{checkpoint_name(checkpoint)}**" + (f". {note}" if note else "") if checkpoint else ""
        return text, gr.update(value=label), False, named

    checkpoint.change(follow, checkpoint, [u.text, u.passage_btn, u.shown, u.model_md], **QUIET)
    u.passage_btn.click(passage, checkpoint, [u.text, u.passage_btn], **QUIET, queue=False).then(**show_unit)
    u.from_output_btn.click(lambda text: text, output, u.text, api_visibility="private", queue=False) \
        .then(**show_unit)


def checkpoint_name(key) -> str:
    return "shakespeare (bundled)" if key == BUNDLED_KEY else str(key)


def suggest_and_show(ctx: AppContext, checkpoint, text, kind, layer, before=()) -> dict:
    """Keyed by component: the units that best follow simple features of the text (as radio choices), the best
    one shown, and the choices' values (``before``: those listed last time; the same again is said, or nothing
    would change)."""
    found = suggestions(ctx, checkpoint, text, kind, layer, warn)
    if not found:
        return {"suggestions": gr.update(choices=[], value=None), "suggested": [],
                "view": "<p>⚠️ No simple feature varies in this text; try a longer text with several lines.</p>"}
    choices = [(f"{kind} {d['unit']}: {d['feature']} (r = {d['r']:+.2f})", f"{kind}/{d['unit']}/{d['feature']}")
               for d in found]
    values = [value for _, value in choices]
    best = found[0]["unit"]
    view = unit_view(ctx, checkpoint, text, kind, layer, best)
    if isinstance(before, list) and values == before:
        units = ", ".join(f"{kind} {d['unit']} ({d['feature']})" for d in found)
        view = (f"<p class='charrnn-note'>The same units again: {units}. The same model, text, state and layer "
                "give the same suggestions; change one of them for others.</p>" + view)
    return {"suggestions": gr.update(choices=choices, value=choices[0][1]), "unit": best, "view": view,
            "suggested": values}


def pick_suggestion(value) -> tuple:
    """A suggestion's state kind and unit number, for the unit controls."""
    try:
        kind, unit, _ = str(value).split("/", 2)
        return kind, int(unit)
    except ValueError:
        return gr.skip(), gr.skip()


def first_look(ctx: AppContext, shown, checkpoint, text, kind, layer) -> dict:
    """When the tab first opens: suggest units and show the best, so there is something to see at once (keyed by
    component; nothing once shown).

    Opened before the page's first refresh has filled the checkpoint picker, it uses the
    checkpoint the picker is about to show (``default_checkpoint``).
    """
    if shown:
        return {}
    checkpoint = checkpoint or default_checkpoint(ctx.settings)
    return handler(lambda: {"shown": True, **suggest_and_show(ctx, checkpoint, text, kind, layer)},
                   inline=lambda m: {"shown": False, "view": warning_html(m)})()
