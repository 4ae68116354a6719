"""What the Inside tab draws: a unit's activations over a passage."""
from __future__ import annotations

from charrnn.config import ModelConfig
from charrnn.inside import readable
from webui.colours import activation_colour, char_span, coloured_text, swatches


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
