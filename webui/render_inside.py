"""What the views inside the model draw: confidence colours, temperature columns, a unit's activations,
the next-character bars and their line. No gradio: HTML strings and pandas frames."""
from __future__ import annotations

import colorsys
import html
import math
import re
from functools import lru_cache

import pandas as pd

from charrnn.inside import readable
from charrnn.model import ModelConfig

from .errors import esc

CONTEXT_SHOWN = 40                        # characters of the text read shown above the chart
DARK_INK, LIGHT_INK = "#000", "#fff"      # text on a coloured character: whichever contrasts more (WCAG); with
                                          # pure black and white one of them always reaches 4.58


def confidence_colour(p: float) -> str:
    """Red for a surprising character (p near 0), through yellow, to green for an expected one (p near 1)."""
    return f"hsl({120 * min(max(p, 0.0), 1.0):.0f},75%,78%)"


def activation_colour(value: float, scale: float) -> str:
    """White at 0, deeper red for positive and deeper blue for negative values (full colour at +-scale)."""
    t = max(-1.0, min(1.0, value / scale))
    fade = round(255 * (1 - abs(t)))
    return f"rgb(255,{fade},{fade})" if t >= 0 else f"rgb({fade},{fade},255)"


def rgb_of(colour: str) -> tuple[float, float, float]:
    """A colour as these views write it ('#rgb', '#rrggbb', 'rgb(r,g,b)', 'hsl(h,s%,l%)') as 0..1 channels."""
    if colour.startswith("#"):
        digits = colour[1:] if len(colour) == 7 else "".join(c * 2 for c in colour[1:])
        return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)]
    if colour.startswith("hsl"):
        h, s, lightness = numbers
        return colorsys.hls_to_rgb(h / 360, lightness / 100, s / 100)
    return tuple(n / 255 for n in numbers[:3])


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two colours: 1 (none) to 21 (black on white); text needs 4.5."""
    def luminance(colour):
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb_of(colour)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    brighter, darker = sorted((luminance(a), luminance(b)), reverse=True)
    return (brighter + 0.05) / (darker + 0.05)


@lru_cache(maxsize=1024)
def ink_for(background: str) -> str:
    """The text colour to write on ``background``: explicit, so a dark theme's light text never lands on pastel."""
    return DARK_INK if contrast(background, DARK_INK) >= contrast(background, LIGHT_INK) else LIGHT_INK


def char_span(ch: str, colour: str, title: str) -> str:
    """One character on a coloured background, in the ink that reads on it; a newline shows as ⏎ and still breaks
    the line."""
    shown = "⏎\n" if ch == "\n" else esc(ch)
    return f'<span style="background:{colour};color:{ink_for(colour)}" title="{html.escape(title)}">{shown}</span>'


def swatches(items: list[tuple[str, str]], caption: str) -> str:
    """A legend: (colour, label) swatches, each in the ink that reads on it, and a caption."""
    cells = "".join(f"<span class='charrnn-swatch' style='background:{c};color:{ink_for(c)}'>{esc(label)}</span>"
                    for c, label in items)
    return f"<div class='charrnn-legend'>{cells} &nbsp;{esc(caption)}</div>"


def coloured_text(prime: str, spans: str) -> str:
    """The box of coloured characters, the prime before them uncoloured (webui/style.py draws both, in either
    theme: the box stays light so the colours mean the same)."""
    prime = f"<span class='charrnn-prime'>{esc(prime)}</span>" if prime else ""
    return f"<div class='charrnn-chars'>{prime}{spans}</div>"


# --- the next character under the temperature slider --------------------------------
def distribution_frame(dist: list[tuple[str, float]], most: int) -> pd.DataFrame:
    """The ``most`` likeliest characters as bars (char, probability)."""
    return pd.DataFrame({"char": pd.Series([readable(c) for c, _ in dist[:most]], dtype="str"),
                         "probability": pd.Series([p for _, p in dist[:most]], dtype="float64")})


def distribution_line(read: str, following: str | None, probs: dict, entropy: float, temperature: float,
                      vocab_size: int) -> str:
    """What the chart shows: after which text, at which temperature, how uncertain, and what came next."""
    shown = esc("".join(readable(c) for c in read[-CONTEXT_SHOWN:]))
    where = (f"After <code>{'…' if len(read) > CONTEXT_SHOWN else ''}{shown}</code> ({len(read):,} characters read)"
             if read else "At the very start (nothing read yet)")
    at = "temperature 0 (greedy: the likeliest always wins)" if temperature == 0 else f"temperature {temperature:g}"
    line = (f"{where}, at {at}: entropy <strong>{entropy:.2f} bits</strong> (how unsure the model is of the "
            f"next character: 0 = certain; {math.log2(vocab_size):.2f} = all {vocab_size} characters equally likely).")
    if following is not None:
        p = probs.get(following)
        line += f" The text goes on with <code>{esc(readable(following))}</code>" + \
            (f", which has p = {p:.3f} here." if p is not None else ", a character this model does not know.")
    return f"<p class='charrnn-dist-line'>{line}</p>"


# --- confidence: each generated character coloured by its probability ---------------
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
                   f"{sum(p < 0.1 for p in probs)} surprises (p < 0.1) in {len(probs):,} characters.")
    return f"<p>{summary}</p>{confidence_legend()}{coloured_text(text[:start], spans)}"


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


# --- one unit's activation over a text ------------------------------------------------
def unit_html(text: str, values: list[float], kind: str, layer: int, unit: int, cfg: ModelConfig,
              note: str = "") -> str:
    """``text`` coloured by one unit's value after each character: blue negative, white 0, red positive."""
    # a hidden value of an LSTM lies in (-1, 1); a cell value is unbounded, so its colours span what it reaches
    scale = 1.0 if kind == "hidden" else max([1.0, *(abs(v) for v in values)])
    spans = "".join(char_span(ch, activation_colour(v, scale), f"{readable(ch)}  {v:+.3f}")
                    for ch, v in zip(text, values, strict=True))
    what = kind if cfg.cell == "lstm" or kind == "hidden" else f"hidden (a {cfg.cell.upper()} has no cell state)"
    head = (f"<p><strong>{what} unit {unit}</strong> of layer {layer} ({cfg.cell.upper()} {cfg.layers} x "
            f"{cfg.hidden}): its value after reading each character.{note}</p>")
    legend = swatches([(activation_colour(v, scale), f"{v:+.2g}" if v else "0")
                       for v in (-scale, -scale / 2, 0, scale / 2, scale)],
                      "negative → positive (hover a character for its value)")
    return head + legend + coloured_text("", spans)


def warning_html(message: str) -> str:
    return f"<p>⚠️ {esc(message)}</p>"
