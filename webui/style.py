"""The page's CSS for the Generate and Inside tabs' views: ``CSS``, which ``webui.demo.page_css`` loads.

Every rule sits under a ``charrnn-`` class of those views (the HTML of ``webui.render_inside``, and the
``charrnn-view`` class on the gr.HTML blocks that show it, and on the Generate tab's own layout), so nothing else on
the page changes.

Why the explicit colours: Gradio styles ``.prose *`` with the theme's text colour, so in dark mode every
element inside an HTML block turns light. The coloured characters carry their own ink (inline, chosen per
colour), so they read on any box. The box is white in the light theme and the theme's own dark panel in the dark
one (``:is(.dark *)``: Gradio marks the page ``dark``), with a prime and text colour that keep their contrast.
Selectors are one class more specific than Gradio's ``.gradio-container-… .prose *``.

On a narrow screen (a phone) the Generate tab's two columns become one list, in an order where the temperature
slider sits right under the output it re-samples (``order``; the columns' own boxes step aside with
``display: contents``).
"""
from __future__ import annotations

NARROW = 700          # px: below this the temperature columns stack and the Generate tab is one column (a phone
                      # is 390); Gradio's two columns of at least 320 px side by side need ~670
DARK_BOX, DARK_EDGE = "#18181b", "#3f3f46"      # the boxes in the dark theme: a dark panel, a faint edge
DARK_INK, DARK_PRIME = "#f4f4f5", "#a1a1aa"     # its text and the greyed prime: 16.1 and 6.9 to 1 on the panel

CSS = f"""
.charrnn-view div.charrnn-chars {{
  font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; overflow-wrap: anywhere;
  line-height: 1.7; padding: 10px; border-radius: 6px; border: 1px solid #d4d4d8;
  background: #fff; color: #111;
}}
.charrnn-view div.charrnn-chars span.charrnn-prime {{ color: #52525b; }}
.charrnn-view div.charrnn-chars.charrnn-scroll {{ max-height: 24em; overflow-y: auto; }}
.charrnn-view div.charrnn-legend {{ margin: 6px 0; font-size: 0.9em; line-height: 1.9; }}
.charrnn-view .charrnn-legend span.charrnn-swatch {{
  padding: 1px 7px; border-radius: 3px; white-space: nowrap;
}}
.charrnn-view div.charrnn-columns {{
  display: grid; grid-template-columns: repeat(var(--charrnn-columns, 5), minmax(0, 1fr)); gap: 8px;
}}
.charrnn-view div.charrnn-temperature {{ min-width: 0; }}
.charrnn-view div.charrnn-temperature h4 {{ margin: 0; }}
@media (max-width: {NARROW}px) {{
  .charrnn-view div.charrnn-columns {{ grid-template-columns: minmax(0, 1fr); }}
}}
.charrnn-view p.charrnn-note {{ font-style: italic; }}
.charrnn-view div.charrnn-diff {{
  font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; overflow-wrap: anywhere;
  max-height: 12em; overflow-y: auto; padding: 8px; border-radius: 6px; border: 1px solid #d4d4d8;
  background: #fff; color: #111;
}}
.charrnn-view div.charrnn-diff mark {{ background: #fde68a; color: #111; }}
.charrnn-view div.charrnn-chars:is(.dark *), .charrnn-view div.charrnn-diff:is(.dark *) {{
  background: {DARK_BOX}; color: {DARK_INK}; border-color: {DARK_EDGE};
}}
.charrnn-view div.charrnn-chars:is(.dark *) span.charrnn-prime {{ color: {DARK_PRIME}; }}
@media (max-width: {NARROW}px) {{
  .charrnn-view div.charrnn-generate {{ flex-direction: column; flex-wrap: nowrap; align-items: stretch; }}
  .charrnn-view div.charrnn-generate > div.column {{ display: contents; }}
  .charrnn-view div.charrnn-generate-main > * {{ order: 1; }}
  .charrnn-view div.charrnn-generate-main > div.form:has(#output) {{ order: 2; }}
  .charrnn-view div.charrnn-generate-side > div.form:has(#temperature) {{ order: 3; }}
  .charrnn-view div.charrnn-generate-main > #gen-where {{ order: 4; }}
  .charrnn-view div.charrnn-generate-side > * {{ order: 5; }}
}}
"""
