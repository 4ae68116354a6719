"""What the views inside the model draw: confidence colours, temperature columns, a unit's activations,
the next-character bars and their line. No gradio: HTML strings and pandas frames."""
from __future__ import annotations

import colorsys
import html
import re
from functools import lru_cache

from webui.errors import esc

DARK_INK, LIGHT_INK = "#000", "#fff"      # text on a coloured character: whichever contrasts more (WCAG); with
                                          # pure black and white one of them always reaches 4.58


def confidence_colour(p: float) -> str:
    """Red for a surprising character (p near 0), through yellow, to green for an expected one (p near 1)."""
    return f"hsl({120 * min(max(p, 0.0), 1.0):.0f},75%,78%)"


def confidence_palette() -> tuple[list[str], list[str]]:
    """Every colour ``confidence_colour`` gives (one per whole hue, 0 to 120) and the ink chosen for each: the page
    colours the text it generated with these, so its view and the server's are the same HTML."""
    colours = [confidence_colour(hue / 120) for hue in range(121)]
    return colours, [ink_for(c) for c in colours]


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
    """A legend: (colour, label) swatches, each in the ink that reads on it, and a caption; a narrow screen wraps it
    between swatches (a swatch itself never breaks)."""
    cells = " ".join(f"<span class='charrnn-swatch' style='background:{c};color:{ink_for(c)}'>{esc(label)}</span>"
                    for c, label in items)
    return f"<div class='charrnn-legend'>{cells} &nbsp;{esc(caption)}</div>"


def coloured_text(prime: str, spans: str, scroll: bool = False) -> str:
    """The box of coloured characters, the prime before them uncoloured (webui/style.py draws both, in either
    theme); ``scroll``: a long text scrolls inside the box, whose frame stays whole."""
    prime = f"<span class='charrnn-prime'>{esc(prime)}</span>" if prime else ""
    return f"<div class='charrnn-chars{' charrnn-scroll' if scroll else ''}'>{prime}{spans}</div>"


# --- the next character under the temperature slider --------------------------------


# --- confidence: each generated character coloured by its probability ---------------


# --- one unit's activation over a text ------------------------------------------------


def warning_html(message: str) -> str:
    return f"<p>⚠️ {esc(message)}</p>"
