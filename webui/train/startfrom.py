"""The Train tab's "Start from": auto, nothing, a bundled model or one of your runs.

Starting from a trained model is fine-tuning: the run takes that model's size and weights and learns the new text on
top (``charrnn train --init``). ``auto`` lets the trainer decide by a probe on the text's held-out part
(``charrnn.runs.startpoint``). The page's choice values are ``auto``, ``none``, ``english-base``, ``bundled`` (the
Shakespeare model) and ``run:NAME``; nothing else resolves, so no request names a file.
"""
from __future__ import annotations

from pathlib import Path

from charrnn.config import ModelConfig
from charrnn.model import count_params
from charrnn.runs import startpoint
from charrnn.runs.store import RunDir, read_header
from charrnn.runs.weights import CheckpointError
from webui.errors import UserError
from webui.models import BUNDLED_KEY, yours
from webui.owners import check_run_owner
from webui.settings import Settings

AUTO, NONE, BASE, BUNDLED, RUN = startpoint.AUTO, startpoint.NONE, "english-base", "bundled", "run:"
HINT = ("Fine-tuning starts from a trained model instead of random numbers: it keeps what that model learnt "
        "(letters, words, spelling) and learns your text on top, at that model's size. auto (with the auto recipe) "
        "does it when a quick check shows the English base already reads your text well, else trains from zero.")


def choices(settings: Settings, listed: list[dict], key) -> list[tuple[str, str]]:
    """The dropdown's (label, value) pairs: auto, nothing, the bundled models, then the caller's finished runs."""
    out = [("auto: the English base where it suits the text", AUTO), ("nothing: train from zero", NONE)]
    if startpoint.base_model() is not None:
        out.append(("the English base (bundled)", BASE))
    if (settings.bundled / RunDir.WEIGHTS).is_file():
        out.append((f"the {settings.bundled.name} model (bundled)", BUNDLED))
    mine = yours(settings, listed, key)
    out += [(f"your run {r['name']}", RUN + r["name"]) for r in listed
            if r["key"] in mine and r["key"] != BUNDLED_KEY and r["status"].get("state") != "running"]
    return out


def resolve(settings: Settings, value, key, preset: str = "auto", wrong_keys=None, visitor: str | None = None,
            sizes_set: bool = False) -> str:
    """What run.json's ``init`` says for a choice: ``auto``, ``none`` or a model file; a refusal says why. auto
    weighs the base for the auto recipe only (another preset is a fixed recipe, its model from zero), and not when
    the visitor set the model's size (``sizes_set``) or the base is bigger than this app trains. A run is someone's
    to start from as to resume (``wrong_keys``/``visitor``: wrong keys counted, ``webui.owners``)."""
    if value in (None, "", AUTO):
        return AUTO if preset == "auto" and not sizes_set and base_fits(settings) else NONE
    if value == NONE:
        return NONE
    if value == BASE:
        base = startpoint.base_model()
        if base is None:
            raise UserError("This server has no English base model; choose auto or nothing.")
        return str(checked(settings, base / RunDir.WEIGHTS if base.is_dir() else base, "The English base"))
    if value == BUNDLED:
        return str(checked(settings, settings.bundled / RunDir.WEIGHTS, f"The {settings.bundled.name} model"))
    if isinstance(value, str) and value.startswith(RUN):
        name = value[len(RUN):]
        try:
            run = RunDir.of(settings.root, name)
        except CheckpointError:
            run = None
        if run is None or not run.path.is_dir():
            raise UserError(f"There is no run {name!r} to start from.")
        if not run.weights.is_file():
            raise UserError(f"Run {name!r} has no kept model yet to start from.")
        check_run_owner(settings, name, key, "start from", wrong_keys, visitor)
        return str(checked(settings, run.weights, f"Run {name}"))
    raise UserError("Choose where the run starts: auto, nothing, a bundled model or one of your runs.")


def base_fits(settings: Settings) -> bool:
    """There is an English base this app may fine-tune (within ``max_params``)."""
    base = startpoint.base_model()
    if base is None:
        return False
    try:
        checked(settings, base / RunDir.WEIGHTS if base.is_dir() else base, "The English base")
    except UserError:
        return False
    return True


def checked(settings: Settings, weights: Path, what: str) -> Path:
    """``weights`` when its header reads and its model is within what this app trains."""
    try:
        header = read_header(weights)
        config = ModelConfig(**header["model_config"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        raise UserError(f"{what} cannot be read as a model to start from.") from None
    if count_params(config) > settings.max_params:
        raise UserError(f"{what} has {count_params(config):,} parameters; this app trains at most "
                        f"{settings.max_params:,}.")
    return weights


def shape_of(init: str | None, model_cfg: ModelConfig) -> ModelConfig:
    """The model a run starting from ``init`` will have (the base's shape with the form's dropout), for the memory
    and size checks before it starts; the form's own under auto (it is the larger of the two only rarely)."""
    if init in (None, AUTO, NONE):
        return model_cfg
    base = base_config(init)
    return ModelConfig(**{**model_cfg.to_dict(), **{k: getattr(base, k) for k in startpoint.SHAPE_KEYS}})


def base_config(init: str) -> ModelConfig:
    """The model config of the model file ``init`` (a path ``resolve`` returned)."""
    return ModelConfig(**read_header(init)["model_config"])


def model_name(init: str) -> str:
    """The name a model file is known by: its run folder's, or the file's own stem."""
    path = Path(init)
    return path.parent.name if path.name == RunDir.WEIGHTS else path.stem


def auto_words() -> str:
    """What the model line adds under auto: the model it may fine-tune instead, and when."""
    base = startpoint.base_model()
    weights = base / RunDir.WEIGHTS if base.is_dir() else base
    cfg = base_config(str(weights))
    return (f"auto may instead fine-tune the English base ({cfg.cell.upper()} {cfg.layers} x {cfg.hidden}, "
            f"{count_params(cfg):,} parameters) if a quick check at the start says it already reads this text well.")


def started_words(init: str | None) -> str:
    """How a Start's message says where the run starts ("" from zero)."""
    if init == AUTO:
        return "; it starts from the English base if a quick check says the base suits the text"
    if init in (None, NONE):
        return ""
    return f", fine-tuning {model_name(init)} (its size and weights)"
