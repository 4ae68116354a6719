"""The Train tab's CSS (``CSS``), loaded with the page's other styles by ``webui.demo``.

Each rule is scoped to the tab's own element ids and classes, so nothing else on the page changes.
"""
from __future__ import annotations

CSS = """
/* The poll's outputs: Gradio draws a status tracker ("queue: 1/1 | 0.1s", "processing") in every output of
   every poll even with show_progress="hidden", only made transparent; it is in the page's text and what a
   screen reader reads. Drawing none of these hidden trackers shows no progress in the polled views. */
.charrnn-polled .wrap.hide { display: none !important; }

/* The loss plot: Vega draws one invisible hover point (size 0, opacity 0) per row. Validation is checked
   every few hundred steps, so its curve needs points to be seen at all (one check draws no line), and the
   kept model is a single point: show both. */
#loss-plot g.mark-symbol path[aria-label$="split: validation"] {
  d: path("M3.5,0A3.5,3.5,0,1,1,-3.5,0A3.5,3.5,0,1,1,3.5,0");
  opacity: 1;
  fill: #ff7f0e;
}
#loss-plot g.mark-symbol path[aria-label$="split: kept model"] {
  d: path("M0,-9L9,0L0,9L-9,0Z");
  opacity: 1;
  fill: none;
  stroke: #2ca02c;
  stroke-width: 2.5px;
}

/* The form's number boxes: a hint a line shorter than its neighbours' must not lift its box out of line, so
   each box sits at the bottom of its field, level with the others in the row. */
.charrnn-field { display: flex !important; flex-direction: column; }
.charrnn-field > label { display: flex; flex-direction: column; flex: 1 1 auto; }
.charrnn-field > label > input { margin-top: auto; }

/* The banner naming the run in progress: the form below it is for the next run. */
#run-banner {
  border-left: 4px solid #2ca02c;
  padding: 6px 12px;
  background: rgba(44, 160, 44, 0.08);
}

/* Sample timelines: the text wraps inside the page, however long its words. */
.charrnn-timeline { width: 100%; table-layout: fixed; border-collapse: collapse; }
.charrnn-timeline th:nth-child(1), .charrnn-timeline td:nth-child(1) { width: 7em; }
.charrnn-timeline th:nth-child(2), .charrnn-timeline td:nth-child(2) { width: 7.5em; }
.charrnn-timeline pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; }
@media (max-width: 640px) {
  .charrnn-timeline { font-size: 0.85em; }
  .charrnn-timeline th, .charrnn-timeline td { padding: 4px 5px !important; }
  .charrnn-timeline th:nth-child(1), .charrnn-timeline td:nth-child(1) { width: 3.8em; white-space: normal !important; }
  .charrnn-timeline th:nth-child(2), .charrnn-timeline td:nth-child(2) { width: 6.6em; }
}
"""
