"""What the Generate tab draws: the next-character bars and their line, confidence colours, temperature columns.

Text generated in the page is coloured there (webui/generate/static/page.js), to the same HTML: ``page_views``
hands it the colours, inks, legend and wording this module draws with."""
from __future__ import annotations

import math

import pandas as pd

from charrnn.inside import INVISIBLE, READABLE, readable
from webui.checks import count
from webui.colours import char_span, coloured_text, confidence_colour, confidence_palette, swatches
from webui.errors import esc

GENERATING = "<p><em>Generating… the colours appear when the text is complete.</em></p>"
STOPPED = "<p><em>Stopped: the colours appear for a generation that runs to its end.</em></p>"


def distribution_frame(dist: list[tuple[str, float]], most: int) -> pd.DataFrame:
    """The ``most`` likeliest characters as bars (char, probability)."""
    return pd.DataFrame({"char": pd.Series([readable(c) for c, _ in dist[:most]], dtype="str"),
                         "probability": pd.Series([p for _, p in dist[:most]], dtype="float64")})


def distribution_line(read: str, following: str | None, probs: dict, entropy: float, temperature: float,
                      vocab_size: int) -> str:
    """What the chart shows: after which text, at which temperature, how uncertain, and what came next."""
    shown = esc("".join(readable(c) for c in read[-CONTEXT_SHOWN:]))
    cut = "…" if len(read) > CONTEXT_SHOWN else ""
    where = (f"After <code>{cut}{shown}</code> ({count(len(read), 'character')} read)"
             if read else "At the very start (nothing read yet)")
    at = "temperature 0 (greedy: the likeliest always wins)" if temperature == 0 else f"temperature {temperature:g}"
    line = (f"{where}, at {at}: entropy <strong>{entropy:.2f} bits</strong> (how unsure the model is of the "
            f"next character: 0 = certain; {math.log2(vocab_size):.2f} = all {vocab_size} characters equally likely).")
    if following is not None:
        p = probs.get(following)
        line += f" The text goes on with <code>{esc(readable(following))}</code>" + \
            (f", which has p = {p:.3f} here." if p is not None else ", a character this model does not know.")
    return f"<p class='charrnn-dist-line'>{line}</p>"


def confidence_legend() -> str:
    return swatches([(confidence_colour(p), f"p = {p:g}") for p in (0.02, 0.1, 0.25, 0.5, 0.75, 1.0)],
                    "surprising → expected (p: how likely the model found the character it drew; hover a character "
                    "for its p)")


def confidence_html(record: dict | None) -> str:
    """The generated text with each character coloured by the probability it was drawn with; the prime in grey."""
    if not record:
        return "<p><em>Generate some text: each character is then coloured by how likely the model found it.</em></p>"
    text, start, probs = record["text"], record["start"], record["probs"]
    spans = "".join(char_span(ch, confidence_colour(p), f"{readable(ch)}  p = {p:.3f}")
                    for ch, p in zip(text[start:], probs, strict=True))
    t, k = record.get("temperature"), record.get("top_k")
    how = f"temperature {t:g}" + (f", top-k {k}" if k else "")
    if t == 0:
        summary = f"Sampled greedily ({how}): every character was the likeliest, so each has p = 1."
    else:
        mean = sum(probs) / len(probs) if probs else math.nan
        summary = (f"Sampled at {how}: average probability {mean:.2f}; "
                   f"{sum(p < 0.1 for p in probs)} surprises (p < 0.1) in {count(len(probs), 'character')}.")
    return f"<p>{summary}</p>{confidence_legend()}{coloured_text(text[:start], spans, scroll=True)}"


def page_views() -> dict:
    """What page.js draws the confidence view of a text generated in the page with, so that its HTML is
    ``confidence_html``'s: the colour and ink of each hue, the legend, the stand-ins for invisible characters; and
    the lines shown while it generates and after Stop."""
    colours, inks = confidence_palette()
    return {"colours": colours, "inks": inks, "legend": confidence_legend(), "readable": READABLE,
            "invisible": sorted(INVISIBLE), "generating": GENERATING, "stopped": STOPPED}


def temperature_columns(prime: str, runs: dict[float, list[tuple[str, float]]], seed: int) -> str:
    """One column per temperature: the prime continued, each character coloured by its probability."""
    columns = []
    for t, pairs in runs.items():
        mean = sum(p for _, p in pairs) / len(pairs) if pairs else math.nan
        spans = "".join(char_span(ch, confidence_colour(p), f"{readable(ch)}  p = {p:.3f}") for ch, p in pairs)
        columns.append(f"<div class='charrnn-temperature' data-temperature='{t:g}'>"
                       f"<h4>T = {t:g}</h4><small>average p {mean:.2f}</small>"
                       f"{coloured_text(prime, spans)}</div>")
    head = (f"<p>The same prime and the same seed ({seed}), so the same random numbers: only the temperature "
            "differs. Cold is safe and repetitive; hot is inventive, then garbled.</p>")
    grid = f"<div class='charrnn-columns' style='--charrnn-columns:{len(columns)}'>{''.join(columns)}</div>"
    return head + confidence_legend() + grid


CONTEXT_SHOWN = 40                        # characters of the text read shown above the chart
