"""Start, stop and resume training from the form: checks the app's policy, then hands over to the job supervisor.

No gradio: refusals are ``UserError`` (or the supervisor's ``JobError``, which ``webui.glue`` words for the page);
each action returns the message the page shows.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import CorpusError
from charrnn.model import count_params
from charrnn.runs.jobs import Busy, Supervisor, capped_config
from charrnn.runs.memory import estimate_peak_bytes, memory_limit
from charrnn.runs.runner import check_corpus
from charrnn.runs.store import RunDir, safe_run_name
from charrnn.runs.writes import human
from webui.context import AppContext
from webui.errors import UserError, esc, no_markup
from webui.expiry import make_room
from webui.owners import check_password, check_run_owner, record_owner
from webui.quotas import check_owned, folder_bytes
from webui.settings import Settings
from webui.train import startfrom
from webui.train.forms import MODEL_FIELDS, CorpusChoice, build_configs, read_corpus, text_stats, vocab_size_for
from webui.train.render import corpus_line, model_line
from webui.transfer import stamp
from webui.turns import askers


def default_run_name(choice: CorpusChoice, preset: str) -> str:
    stem = Path(choice.name).stem if choice.path or choice.name.endswith(".txt") else "pasted"
    return safe_run_name(f"{stem}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}")


def start_training(ctx: AppContext, password, source, bundled_name, upload, pasted, preset, values: dict,
                   run_name, key=None, visitor: str | None = None, now: float | None = None,
                   start_from=None) -> str:
    """Validate everything, then start the trainer on the chosen text; returns a message naming the run.
    ``key`` (the browser's, see ``webui.owners``) becomes the run's owner, and the run counts toward ``visitor``'s
    quota (their address, ``webui.fair``); ``now`` (epoch seconds) is when, for expiry and turns. ``start_from``:
    where the run starts (``webui.train.startfrom``; omitted: auto)."""
    now = time.time() if now is None else now
    settings = ctx.settings
    check_password(settings, password)
    choice = read_corpus(settings, source, bundled_name, upload, pasted)
    model_cfg, train_cfg = build_configs(settings, preset, None, values, len(choice.text))
    cap = settings.visitor_minutes if settings.password is None else 0
    train_cfg = capped_config(train_cfg, cap)        # no password: anyone may start, so no run holds the trainer
    try:                                             # refused here, before a trainer process starts
        vocab_size = check_corpus(choice.text, train_cfg)
    except (CorpusError, ValueError) as e:
        raise UserError(no_markup(e)) from None
    init = startfrom.resolve(settings, start_from, key, preset, ctx.wrong_keys, visitor,
                             sizes_set=sizes_set(settings, preset, values, len(choice.text), model_cfg))
    model_cfg = ModelConfig(**{**startfrom.shape_of(init, model_cfg).to_dict(), "vocab_size": vocab_size})
    params = count_params(model_cfg)
    if params > settings.max_params:
        raise UserError(f"That model has {params:,} parameters; the app trains at most {settings.max_params:,}. "
                        "Lower the hidden size or the layers.")
    check_memory(settings, model_cfg, train_cfg, len(choice.text))
    check_owned(settings, visitor)
    make_room(ctx, 0, now)
    check_disk(settings)
    name = run_name.strip() if isinstance(run_name, str) and run_name.strip() else default_run_name(choice, preset)
    job = in_turn(ctx, askers(key, visitor), name, now, lambda: ctx.jobs.start(
        name, choice.text, choice.path, choice.name, preset, model_cfg, train_cfg,
        on_created=lambda directory: record_owner(directory, key, visitor), init=init))
    capped = f" Runs here train at most {cap:g} minutes (no training password is set)." if cap else ""
    return stamp(f"Started run **{name}** (pid {job.pid}): {params:,} parameters on {esc(choice.name)}"
                 f"{startfrom.started_words(init)}.{capped}")


def sizes_set(settings: Settings, preset: str, values: dict, corpus_chars: int, model_cfg: ModelConfig) -> bool:
    """The form sets a model size other than the preset's own for this text (so auto keeps it, from zero)."""
    own, _ = build_configs(settings, preset, None, {**values, **dict.fromkeys(MODEL_FIELDS)}, corpus_chars)
    return any(getattr(own, k) != getattr(model_cfg, k) for k in MODEL_FIELDS)


def check_memory(settings: Settings, model_cfg: ModelConfig, train_cfg: TrainConfig, corpus_chars: int) -> None:
    """Refuse a run whose estimated peak memory would not fit in what this server lets training use."""
    need = estimate_peak_bytes(model_cfg, train_cfg, corpus_chars)
    allowed = settings.train_memory or memory_limit() - settings.app_memory
    if need > allowed:
        raise UserError(f"This run would need about {human(need)} of memory; this server lets a run use "
                        f"{human(max(allowed, 0))}. Memory grows with batch size x sequence length x hidden size: "
                        "lower one of them.")


def check_disk(settings: Settings) -> None:
    """Refuse a new run while the checkpoints folder is over its cap (a Space's disk is shared and small)."""
    used = folder_bytes(settings.root)
    if used > settings.max_checkpoints_bytes:
        raise UserError(f"The saved runs take {human(used)}, over this server's {human(settings.max_checkpoints_bytes)}"
                        ": delete a run you no longer need, then start again.")


def in_turn(ctx: AppContext, who: frozenset[str], run: str, now: float, start: Callable):
    """``start()`` (a Start or a Resume of ``run``) when it is ``who``'s turn at the one trainer (``webui.turns``); one
    refused because the trainer is busy makes them wait for it. A password's holder waits for nobody, and a burst
    (``webui.train.burst``) trains in its own event: no turns for them."""
    if ctx.settings.password or not isinstance(ctx.jobs, Supervisor):
        return start()
    if ctx.jobs.active() is None:
        ctx.turns.check(who, now, ended_at(ctx.settings.root, ctx.turns.run))
    try:
        started = start()
    except Busy:
        ctx.turns.asked(who, now)
        raise
    ctx.turns.began(who, run, now)
    return started


def ended_at(root: Path, run: str | None) -> float | None:
    """When run ``run`` ended: its final status was written then (None when there is no such run)."""
    try:
        return (root / run / RunDir.STATUS).stat().st_mtime if run else None
    except OSError:
        return None


def stop_training(ctx: AppContext, password, key=None, visitor: str | None = None) -> str:
    """Ask the running trainer to stop: it finishes its step, saves a checkpoint and says 'stopped'. With no
    password set, only the run's owner (``key``) may; ``visitor``'s wrong keys are counted (``owners.WrongKeys``)."""
    settings = ctx.settings
    check_password(settings, password)
    job, signalled = ctx.jobs.stop(check=lambda name: check_run_owner(settings, name, key, "stop", ctx.wrong_keys,
                                                                      visitor))
    if not signalled:
        return stamp(f"Run **{job.name}** had already ended.")
    return stamp(f"Stopping **{job.name}**: it finishes the current step and saves a final checkpoint.")


def resume_training(ctx: AppContext, password, run, more_iterations, more_minutes, key=None,
                    visitor: str | None = None, now: float | None = None) -> str:
    """Continue a stopped run from its checkpoint, optionally with a bigger budget (more steps or minutes). With no
    password set, only the run's owner (``key``) may, and only in their turn (``webui.turns``)."""
    check_password(ctx.settings, password)
    cap = ctx.settings.visitor_minutes if ctx.settings.password is None else 0
    check_run_owner(ctx.settings, run, key, "resume", ctx.wrong_keys, visitor)
    now = time.time() if now is None else now
    job, step = in_turn(ctx, askers(key, visitor), run, now,
                        lambda: ctx.jobs.resume(run, more_iterations, more_minutes, cap_minutes=cap))
    capped = f" It trains at most {cap:g} more minutes (no training password is set)." if cap else ""
    return stamp(f"Resumed **{esc(run)}** (pid {job.pid}) from step {step:,}.{capped}")


# --- what the form says about its values -----------------------------------------------
def describe_corpus(settings: Settings, source, bundled_name, upload, pasted) -> tuple[str, dict]:
    """A line on the chosen text (size, characters) and its stats for the model line."""
    choice = read_corpus(settings, source, bundled_name, upload, pasted)
    stats = text_stats(choice.text)
    return corpus_line(choice, stats), stats


def describe_model(settings: Settings, stats: dict | None, preset, values: dict, start_from=None, key=None) -> str:
    """The parameter count of the configured model, its shape and budget; where it starts from (``start_from``,
    the Train tab's choice): a model it fine-tunes gives it its shape, and auto says what it may fine-tune."""
    vocab_size = vocab_size_for(preset, stats) or 1
    chars = stats["chars"] if stats else None
    model_cfg, train_cfg = build_configs(settings, preset, vocab_size, values, chars)
    init = startfrom.resolve(settings, start_from, key, preset,
                             sizes_set=bool(chars) and sizes_set(settings, preset, values, chars, model_cfg))
    if init in (startfrom.AUTO, startfrom.NONE):
        line = model_line(model_cfg, train_cfg, count_params(model_cfg), settings.max_params,
                          vocab_known=bool(stats) or vocab_size > 1)
        return line + (" " + startfrom.auto_words() if init == startfrom.AUTO else "")
    base = startfrom.base_config(init)
    tuned = ModelConfig(**{**startfrom.shape_of(init, model_cfg).to_dict(), "vocab_size": base.vocab_size})
    line = model_line(tuned, train_cfg, count_params(tuned), settings.max_params, vocab_known=True)
    return (f"Fine-tuning **{esc(startfrom.model_name(init))}**, so its size and its {base.vocab_size} characters "
            f"(the text's new ones are added): {line}")
