"""The page's CSS for the Generate and Inside tabs' views: ``CSS``, which ``webui.demo.page_css`` loads.

Every rule sits under a ``charrnn-`` class of those views (the HTML of ``webui.render_inside``, and the
``charrnn-view`` class on the gr.HTML blocks that show it), so nothing else on the page changes.

Why the explicit colours: Gradio styles ``.prose *`` with the theme's text colour, so in dark mode every
element inside an HTML block turns light. The coloured characters carry their own ink (inline, chosen per
colour); the box they sit in stays light in both themes, so the colours mean the same (white = 0 or
"unremarkable") and the prime's grey keeps its contrast. Selectors are one class more specific than
Gradio's ``.gradio-container-… .prose *``.
"""
from __future__ import annotations

NARROW = 700          # px: below this the temperature columns stack (a phone is 390)

CSS = f"""
.charrnn-view div.charrnn-chars {{
  font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; overflow-wrap: anywhere;
  line-height: 1.7; padding: 10px; border-radius: 6px; border: 1px solid #d4d4d8;
  background: #fff; color: #111;
}}
.charrnn-view div.charrnn-chars span.charrnn-prime {{ color: #52525b; }}
.charrnn-view div.charrnn-legend {{ margin: 6px 0; font-size: 0.9em; line-height: 1.9; }}
.charrnn-view .charrnn-legend span.charrnn-swatch {{
  padding: 1px 7px; margin-right: 2px; border-radius: 3px; white-space: nowrap;
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
"""
