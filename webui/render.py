"""What the Train tab and the checkpoint line draw: loss frames, sample timelines, progress and status lines.

No gradio: plain strings (HTML or Markdown) and pandas frames, from run records and headers.
"""
from __future__ import annotations

import math

import pandas as pd

from charrnn.memory import human as human_bytes
from charrnn.model import ModelConfig
from charrnn.train import TrainConfig

from .errors import esc
from .forms import CorpusChoice, finite


def clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds // 60 % 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s"


def thin(items: list, most: int) -> list:
    """At most ``most`` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= most:
        return items
    step = (len(items) - 1) / (most - 1)
    return [items[round(i * step)] for i in range(most)]


# --- the form's lines -------------------------------------------------------------------
def corpus_line(choice: CorpusChoice, stats: dict) -> str:
    size = len(choice.text.encode("utf-8"))
    return (f"**{esc(choice.name)}**: {human_bytes(size)}, {stats['chars']:,} characters, "
            f"{stats['distinct']} distinct")


def model_line(model_cfg: ModelConfig, train_cfg: TrainConfig, params: int, max_params: int, vocab_known: bool) -> str:
    """The parameter count of the configured model, its shape and its budget."""
    vocab = f"{model_cfg.vocab_size}-character vocabulary" if vocab_known else "vocabulary of the corpus"
    budget = " and ".join(filter(None, [f"{train_cfg.iterations:,} steps" if train_cfg.iterations else "",
                                        f"{train_cfg.minutes:g} min" if train_cfg.minutes else ""]))
    warn = f" ⚠️ over the app's limit of {max_params:,}" if params > max_params else ""
    return (f"**{params:,} parameters**{warn}: {model_cfg.cell.upper()} {model_cfg.layers} x {model_cfg.hidden}, "
            f"embedding {model_cfg.embed}, {vocab}; training for {budget}.")


def checkpoint_line(header: dict) -> str:
    """One line on a checkpoint: corpus, size, steps, validation loss."""
    cfg, data = header.get("model_config", {}), header.get("data", {})
    val = header.get("best_val_loss")
    val_text = f"validation loss {val:.3f} nats/char ({val / math.log(2):.2f} bits/char)" \
        if isinstance(val, float) and math.isfinite(val) else "no validation loss yet"
    params = f"{header['params']:,} parameters, " if isinstance(header.get("params"), int) else ""
    return (f"Trained on **{esc(str(data.get('name', '?')))}** ({data.get('chars', 0):,} chars) · "
            f"{str(cfg.get('cell', 'lstm')).upper()} {cfg.get('layers')} x {cfg.get('hidden')}, {params}"
            f"{len(header.get('vocab', ''))}-character vocabulary · {header.get('step', 0):,} steps · {val_text}")


# --- following a run ----------------------------------------------------------------------
def loss_frame(records: list[dict], points: tuple[int, int]) -> pd.DataFrame:
    """Train and validation losses as a typed long frame (step, loss, split), thinned for the browser."""
    rows = []
    for key, split, most in (("train_loss", "train", points[0]), ("val_loss", "validation", points[1])):
        pts = [(r["step"], r[key]) for r in records if finite(r.get(key))]
        rows += [(s, v, split) for s, v in thin(pts, most)]
    return pd.DataFrame({"step": pd.Series([r[0] for r in rows], dtype="int64"),
                         "loss": pd.Series([r[1] for r in rows], dtype="float64"),
                         "split": pd.Series([r[2] for r in rows], dtype="str")})


def plot_value(records: list[dict], points: tuple[int, int]) -> pd.DataFrame | None:
    """What the LinePlot gets: None (an empty plot) before the first loss, else the frame with both splits.

    The browser fixes the plot's lines and colours from the first data it draws: an empty frame
    leaves it drawing nothing for good, and a frame without validation rows never draws that
    curve. So a split with no points yet gets one placeholder row with no loss (drawn as nothing).
    """
    frame = loss_frame(records, points)
    if frame.empty:
        return None
    missing = [s for s in ("train", "validation") if s not in set(frame.split)]
    placeholder = pd.DataFrame({"step": pd.Series([frame.step.iloc[0]] * len(missing), dtype="int64"),
                                "loss": pd.Series([math.nan] * len(missing), dtype="float64"),
                                "split": pd.Series(missing, dtype="str")})
    return pd.concat([frame, placeholder], ignore_index=True) if missing else frame


def samples_html(records: list[dict], most: int) -> str:
    """The samples as a timeline, oldest first, so a learner sees gibberish turn into words."""
    samples = [r for r in records if isinstance(r.get("sample"), str)]   # the latest too: the story's end
    return timeline_html(thin(samples, most), "Samples appear here as the model trains.")


def timeline_html(samples: list[dict], empty: str) -> str:
    """Samples as a table, oldest first: step and time, validation loss (with a bar to compare), the text."""
    if not samples:
        return f"<p><em>{esc(empty)}</em></p>"
    losses = [r["val_loss"] for r in samples if finite(r.get("val_loss"))]
    top = max(losses, default=1.0) or 1.0
    rows = []
    for r in samples:
        loss = r.get("val_loss")
        loss_cell = (f"{loss:.3f}<div style='background:#ff7f0e;height:6px;width:{60 * loss / top:.0f}px;"
                     f"margin-top:3px'></div>") if finite(loss) else "–"
        rows.append(f"<tr><td style='white-space:nowrap;vertical-align:top'><strong>step {r['step']:,}</strong>"
                    f"<br><small>{clock(r.get('elapsed', 0))}</small></td>"
                    f"<td style='vertical-align:top'>{loss_cell}</td>"
                    f"<td><pre style='white-space:pre-wrap;margin:0'>{esc(r['sample'])}</pre></td></tr>")
    return ("<table class='charrnn-timeline' style='width:100%'><thead><tr><th>When</th><th>Validation loss</th>"
            f"<th>Sample</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def run_timeline(name: str, records: list[dict], most: int) -> str:
    """A run's samples over time, kept in its metrics.jsonl: the whole story of a finished run."""
    samples = [r for r in records if isinstance(r.get("sample"), str)]
    if not samples:
        return f"<p><em>{esc(name)} has no samples yet.</em></p>"
    losses = [r["val_loss"] for r in samples if finite(r.get("val_loss"))]
    trend = f"; validation loss {losses[0]:.3f} → {losses[-1]:.3f}" if len(losses) > 1 else ""
    head = (f"<p><strong>{esc(name)}</strong>: {len(samples)} samples from step {samples[0]['step']:,} "
            f"to step {samples[-1]['step']:,}{trend}.</p>")
    return head + timeline_html(thin(samples, most), "")


def latest_sample(records: list[dict]) -> tuple[str, str]:
    """(text, label) of the newest sample."""
    last = next((r for r in reversed(records) if isinstance(r.get("sample"), str)), None)
    if last is None:
        return "", "Latest sample"
    return last["sample"], f"Latest sample (step {last['step']:,})"


def progress_line(records: list[dict], status: dict) -> str:
    """Step / total, chars/s, elapsed, ETA and losses from the newest records."""
    if not records:
        return ""
    last, p = records[-1], records[-1].get("progress") or 0.0
    step = f"step **{last['step']:,}**"
    if status.get("state") in ("running", "stopping"):
        iterations, minutes = status.get("iterations"), status.get("minutes")
        step += f" / {iterations:,}" if iterations else f" / ~{round(last['step'] / p):,}" if p > 0 else ""
        step += f" (time budget {clock(60 * minutes)} in all)" if minutes else ""
    # the record that ends a run covers the last few steps only (a stop can come right after a record)
    rates = [r["chars_per_s"] for r in records if finite(r.get("chars_per_s")) and "end" not in r]
    rate = rates[-1] if rates else last.get("chars_per_s", 0)
    parts = [step, f"{rate:,.0f} chars/s", f"elapsed {clock(last.get('elapsed', 0))}"]
    if status.get("state") == "running" and 0 < p < 1:
        parts.append(f"ETA {clock(last.get('elapsed', 0) * (1 - p) / p)}")
    train = next((r["train_loss"] for r in reversed(records) if "train_loss" in r), None)
    val = next((r for r in reversed(records) if "val_loss" in r), None)
    if train is not None:
        parts.append(f"train loss {train:.3f}")
    if val is not None:
        parts.append(f"validation loss {val['val_loss']:.3f} ({val.get('val_bpc', math.nan):.2f} bits/char)")
    return " · ".join(parts)


def status_line(run: str | None, status: dict, log: str = "") -> str:
    """One line saying what the run is doing, with the trainer's last log lines when it went wrong."""
    if run is None:
        return "No training run yet. Pick a corpus and a preset, then press **Start**."
    state, step = status.get("state"), status.get("step")
    at = f" at step {step:,}" if isinstance(step, int) else ""
    lines = {
        "starting": f"**Starting** {run}: reading the corpus and building the model…",
        "running": f"**Training** {run} (pid {status.get('pid')}).",
        "stopping": f"**Stopping** {run}: finishing the step and saving a final checkpoint…",
        "finished": f"**Finished**: {run}{at}. Generate from it in the Generate tab.",
        "stopped": f"**Stopped**: {run}{at}, with a final checkpoint. Resume it below, or generate from it.",
        "failed": f"**Failed**: {run}{at}: {esc(str(status.get('reason', 'see the log')))}",
        "interrupted": f"**Interrupted**: {run}{at} ({status.get('reason', '')}). "
                       "Resume it below from its last checkpoint.",
        "ended": f"**Failed**: {run} ended before training began (exit status {status.get('code')}).",
        "cancelled": f"**Stopped**: {run}, before training began (no checkpoint).",
    }
    line = lines.get(state, f"{run}: no status yet.")
    if state in ("failed", "interrupted", "ended", "unknown") and log:
        line += "\n\n```\n" + log.replace("```", "'''") + "\n```"
    return line
