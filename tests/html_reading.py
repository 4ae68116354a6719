"""Readers of the HTML the inside-the-model views draw (webui.render_inside and the views built on it).

Plain parsing, no gradio and no webui: the characters drawn in each box, the columns of temperatures side by side,
and the entropy a next-character line states."""
from __future__ import annotations

import re
from html.parser import HTMLParser


class Spans(HTMLParser):
    """The characters drawn inside each .charrnn-chars box: (character text, style, title) per titled span."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.boxes, self.depth, self.current = [], 0, None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "charrnn-chars" in (attrs.get("class") or ""):
            self.boxes.append([])
            self.depth = 1
        elif tag == "div" and self.depth:
            self.depth += 1
        elif tag == "span" and self.depth and "title" in attrs:
            self.current = ["", attrs.get("style", ""), attrs["title"]]
            self.boxes[-1].append(self.current)

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth -= 1
        elif tag == "span":
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current[0] += data


def drawn_text(span_text: str) -> str:
    """The character a span stands for (a newline is drawn as ⏎ plus the line break)."""
    return "\n" if span_text == "⏎\n" else span_text


def box_text(markup: str, box: int = 0) -> str:
    """The characters drawn in the ``box``-th .charrnn-chars box."""
    return "".join(drawn_text(s) for s, _, _ in Spans(markup).boxes[box])


def columns(markup: str) -> dict[str, str]:
    """{temperature: the characters drawn in its column} of temperature_columns' markup."""
    temps = re.findall(r"data-temperature='([\d.]+)'", markup)
    texts = ["".join(drawn_text(s) for s, _, _ in box) for box in Spans(markup).boxes]
    return dict(zip(temps, texts, strict=True))


def entropy_in(line: str) -> float:
    """The entropy, in bits, that a next-character line states."""
    return float(re.search(r"entropy <strong>([\d.]+) bits", line).group(1))
