"""What the Train tab and the checkpoint line draw: loss frames, sample timelines, progress and status lines, and
what they mean in plain words (the kept model, the precision, overfitting, what a good loss is for a text).

No gradio: plain strings (HTML or Markdown) and pandas frames, from run records, statuses and headers.
"""
from __future__ import annotations

import math

import pandas as pd

from charrnn.config import SMALL_TEXT, ModelConfig, TrainConfig
from charrnn.runs.runner import PATIENCE_REASON
from charrnn.runs.writes import human as human_bytes
from webui.checks import as_dict, finite, whole
from webui.errors import esc, short_paths
from webui.train.forms import CorpusChoice


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
    limits = [f"{train_cfg.iterations:,} steps" if train_cfg.iterations else "",
              f"{train_cfg.minutes:g} min" if train_cfg.minutes else "",
              f"{train_cfg.max_epochs:g} passes over the text" if train_cfg.max_epochs else ""]
    limits = [limit for limit in limits if limit]
    budget = " or ".join(limits) + (", whichever comes first" if len(limits) > 1 else "")
    warn = f" ⚠️ over the app's limit of {max_params:,}" if params > max_params else ""
    dropout = (f", dropout {model_cfg.dropout:g}" if model_cfg.dropout else "") + (
        f", input dropout {model_cfg.input_dropout:g}" if model_cfg.input_dropout else "")
    patience = (f", stopping early after {train_cfg.patience} checks without a better validation loss"
                if train_cfg.patience else "")
    return (f"**{params:,} parameters**{warn}: {model_cfg.cell.upper()} {model_cfg.layers} x {model_cfg.hidden}, "
            f"embedding {model_cfg.embed}, {vocab}{dropout}; training for {budget}{patience}.")


def loss_guide(stats: dict | None) -> str:
    """What a good loss looks like for a text of ``stats`` (characters, distinct characters), in nats per character."""
    if not stats or stats.get("distinct", 0) < 2:
        return ""
    distinct = stats["distinct"]
    blind = math.log(distinct)
    ladder = (" On English text, about 3.3 means it knows only which letters are common, below 2 words appear, "
              "and about 1.5 is good (the bundled Shakespeare model: 1.44)." if blind > 3 else "")
    small = (f" With {stats['chars']:,} characters the model soon knows the text by heart: the validation curve, "
             "on text it never trains on, is the honest score." if stats["chars"] < SMALL_TEXT else "")
    return (f"**A good loss for this text**: the loss is the model's surprise at each next character, in nats "
            f"(lower is better). Guessing blindly among its {distinct} characters scores ln {distinct} = "
            f"{blind:.2f}.{ladder}{small}")


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


KEPT = "kept model"                       # the plot's series of one point: the step and loss of the kept model
SPLITS = ("train", "validation", KEPT)


def plot_value(records: list[dict], points: tuple[int, int]) -> pd.DataFrame | None:
    """What the LinePlot gets: None (an empty plot) before the first loss, else the frame with every series: train,
    validation and the kept model's point.

    The browser fixes the plot's lines and colours from the first data it draws: an empty frame
    leaves it drawing nothing for good, and a frame without validation rows never draws that
    curve. So a series with no points yet gets one placeholder row with no loss (drawn as nothing).
    """
    frame = loss_frame(records, points)
    if frame.empty:
        return None
    best = kept_model(records)
    if best is not None:
        frame = pd.concat([frame, pd.DataFrame({"step": pd.Series([best[0]], dtype="int64"),
                                                "loss": pd.Series([best[1]], dtype="float64"),
                                                "split": pd.Series([KEPT], dtype="str")})], ignore_index=True)
    missing = [s for s in SPLITS if s not in set(frame.split)]
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
        loss_cell = (f"{loss:.3f}<div style='background:#ff7f0e;height:6px;width:{100 * loss / top:.0f}%;"
                     f"max-width:60px;margin-top:3px'></div>") if finite(loss) else "–"
        rows.append(f"<tr><td style='white-space:nowrap;vertical-align:top'><strong>step {r['step']:,}</strong>"
                    f"<br><small>{clock(r.get('elapsed', 0))}</small></td>"
                    f"<td style='vertical-align:top'>{loss_cell}</td>"
                    f"<td><pre style='white-space:pre-wrap;margin:0'>{esc(r['sample'])}</pre></td></tr>")
    return ("<table class='charrnn-timeline' style='width:100%'><thead><tr><th>When</th><th>Validation loss</th>"
            f"<th>Sample</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def run_timeline(name: str, records: list[dict], most: int, uploaded: bool = False) -> str:
    """A run's samples over time, kept in its metrics.jsonl: the whole story of a finished run. A model added from
    a file (``uploaded``) trained elsewhere: it has none here, and never will."""
    samples = [r for r in records if isinstance(r.get("sample"), str)]
    if not samples and uploaded:
        return (f"<p><em>{esc(name)} is an uploaded model: it was trained elsewhere, so no samples were recorded "
                "here. Generate from it in the Generate tab.</em></p>")
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


# --- what a run's numbers mean ------------------------------------------------------------
def kept_model(records: list[dict]) -> tuple[int, float] | None:
    """(step, validation loss) of the model the run keeps, from the newest record that names it."""
    for r in reversed(records):
        if whole(r.get("best_step")) is not None and finite(r.get("best_val_loss")):
            return r["best_step"], float(r["best_val_loss"])
    return None


def kept_line(records: list[dict], status: dict) -> str:
    """Which step the kept model is from and its validation loss, with the latest evaluation where it is worse."""
    best = kept_model(records)
    if best is None:
        return ""
    step, loss = best
    running = status.get("state") in ("running", "stopping", "starting")
    line = (f"**Kept model**: step {step:,}, validation loss {loss:.3f} ({loss / math.log(2):.2f} bits/char), the "
            f"best {'so far' if running else 'of the run'} and what the Generate tab uses (the ◇ on the plot).")
    last = next((r for r in reversed(records) if finite(r.get("val_loss"))), None)
    if last is not None and last["step"] != step and last["val_loss"] > loss:
        line += f" The latest check, at step {last['step']:,}, scored {last['val_loss']:.3f}."
    return line


def precision_line(records: list[dict]) -> str:
    """The precision the run trains in and, when it measured both, their speeds (its first record says)."""
    p = next((r["precision"] for r in records if isinstance(r.get("precision"), dict)), None)
    if p is None or p.get("choice") not in ("bf16", "float32"):
        return ""
    rates = {k: v for k, v in as_dict(p.get("rates")).items() if k in ("bf16", "float32") and finite(v) and v > 0}
    if p.get("how") == "set":
        return f"**Precision**: {p['choice']}, as the recipe sets it (not measured)."
    if not rates:
        return f"**Precision**: {p['choice']}."
    shown = ", ".join(f"{k} {rates[k]:,.0f}" for k in sorted(rates, key=rates.get, reverse=True))
    if "bf16" in as_dict(p.get("unavailable")) and "bf16" not in rates:
        return (f"**Precision**: float32 ({shown} chars/s). bf16 autocast does not run on this machine, "
                "so it was not used.")
    ratio = f": bf16 ran at {rates['bf16'] / rates['float32']:.2f}x float32's speed" if len(rates) == 2 else ""
    return (f"**Precision**: {p['choice']}, the faster in a quick measurement here ({shown} chars/s{ratio}). "
            "Weights and validation stay float32.")


def overfitting(records: list[dict]) -> dict | None:
    """The evidence when validation loss has risen since its best while training loss kept falling, else None.

    Rising: at least two checks after the best, the newest over 1% above it; falling: the training loss at the
    newest check is below its value at the best one."""
    evals = [r for r in records if finite(r.get("val_loss"))]
    if len(evals) < 3:
        return None
    best = min(range(len(evals)), key=lambda i: evals[i]["val_loss"])
    first, last = evals[best], evals[-1]
    train_then, train_now = train_loss_at(records, first["step"]), train_loss_at(records, last["step"])
    if len(evals) - best < 3 or last["val_loss"] <= first["val_loss"] * 1.01 or train_then is None \
            or train_now is None or train_now >= train_then:
        return None
    return {"best_step": first["step"], "best_val": first["val_loss"], "step": last["step"],
            "val": last["val_loss"], "train_then": train_then, "train_now": train_now}


def train_loss_at(records: list[dict], step: int) -> float | None:
    """The newest training loss recorded at or before ``step``."""
    return next((r["train_loss"] for r in reversed(records) if r["step"] <= step and finite(r.get("train_loss"))),
                None)


STRONG_DROPOUT = 0.5       # at or above this, "more dropout" is no longer the advice


def overfit_note(records: list[dict], dropout: float | None = None) -> str:
    """Overfitting said in plain words: what it is, that nothing is lost, what to change next time.

    ``dropout`` is the run's (None when unknown): a run that already trained with strong dropout is not told
    to add more."""
    o = overfitting(records)
    if o is None:
        return ""
    if finite(dropout) and dropout >= STRONG_DROPOUT:
        advice = (f"It already trained with dropout {dropout:g}, so next time give it more text or a smaller model "
                  "(a lower hidden size)")
    else:
        advice = ("Next time, give it more text, more dropout (the auto preset raises it for small texts; "
                  "`--dropout` on the command line), or a smaller model (a lower hidden size)")
    return (f"**It has started to learn the text by heart (overfitting).** Since step {o['best_step']:,} the "
            f"validation loss has risen ({o['best_val']:.3f} → {o['val']:.3f}) while the training loss kept falling "
            f"({o['train_then']:.3f} → {o['train_now']:.3f}): it is memorising passages of this text rather than "
            f"learning how such text is written. Nothing is lost: the kept model is step {o['best_step']:,}'s, the "
            f"best one. {advice}; early stopping (patience) ends such a run by itself.")


def run_settings(header: dict) -> str:
    """A run's settings as its header records them, in a few words (read-only)."""
    m, t, d = as_dict(header.get("model_config")), as_dict(header.get("train_config")), as_dict(header.get("data"))
    parts = [f"on {esc(str(d['name']))} ({d['chars']:,} characters)" if whole(d.get("chars")) is not None
             and "name" in d else ""]
    if whole(m.get("hidden")) is not None and whole(m.get("layers")) is not None:
        dropout = "".join(f", {words} {m[key]:g}" for key, words in (("dropout", "dropout"),
                          ("input_dropout", "input dropout")) if finite(m.get(key)) and m[key] > 0)
        parts.append(f"{esc(str(m.get('cell', 'lstm'))).upper()} {m['layers']} x {m['hidden']}{dropout}")
    parts.append(started_from(header))
    if whole(t.get("batch_size")) is not None and whole(t.get("seq_len")) is not None and finite(t.get("lr")):
        parts.append(f"batch {t['batch_size']} x {t['seq_len']}, learning rate {t['lr']:g}")
    budget = [f"{t['iterations']:,} steps" if whole(t.get("iterations")) else "",
              f"{t['minutes']:g} min" if finite(t.get("minutes")) and t["minutes"] > 0 else ""]
    parts.append(" or ".join(filter(None, budget)))
    parts.append(f"patience {t['patience']}" if whole(t.get("patience")) else "")
    return " · ".join(filter(None, parts))


def started_from(header: dict) -> str:
    """Where a run started, as its header records it: the model it fine-tuned, or auto's choice of zero and why."""
    init, start = as_dict(header.get("init")), as_dict(header.get("start"))
    if isinstance(init.get("name"), str):
        return f"fine-tuned from {esc(init['name'])}" + (" (auto's choice)" if start.get("choice") == "base" else "")
    if start.get("choice") == "zero" and start.get("how") == "measured":
        return "from zero (auto: the English base knows too little of this text to help)"
    return ""


def active_banner(run: str, status: dict, ours: bool = True) -> str:
    """While a run trains: which run the page follows, that the form is for the next run, and who may stop it."""
    verb = "Starting" if status.get("state") == "starting" else "Training now"
    stop = ("**Stop** ends it with a final checkpoint." if ours else
            "it was started in another browser: only that browser can stop it.")
    return (f"**{verb}: {esc(run)}**. Section 3 below follows this run and gives its settings. The form is for "
            f"your next run: **Start** comes back when this one ends; {stop}")


def ended_line(run: str, status: dict) -> str:
    """What the message under Start says once the run it was about has ended, in place of "Started…" or
    "Stopping…": how it ended and what to do next; empty (cleared) for a run that never trained here."""
    step = status.get("step")
    at = f" at step {step:,}" if isinstance(step, int) else ""
    name = f"Run **{esc(run)}**"
    lines = {
        "stopped": f"{name} stopped{at}, with a final checkpoint: **Resume** (below) continues it.",
        "cancelled": f"{name} stopped before training began (no checkpoint).",
        "finished": f"{name} finished{at}: generate from it in the Generate tab.",
        "failed": f"{name} failed{at}: section 3 says why.",
        "ended": f"{name} ended before training began: section 3 says why.",
        "interrupted": f"{name} was interrupted{at}: section 3 says why, and whether **Resume** can continue it.",
        "damaged": f"{name} is damaged: section 3 says how.",
    }
    return lines.get(status.get("state"), "")


def status_line(run: str | None, status: dict, log: str = "") -> str:
    """One line saying what the run is doing, with the trainer's last log lines when it went wrong.

    An interrupted run names the step of its last checkpoint and offers Resume only when there is one
    (``checkpoint_step`` None: none was saved); a damaged one says which file and why."""
    if run is None:
        return "No training run yet. Pick a corpus and a preset, then press **Start**."
    state, step = status.get("state"), status.get("step")
    at = f" at step {step:,}" if isinstance(step, int) else ""
    reason = esc(short_paths(str(status.get("reason", ""))))
    log = short_paths(log)
    if "checkpoint_step" in status and not isinstance(status["checkpoint_step"], int):
        resume = "No checkpoint was saved, so there is nothing to resume: start it again."
    elif isinstance(status.get("checkpoint_step"), int):
        resume = f"Resume it below from its last checkpoint (step {status['checkpoint_step']:,})."
    else:
        resume = "Resume it below from its last checkpoint."
    lines = {
        "starting": f"**Starting** {run}: reading the text, building the model and timing a few steps in bf16 and "
                    "float32 to train in the faster (counted in the run's time)…",
        "running": f"**Training** {run} (pid {status.get('pid')}).",
        "stopping": f"**Stopping** {run}: finishing the step and saving a final checkpoint…",
        "finished": f"**Finished** early: {run}{at}: {reason}, so early stopping (patience) ended it. The kept "
                    "model is that best step's: generate from it in the Generate tab."
                    if reason.startswith(PATIENCE_REASON) else
                    f"**Finished**: {run}{at}{': ' + reason if reason else ''}. Generate from it in the Generate tab.",
        "stopped": f"**Stopped**: {run}{at}, with a final checkpoint. Resume it below, or generate from it.",
        "failed": f"**Failed**: {run}{at}: {reason or 'see the log'}",
        "interrupted": f"**Interrupted**: {run}{at} ({reason}). {resume}",
        "ended": f"**Failed**: {run} ended before training began (exit status {status.get('code')}).",
        "cancelled": f"**Stopped**: {run}, before training began (no checkpoint).",
        "damaged": f"**Damaged**: {run}: {reason}. The app neither trusts nor resumes it; its kept model still "
                   "generates if it loads.",
        "uploaded": f"**Uploaded**: {run}, a model trained elsewhere and added from a file: nothing trained here. "
                    "Generate from it in the Generate tab.",
    }
    line = lines.get(state, f"{run}: no status yet.")
    if status.get("metrics_damage"):
        line += f" ⚠️ {esc(str(status['metrics_damage']))}."
    if state in ("failed", "interrupted", "ended", "unknown") and log:
        line += "\n\n```\n" + log.replace("```", "'''") + "\n```"
    return line
