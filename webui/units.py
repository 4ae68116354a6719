"""One unit's activation over a text, the units that best follow simple features of it, and what the chosen model
reads by default (a passage of its own text; the Generate tab's prime). No gradio."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from charrnn import checkpoint as ck
from charrnn.data import CorpusError, read_text
from charrnn.inside import activations, suggest_units
from charrnn.model import CharRNN
from charrnn.vocab import Vocab

from .context import AppContext
from .errors import UserError, esc
from .forms import whole_number
from .generation import DEFAULT_PRIME, Warn, ignore, usable_prime
from .models import BUNDLED_KEY, load_model, run_directory
from .render_inside import unit_html
from .settings import Settings

UNIT_KINDS = ("cell", "hidden")
PASSAGE = ("tinyshakespeare.txt", 557_600, 1500)   # file, offset, length: Romeo and Balthasar, names in caps
PRIME_CHARS = 16                                   # a default prime: a line of the model's text, about this long


@lru_cache(maxsize=4)
def corpus_passage(data_dir: Path, name: str, start: int, chars: int) -> str:
    """About ``chars`` characters of a bundled corpus from the first blank line after ``start``, whole lines."""
    try:
        text = read_text(data_dir / name)
    except CorpusError:
        return ""
    begin = text.find("\n\n", start if start < len(text) else 0)
    piece = text[begin + 2 if begin >= 0 else 0:][:chars]
    end = piece.rfind("\n")
    return piece[:end + 1] if end > 0 else piece


def model_corpus(settings: Settings, key) -> tuple[str, str] | None:
    """(text, what to call it) of the corpus the model of picker value ``key`` was trained on, if it is here:
    the run's own copy (pasted or uploaded text), else the bundled corpus it names.

    Not ``ck.corpus_path``: that falls back to a path an older header records, and a model added from the
    page brings a header a visitor wrote, so the page reads only the run's folder and the bundled corpora."""
    if key == BUNDLED_KEY:
        return None
    try:
        directory = run_directory(settings, key)
        header = ck.read_header(directory)
    except (UserError, ck.CheckpointError):
        return None
    name = str(header.get("data", {}).get("name", ""))
    for path in (directory / "corpus.txt", settings.data_dir / Path(name).name):
        if name and path.is_file():
            try:
                return read_text(path), name
            except CorpusError:
                return None
    return None


def model_passage(settings: Settings, key, chars: int = PASSAGE[2]) -> tuple[str, str]:
    """A passage for the Inside tab to read with the chosen model, and the button's label.

    The bundled model reads its Shakespeare passage; a run reads whole lines of its own corpus, from
    its held-out end when that is long enough (text the model has not trained on).
    """
    found = model_corpus(settings, key)
    if found is None:
        return corpus_passage(settings.data_dir, *PASSAGE), "A Shakespeare passage"
    text, name = found
    return own_passage(text, chars), f"A passage of {Path(name).stem}"


def own_passage(text: str, chars: int) -> str:
    """About ``chars`` characters of whole lines of ``text``: from its held-out last 10% when that is long enough."""
    start = int(len(text) * 0.9) if len(text) * 0.1 >= chars else 0
    if start and 0 <= (newline := text.find("\n", start, start + chars // 2)):
        start = newline + 1                                  # from the start of a line
    piece = text[start:start + chars]
    end = piece.rfind("\n")                                  # to the end of one
    return piece[:end + 1] if end > chars // 2 else piece


def model_prime(settings: Settings, key, most: int = PRIME_CHARS) -> str:
    """The Generate tab's default prime for the model of picker value ``key``: the start of a line of its own
    text; "ROMEO:" for the bundled model (or none chosen); empty (the start of a line) when its text is not here."""
    if not key or key == BUNDLED_KEY:
        return DEFAULT_PRIME
    found = model_corpus(settings, key)
    return line_start(own_passage(found[0], PASSAGE[2]), most) if found else ""


def line_start(text: str, most: int) -> str:
    """The first line of ``text`` with something on it: whole, with its newline, when it is at most ``most``
    characters (a speaker's name), else its first words (cut after a space) up to ``most``."""
    line = next((line for line in text.split("\n") if line.strip()), "")
    if len(line) <= most:
        return line + "\n" if line else ""
    cut = line.rfind(" ", 0, most)
    return line[:cut + 1] if cut > 0 else line[:most]


def inside_text(vocab: Vocab, text, most: int, warn: Warn) -> tuple[str, str]:
    """The text a unit is shown on (capped; unknown characters folded or dropped, warned) and a note on the cap."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("Give the model some text to read: a passage, the generated text or your own.")
    note = f" Showing the first {most:,} characters." if len(text) > most else ""
    text = usable_prime(vocab, text[:most], warn, "the text")
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
