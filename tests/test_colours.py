"""What the views inside the model draw (webui.render_inside, no gradio): confidence colours, temperatures side
by side, a unit's activation, and the next-character bars and their line.

The HTML readers (``Spans``, ``drawn_text``, ``box_text``, ``columns``, ``entropy_in``) are in html_reading.py,
shared with the other inside-the-model tests."""
from __future__ import annotations

import math
import re

import pytest
from html_reading import Spans, box_text, columns, drawn_text, entropy_in

from charrnn.config import ModelConfig
from charrnn.inside import readable
from webui import colours as ri
from webui.generate import view as gview
from webui.inside import view as iview
from webui.style import CSS, NARROW


def hue(colour: str) -> int:
    return int(re.match(r"hsl\((\d+)", colour).group(1))


def painted(colour: str) -> str:
    """The style of a character drawn on ``colour``: the colour, and the ink chosen for it."""
    return f"background:{colour};color:{ri.ink_for(colour)}"


# --- confidence colouring -------------------------------------------------------------
def test_confidence_colours_run_from_red_for_surprising_to_green_for_expected():
    hues = [hue(ri.confidence_colour(p)) for p in (0, 0.2, 0.5, 0.8, 1)]
    assert hues == sorted(hues) and len(set(hues)) == 5 and hues[0] == 0 and hues[-1] == 120
    assert ri.confidence_colour(0.01) != ri.confidence_colour(0.99)
    assert ri.confidence_colour(-0.5) == ri.confidence_colour(0) and ri.confidence_colour(7) == ri.confidence_colour(1)


def record_of(text="the cat\nsat", start=4, probs=(0.9, 0.05, 0.5, 0.01, 1.0, 0.3, 0.08), temperature=0.8, top_k=None):
    return {"text": text, "start": start, "probs": list(probs), "temperature": temperature, "top_k": top_k}


def test_each_character_after_the_prime_is_coloured_by_its_probability_with_a_summary_and_legend():
    record = record_of()
    markup = gview.confidence_html(record)
    (spans,) = Spans(markup).boxes
    assert len(spans) == len(record["probs"])
    for (shown, style, title), ch, p in zip(spans, record["text"][4:], record["probs"], strict=True):
        assert drawn_text(shown) == ch
        assert style == painted(ri.confidence_colour(p)) and title == f"{readable(ch)}  p = {p:.3f}"
    assert "<span class='charrnn-prime'>the </span>" in markup                 # the prime, uncoloured (grey: CSS)
    mean = sum(record["probs"]) / len(record["probs"])
    assert f"temperature 0.8: average probability {mean:.2f}; 3 surprises (p < 0.1) in 7 characters" in markup
    assert ">p = 0.02</span>" in markup and ">p = 1</span>" in markup            # the legend's ends


def test_the_summary_names_top_k_and_a_greedy_generation_says_so():
    assert "temperature 1.2, top-k 5:" in gview.confidence_html(record_of(temperature=1.2, top_k=5))
    greedy = gview.confidence_html(record_of(probs=[1.0] * 7, temperature=0))
    assert "greedily" in greedy and "every character was the likeliest" in greedy and "surprises" not in greedy


def test_no_record_asks_for_a_generation():
    assert "Generate some text" in gview.confidence_html(None) and not Spans(gview.confidence_html(None)).boxes


def test_text_and_prime_are_escaped():
    record = record_of(text="<b>x & <i>\n", start=3, probs=[0.5] * 8)
    markup = gview.confidence_html(record)
    assert "&lt;b&gt;" in markup and "<b>" not in markup and "<i>" not in markup
    assert box_text(markup) == "x & <i>\n"


# --- ink: every coloured character is readable, whatever the page's theme ----------------
def test_contrast_is_the_wcag_ratio():
    assert ri.contrast("#000", "#fff") == pytest.approx(21) and ri.contrast("#fff", "#000") == pytest.approx(21)
    assert ri.contrast("rgb(10,20,30)", "rgb(10,20,30)") == pytest.approx(1)
    assert ri.contrast("hsl(0,0%,100%)", "#ffffff") == pytest.approx(1)
    assert ri.contrast("#777", "#fff") == pytest.approx(4.48, abs=0.01)          # the usual reference grey


def test_every_colour_gets_an_ink_that_reads_on_it():
    colours = [ri.confidence_colour(i / 50) for i in range(51)] + \
        [ri.activation_colour(v / 25, 1.0) for v in range(-25, 26)]
    for colour in colours:
        assert ri.contrast(colour, ri.ink_for(colour)) >= 4.5, colour
    steps = range(0, 256, 51)
    any_colour = [f"rgb({r},{g},{b})" for r in steps for g in steps for b in steps]
    assert min(ri.contrast(c, ri.ink_for(c)) for c in any_colour) >= 4.5      # black or white always reads
    assert ri.ink_for("rgb(0,0,255)") == ri.LIGHT_INK and ri.ink_for("rgb(255,255,255)") == ri.DARK_INK
    assert ri.ink_for(ri.confidence_colour(0)) == ri.DARK_INK                 # pastel: dark ink, never the theme's


def test_legend_swatches_carry_their_own_ink():
    legend = ri.swatches([("rgb(0,0,255)", "-1"), ("rgb(255,255,255)", "0")], "caption")
    assert "style='background:rgb(0,0,255);color:#fff'>-1</span>" in legend
    assert "style='background:rgb(255,255,255);color:#000'>0</span>" in legend and "caption" in legend


# --- temperatures side by side ----------------------------------------------------------
def test_temperature_columns_show_each_temperature_coloured_and_the_seed():
    runs = {0.2: [("a", 0.9), ("b", 0.8)], 1.6: [("\n", 0.1), ("<", 0.04)]}
    markup = gview.temperature_columns("pr<", runs, 42)
    assert columns(markup) == {"0.2": "ab", "1.6": "\n<"}
    assert "T = 0.2" in markup and "T = 1.6" in markup and "average p 0.85" in markup and "average p 0.07" in markup
    assert "seed (42)" in markup and "--charrnn-columns:2" in markup and "pr&lt;" in markup
    styles = [style for box in Spans(markup).boxes for _, style, _ in box]
    assert styles == [painted(ri.confidence_colour(p)) for p in (0.9, 0.8, 0.1, 0.04)]


# --- a unit's activation ------------------------------------------------------------------
def test_activation_colours_run_from_blue_through_white_to_red():
    assert ri.activation_colour(-1, 1) == "rgb(0,0,255)"
    assert ri.activation_colour(0, 1) == "rgb(255,255,255)"
    assert ri.activation_colour(0.5, 1) == "rgb(255,128,128)" and ri.activation_colour(-1, 2) == "rgb(128,128,255)"
    assert ri.activation_colour(5, 2) == "rgb(255,0,0)" and ri.activation_colour(-9, 2) == "rgb(0,0,255)"  # saturates


LSTM = ModelConfig(vocab_size=10, embed=4, hidden=16, layers=2)


def test_a_hidden_unit_colours_each_character_on_a_fixed_scale():
    text, values = "ab\nc", [0.5, -0.25, 0.0, 0.9]
    markup = iview.unit_html(text, values, "hidden", 2, 7, LSTM, " A note.")
    (spans,) = Spans(markup).boxes
    assert "".join(drawn_text(s) for s, _, _ in spans) == text
    for (_, style, title), ch, v in zip(spans, text, values, strict=True):
        assert style == painted(ri.activation_colour(v, 1.0)) and title == f"{readable(ch)}  {v:+.3f}"
    assert "<strong>hidden unit 7</strong> of layer 2 (LSTM 2 x 16)" in markup and "A note." in markup


def test_cell_values_are_scaled_to_what_they_reach():
    values = [0.5, -3.0, 1.5]
    markup = iview.unit_html("abc", values, "cell", 1, 0, LSTM)
    styles = [style for _, style, _ in Spans(markup).boxes[0]]
    assert styles == [painted(ri.activation_colour(v, 3.0)) for v in values]
    assert ">-3</span>" in markup and ">+1.5</span>" in markup and ">+3</span>" in markup   # legend: the range reached
    small = iview.unit_html("ab", [0.2, -0.1], "cell", 1, 0, LSTM)                  # but never less than +-1
    assert [s for _, s, _ in Spans(small).boxes[0]] == [painted(ri.activation_colour(v, 1.0)) for v in (0.2, -0.1)]


def test_a_cell_without_a_cell_state_says_it_shows_the_hidden_state():
    gru = ModelConfig(vocab_size=10, embed=4, hidden=8, cell="gru")
    assert "hidden (a GRU has no cell state) unit 1</strong>" in iview.unit_html("ab", [0.1, 0.2], "cell", 1, 1, gru)
    assert "<strong>hidden unit 1</strong>" in iview.unit_html("ab", [0.1, 0.2], "hidden", 1, 1, gru)


# --- the next character: bars and their line ------------------------------------------
def test_the_bars_are_the_likeliest_characters_readable_and_typed():
    frame = gview.distribution_frame([(" ", 0.5), ("\n", 0.3), ("a", 0.15), ("b", 0.05)], 3)
    assert list(frame.char) == ["␣", "⏎", "a"] and list(frame.probability) == [0.5, 0.3, 0.15]
    assert str(frame.dtypes["probability"]) == "float64" and str(frame.dtypes["char"]) in ("str", "object")


def test_the_line_names_what_was_read_the_temperature_the_entropy_and_what_came_next():
    line = gview.distribution_line("the cat", "\n", {"\n": 0.25, "a": 0.75}, 1.234, 0.7, 16)
    assert "After <code>the␣cat</code> (7 characters read)" in line and "temperature 0.7" in line
    assert entropy_in(line) == 1.23 and "4.00 = all 16 characters equally likely" in line
    assert "how unsure the model is" in line                                     # entropy, in plain words
    assert "goes on with <code>⏎</code>, which has p = 0.250 here." in line
    start = gview.distribution_line("", "t", {"t": 0.5}, 0.0, 0, 16)
    assert "At the very start" in start and "greedy" in start and "0.00 bits" in start
    assert "goes on with <code>t</code>" in start
    assert "goes on" not in gview.distribution_line("ab", None, {}, 1.0, 1.0, 4)


def test_the_line_says_when_the_next_character_is_unknown_and_escapes_the_text():
    line = gview.distribution_line("<b>", "é", {"a": 1.0}, 0.0, 1.0, 4)
    assert "<code>&lt;b&gt;</code>" in line and "<b>" not in line
    assert "goes on with <code>é</code>, a character this model does not know." in line


@pytest.mark.parametrize("length", [gview.CONTEXT_SHOWN, gview.CONTEXT_SHOWN + 1, 5000])
def test_the_line_shows_only_the_end_of_a_long_text(length):
    read = ("abcdefghij" * 600)[:length]
    line = gview.distribution_line(read, None, {}, 1.0, 1.0, 10)
    shown = re.search(r"<code>(.*?)</code>", line).group(1)
    assert shown == ("…" if length > gview.CONTEXT_SHOWN else "") + read[-gview.CONTEXT_SHOWN:]
    assert f"({length:,} characters read)" in line
    assert f"{math.log2(10):.2f} = all 10" in line


# --- the page's CSS for these views (webui.style) -------------------------------------------
def selectors(css: str) -> list[str]:
    """Every selector of the rules in ``css`` (inside @media blocks too)."""
    heads = re.findall(r"([^{}]+)\{", css)
    return [sel.strip() for head in heads if not head.strip().startswith("@") for sel in head.split(",")]


def test_every_css_rule_is_under_a_class_of_these_views():
    found = selectors(CSS)
    assert found and all(sel.startswith(".charrnn-view ") for sel in found), found
    for drawn in ("charrnn-chars", "charrnn-prime", "charrnn-columns", "charrnn-legend", "charrnn-swatch"):
        assert f".{drawn}" in CSS, drawn                 # each class the views draw has its style


def test_the_box_keeps_its_own_colours_and_the_columns_stack_on_a_narrow_screen():
    box = re.search(r"div\.charrnn-chars \{([^}]*)\}", CSS).group(1)
    assert "background: #fff" in box and "color: #111" in box                   # light in either theme
    prime = re.search(r"span\.charrnn-prime \{([^}]*)\}", CSS).group(1)
    ink = re.search(r"color: (#[0-9a-f]{6})", prime).group(1)
    assert ri.contrast(ink, "#fff") >= 4.5                                      # the greyed prime still reads
    narrow = CSS[CSS.index(f"@media (max-width: {NARROW}px)"):]
    assert "charrnn-columns { grid-template-columns: minmax(0, 1fr); }" in narrow and NARROW < 768


def test_one_character_read_is_said_in_the_singular():
    assert "(1 character read)" in gview.distribution_line("a", None, {}, 1.0, 0.8, 10)
    assert "(2 characters read)" in gview.distribution_line("ab", None, {}, 1.0, 0.8, 10)
