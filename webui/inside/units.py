"""One unit's activation over a text, the units that best follow simple features of it, and what the chosen model
reads by default (a passage of its own text; the Generate tab's prime). No gradio."""
from __future__ import annotations

from charrnn.inside import activations, suggest_units
from charrnn.model import CharRNN
from charrnn.vocab import Vocab
from webui.checks import whole_number
from webui.context import AppContext
from webui.errors import UserError, esc
from webui.inside.view import unit_html
from webui.models import load_model
from webui.prime import Warn, ignore, usable_prime

UNIT_KINDS = ("cell", "hidden")


def inside_text(vocab: Vocab, text, most: int, warn: Warn) -> tuple[str, str]:
    """The text a unit is shown on (capped; unknown characters folded or dropped, warned) and a note on the cap."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("Give the model some text to read: a passage, the generated text or your own.")
    note = f" Showing the first {most:,} characters." if len(text) > most else ""
    text = usable_prime(vocab, text[:most], warn, "the text", most)
    if not text:
        raise UserError("This model knows none of the text's characters; try text like the one it was trained on.")
    return text, note


def unit_args(model: CharRNN, kind, layer, unit) -> tuple[str, int, int]:
    """(kind, layer from 1, unit from 0), or UserError naming the allowed range for this model."""
    if kind not in UNIT_KINDS:
        raise UserError(f"State must be 'cell' or 'hidden', got {esc(repr(kind))}.")
    layer = whole_number("Layer", layer, 1, model.config.layers)
    unit = whole_number("Unit", unit, 0, model.config.hidden - 1)
    return kind, layer, unit


def unit_view(ctx: AppContext, checkpoint, text, kind, layer, unit, warn: Warn = ignore) -> str:
    """``text`` coloured by one unit's value after each character."""
    model, vocab, key = load_model(ctx.settings, ctx.models, checkpoint)
    kind, layer, unit = unit_args(model, kind, layer, unit)
    text, note = inside_text(vocab, text, ctx.settings.max_inside_chars, warn)
    acts = ctx.activations.get((key, text, layer), lambda: activations(model, vocab, text, layer - 1))
    return unit_html(text, acts[kind][:, unit].tolist(), kind, layer, unit, model.config, note)


def suggestions(ctx: AppContext, checkpoint, text, kind, layer, warn: Warn = ignore) -> list[dict]:
    """The units that best follow simple features of the text: [{unit, feature, r}], best first."""
    model, vocab, key = load_model(ctx.settings, ctx.models, checkpoint)
    kind, layer, _ = unit_args(model, kind, layer, 0)
    text, _ = inside_text(vocab, text, ctx.settings.max_inside_chars, warn)
    return ctx.activations.get((key, text, layer, kind, "suggest"),
                               lambda: suggest_units(model, vocab, text, kind, layer - 1))
