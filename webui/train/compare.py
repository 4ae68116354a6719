"""Runs side by side: their validation curves on one plot (x = step or characters seen) and each run's settings in
a table. No gradio: a typed data frame and an HTML table, from the runs' metrics.jsonl and headers."""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from charrnn.runs.store import RunDir, read_header
from charrnn.runs.weights import CheckpointError
from webui.checks import finite
from webui.errors import UserError, esc
from webui.models import BUNDLED_KEY, run_directory
from webui.settings import Settings
from webui.train.render import thin

X_AXES = {"step": "step", "chars": "characters seen"}     # x column -> axis title
MOST_RUNS = 8
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class Compared:
    """One run on the plot: its name, header (None when unreadable) and validation points (step, chars, loss)."""

    def __init__(self, key: str, directory: Path):
        self.name = directory.name + (" (bundled)" if key == BUNDLED_KEY else "")
        try:
            self.header = read_header(directory)
        except CheckpointError:
            self.header = None
        per_step = chars_per_step(self.header)
        self.points = [(r["step"], r.get("chars_seen", r["step"] * per_step if per_step else math.nan), r["val_loss"])
                       for r in RunDir(directory).records()
                       if isinstance(r.get("step"), int) and finite(r.get("val_loss"))]


def chars_per_step(header: dict | None) -> float | None:
    """Characters trained on per step: from the header's count (all ranks), else batch size x sequence length."""
    if not header:
        return None
    seen, step = header.get("chars_seen"), header.get("step")
    if isinstance(seen, int) and isinstance(step, int) and step > 0:
        return seen / step
    cfg = header.get("train_config", {})
    batch, seq = cfg.get("batch_size"), cfg.get("seq_len")
    return float(batch * seq) if isinstance(batch, int) and isinstance(seq, int) else None


def compared_runs(settings: Settings, keys) -> tuple[list[Compared], list[str]]:
    """The runs of the picked keys (at most ``MOST_RUNS``), and a note for each key that could not be read."""
    runs, notes = [], []
    for key in list(dict.fromkeys(keys or []))[:MOST_RUNS]:
        try:
            directory = run_directory(settings, key)
        except UserError as e:
            notes.append(str(e))
            continue
        if not directory.is_dir():
            notes.append(f"There is no run {esc(key)} any more.")
            continue
        runs.append(Compared(key, directory))
    if keys and len(dict.fromkeys(keys)) > MOST_RUNS:
        notes.append(f"Only the first {MOST_RUNS} runs are compared.")
    return runs, notes


def compare_frame(runs: list[Compared], most: int) -> pd.DataFrame | None:
    """Long frame (step, chars, val_loss, run), each run thinned to ``most`` points; None when no run has one."""
    rows = [(s, c, v, r.name) for r in runs for s, c, v in thin(r.points, most)]
    if not rows:
        return None
    return pd.DataFrame({"step": pd.Series([x[0] for x in rows], dtype="int64"),
                         "chars": pd.Series([x[1] for x in rows], dtype="float64"),
                         "val_loss": pd.Series([x[2] for x in rows], dtype="float64"),
                         "run": pd.Series([x[3] for x in rows], dtype="str")})


def settings_table(runs: list[Compared], notes: list[str]) -> str:
    """Each compared run's key settings and results, one row per run, in the plot's legend order."""
    warnings = "".join(f"<p>⚠️ {n}</p>" for n in notes)
    if not runs:
        return warnings or "<p><em>Pick runs to compare their validation curves.</em></p>"
    head = ("<tr><th>run</th><th>corpus</th><th>model</th><th>parameters</th><th>batch × seq</th><th>lr</th>"
            "<th>steps</th><th>characters seen</th><th>best validation loss</th></tr>")
    rows = "".join(settings_row(r) for r in runs)
    return (f"<table class='charrnn-compare' style='width:100%'><thead>{head}</thead><tbody>{rows}</tbody></table>"
            f"{warnings}")


def settings_row(run: Compared) -> str:
    if run.header is None:
        return f"<tr><td><strong>{esc(run.name)}</strong></td><td colspan='8'>no readable checkpoint</td></tr>"
    h, cfg, train = run.header, run.header.get("model_config", {}), run.header.get("train_config", {})
    data, best, per_step = h.get("data", {}), h.get("best_val_loss"), chars_per_step(run.header)
    steps = h.get("step") if isinstance(h.get("step"), int) else None
    cells = [f"<strong>{esc(run.name)}</strong>", esc(data.get("name", "?")),
             f"{esc(str(cfg.get('cell', 'lstm')).upper())} {esc(cfg.get('layers'))} × {esc(cfg.get('hidden'))}, "
             f"embedding {esc(cfg.get('embed'))}",
             f"{h['params']:,}" if isinstance(h.get("params"), int) else "?",
             f"{esc(train.get('batch_size', '?'))} × {esc(train.get('seq_len', '?'))}",
             f"{train['lr']:g}" if finite(train.get("lr")) else "?",
             f"{steps:,}" if steps is not None else "?",
             short_count(steps * per_step) if steps is not None and per_step else "?",
             f"{best:.3f} nats/char" if finite(best) else "–"]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def short_count(n: float) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k" if n >= 1e3 else f"{n:.0f}"


class CompareView(NamedTuple):
    frame: pd.DataFrame | None
    x: str                     # the x column: "step" or "chars"
    table: str
    colors: dict[str, str]     # run -> colour: a new set of runs is a new map, so the browser redraws the legend


def compare_runs(settings: Settings, keys, x: str) -> CompareView:
    """What the compare view draws: the frame, the x column to plot, the settings table and each run's colour."""
    x = x if x in X_AXES else "step"
    runs, notes = compared_runs(settings, keys)
    colors = {r.name: PALETTE[i % len(PALETTE)] for i, r in enumerate(runs)}
    return CompareView(compare_frame(runs, settings.plot_points[1]), x, settings_table(runs, notes), colors)
