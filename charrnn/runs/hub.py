"""Models on the Hugging Face Hub: a run's kept model pushed as a model repository with a card, and a model
repository pulled back as a new run.

Each half is a local step and a thin network step. ``stage_run`` writes what a push uploads into a folder and
``push`` uploads that folder; ``pull`` downloads only model.safetensors and hands it to ``add_from_snapshot``,
which checks the file in full (as the app checks an upload: safetensors only, never unpickled, shapes and size
before anything is allocated) before a run folder exists. The token is huggingface_hub's own (HF_TOKEN, or
``hf auth login``); nothing here reads or stores it. huggingface_hub is imported only when the network is used.
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from charrnn.runs.store import RunDir, load_checkpoint, new_run_folder, safe_run_name
from charrnn.runs.weights import CheckpointError, layout_problem, max_file_bytes, write_weights
from charrnn.runs.writes import atomic_write, human, write_json

HUB_PREFIX = "hf:"                       # --checkpoint hf:OWNER/NAME generates from a model on the Hub
CARD = "README.md"
PLOT = RunDir.PLOTS[0]                   # loss.png: the Hub shows images, not PDFs
MAX_PARAMS = 50_000_000                  # a pulled model above this is none charrnn trains (the app stops at 20M)
LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}\Z")   # a Hub licence id: mit, apache-2.0, cc-by-sa-4.0, ...


class HubError(ValueError):
    """A push or pull that cannot happen; the message says why and what to do."""


# --- push: stage, then upload ------------------------------------------------------------
def stage_run(run_dir: str | Path, out_dir: str | Path, repo_id: str) -> list[Path]:
    """Write what a push of the run's kept model uploads into ``out_dir``: model.safetensors (weights and header,
    rewritten from the loaded model), checkpoint.json, loss.png when the run has one, and a README.md model card.
    Touches no network; returns the files written."""
    run, out = RunDir(run_dir), Path(out_dir)
    if run.weights.is_symlink() or not run.weights.is_file():
        raise HubError(f"{run.name} has no kept model ({RunDir.WEIGHTS}) to push: train it until it saves one")
    model, vocab, header = load_checkpoint(run.weights)
    out.mkdir(parents=True, exist_ok=True)
    meta = {**shipped_meta(header), "params": model.num_params()}
    header = write_weights(out / RunDir.WEIGHTS, model, vocab, meta)
    write_json(out / RunDir.META, header)
    files = [out / RunDir.WEIGHTS, out / RunDir.META]
    plot = run.file(PLOT)
    if plot.is_file() and not plot.is_symlink():
        atomic_write(out / PLOT, lambda tmp: shutil.copyfile(plot, tmp))
        files.append(out / PLOT)
    atomic_write(out / CARD, lambda tmp: Path(tmp).write_text(model_card(header, repo_id), encoding="utf-8"))
    return [*files, out / CARD]


def shipped_meta(header: dict) -> dict:
    """The header's run records without what is only true on this machine (an older header's corpus path)."""
    meta = {k: v for k, v in header.items() if k not in ("format", "model_config", "vocab")}
    if isinstance(meta.get("data"), dict):
        meta["data"] = {k: v for k, v in meta["data"].items() if k != "path"}
    return meta


def push(run_dir: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload the run's staged files to the model repository ``repo_id`` (made if new); returns its URL."""
    from huggingface_hub import HfApi, get_token

    check_repo_id(repo_id)
    if get_token() is None:
        raise HubError("no Hugging Face token: run `hf auth login`, or set HF_TOKEN to a token with write access")
    with tempfile.TemporaryDirectory(prefix="charrnn-push-") as folder:
        stage_run(run_dir, folder, repo_id)
        with hub_errors(repo_id, "write to"):
            api = HfApi()
            url = api.create_repo(repo_id, repo_type="model", private=private or None, exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model",
                              commit_message=f"charrnn: {RunDir(run_dir).name}")
    return str(url)


# --- the model card ----------------------------------------------------------------------
def model_card(header: dict, repo_id: str) -> str:
    """README.md of a pushed model: the Hub's YAML front matter, then corpus, model, loss, how to generate."""
    cfg, data = header["model_config"], header.get("data") or {}
    licence = header.get("license") if isinstance(header.get("license"), str) else "mit"
    licence = licence if LICENSE.match(licence) else "mit"
    cell = plain(cfg.get("cell", "lstm"))
    name = pull_name(repo_id)
    return "\n".join([
        "---", "library_name: charrnn", f"license: {licence}", "tags:", "- char-rnn", f"- {cell}",
        "- text-generation", "---", "",
        f"# {repo_id.rsplit('/', 1)[-1]}", "",
        f"A character-level {cell.upper()} language model trained with charrnn: it reads and writes text one "
        "character at a time.", "",
        "## Training data", "",
        f"Corpus: `{plain(data.get('name', 'unknown'))}`, {count(data.get('chars'))} characters "
        f"({count(data.get('bytes'))} bytes).", "",
        "## Model", "",
        "| cell | layers | hidden | embed | parameters | vocabulary |",
        "|---|---|---|---|---|---|",
        f"| {cell} | {cfg.get('layers')} | {cfg.get('hidden')} | {cfg.get('embed')} | {count(header.get('params'))} "
        f"| {len(header.get('vocab', ''))} characters |", "",
        "## Results", "",
        loss_line(header), "",
        "## Generate text", "",
        "With charrnn installed (`pip install -r requirements.txt` in its repository):", "",
        "```", f"python -m charrnn hub pull {repo_id}",
        f"python -m charrnn generate --checkpoint {name} --length 500 --temperature 0.8", "```", "",
        f"`hub pull` checks the file in full (safetensors only, never unpickled) and adds it as the run `{name}`; "
        f"`--checkpoint {HUB_PREFIX}{repo_id}` generates from it without adding a run.", "",
        "## Files", "",
        f"- `{RunDir.WEIGHTS}`: the weights, with the model config, vocabulary and training records as JSON in its "
        "metadata (key `charrnn`): on its own enough to generate text",
        f"- `{RunDir.META}`: the same header, readable",
        f"- `{PLOT}`: training and validation loss (when the run had one)", "",
        "## Licence", "",
        f"{licence}", ""])


def loss_line(header: dict) -> str:
    val, step = header.get("val_loss"), header.get("step")
    seen = f" ({count(header['chars_seen'])} characters seen)" if isinstance(header.get("chars_seen"), int) else ""
    if not (isinstance(val, (int, float)) and math.isfinite(val)):
        return f"Kept at step {count(step)}{seen}; not evaluated on validation text."
    return (f"Validation loss {val:.4f} nats/char ({val / math.log(2):.3f} bits/char), kept at step "
            f"{count(step)}{seen}.")


def count(n) -> str:
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else "?"


def plain(text) -> str:
    """User text (a corpus name) as one line of Markdown with no markup of its own."""
    return re.sub(r"[`<>|\[\]*_\\]", "", " ".join(str(text).split()))[:100] or "?"


# --- pull: download, then add as a run ---------------------------------------------------
def pull_name(repo_id: str) -> str:
    """The run name a pull gives ``repo_id`` unless told another: the repository's own name."""
    return safe_run_name(repo_id.rsplit("/", 1)[-1])


def pull(repo_id: str, root: str | Path, name: str | None = None, max_params: int = MAX_PARAMS) -> RunDir:
    """Download the model of ``repo_id`` and add it as a new run under ``root`` (see ``add_from_snapshot``)."""
    root = Path(root)
    check_repo_id(repo_id)
    if name is not None and RunDir.of(root, name).path.exists():
        raise HubError(f"a run named {name} already exists in {root}; pick another with --name (nothing was "
                       "overwritten)")
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".pull-", dir=root))        # hidden: never listed as a run
    try:
        download(repo_id, folder, max_params)
        return add_from_snapshot(folder, root, name, max_params, source=repo_id)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cached_model(repo_id: str, max_params: int = MAX_PARAMS) -> Path:
    """model.safetensors of ``repo_id`` in huggingface_hub's cache, checked in full; no run is added."""
    check_repo_id(repo_id)
    snapshot = download(repo_id, None, max_params)
    weights = snapshot / RunDir.WEIGHTS
    check_model(weights, f"{RunDir.WEIGHTS} of {repo_id}", max_params)
    return weights


def download(repo_id: str, local_dir: Path | None, max_params: int) -> Path:
    """The snapshot folder holding only model.safetensors of ``repo_id``; a file past the size cap is refused
    before it is downloaded."""
    from huggingface_hub import snapshot_download

    with hub_errors(repo_id, "read"):
        planned = snapshot_download(repo_id, local_dir=local_dir, allow_patterns=[RunDir.WEIGHTS], dry_run=True)
        sizes = [f.file_size for f in planned if f.filename == RunDir.WEIGHTS and f.file_size is not None]
        if sizes and sizes[0] > max_file_bytes(max_params):
            raise HubError(f"{RunDir.WEIGHTS} of {repo_id} is {human(sizes[0])}; models up to "
                           f"{human(max_file_bytes(max_params))} ({max_params:,} parameters) are pulled. "
                           "Nothing was added.")
        return Path(snapshot_download(repo_id, local_dir=local_dir, allow_patterns=[RunDir.WEIGHTS]))


def add_from_snapshot(snapshot_dir: str | Path, root: str | Path, name: str | None, max_params: int = MAX_PARAMS,
                      source: str | None = None) -> RunDir:
    """Add the model.safetensors of a downloaded snapshot as a new run under ``root``, after checking all of it:
    named ``name`` (refused if taken), else after ``source`` (the repository id) or the folder, ``-2``, ``-3``, ...
    added while taken. A bad file raises ``HubError`` and leaves no run folder."""
    where = source or str(snapshot_dir)
    weights = Path(snapshot_dir) / RunDir.WEIGHTS
    if not weights.is_file():
        raise HubError(f"{where} has no {RunDir.WEIGHTS}: it is not a charrnn model (a charrnn push uploads one). "
                       "Nothing was added.")
    header = check_model(weights, f"{RunDir.WEIGHTS} of {where}", max_params)
    run = new_run(Path(root), name) if name else new_run(Path(root), pull_name(where), numbered=True)
    try:
        write_json(run.file(RunDir.META), header)
        run.write_status("pulled", file=(f"{HUB_PREFIX}{source}" if source else where)[:200], added=time.time())
        atomic_write(run.weights, lambda tmp: shutil.copyfile(weights, tmp))   # last: then it is listed
    except OSError as e:
        shutil.rmtree(run.path, ignore_errors=True)
        raise HubError(f"cannot write to the checkpoints folder: {e.strerror or e}. Nothing was added.") from None
    return run


def check_model(path: Path, shown: str, max_params: int) -> dict:
    """The header of the charrnn checkpoint at ``path`` after the full check ``load_checkpoint`` makes (size,
    safetensors layout, header, shapes, parameter cap); a ``HubError`` saying what the file is instead."""
    size = path.stat().st_size
    if size > max_file_bytes(max_params):
        raise HubError(f"{shown} is {human(size)}; models up to {human(max_file_bytes(max_params))} are pulled. "
                       "Nothing was added.")
    problem = layout_problem(path, shown)
    if problem:
        raise HubError(f"{problem} Nothing was added.")
    try:
        _, _, header = load_checkpoint(path, max_params=max_params)
    except CheckpointError as e:
        raise HubError(f"{shown} cannot be used: {str(e).removeprefix(f'{path}: ')}. Nothing was added.") from None
    return header


def new_run(root: Path, name: str, numbered: bool = False) -> RunDir:
    """A new, empty run folder ``name``, made with mkdir so no other pull shares it; when taken: refused, or where
    ``numbered``, ``-2``, ``-3``, ... added until free."""
    run = new_run_folder(root, name, numbered, tries=99)
    if run is not None:
        return run
    if not numbered:
        raise HubError(f"a run named {name} already exists in {root}; pick another with --name (nothing was "
                       "overwritten)")
    raise HubError(f"too many runs are named after {name}; give this one a name with --name")


# --- the Hub's errors, as one line -------------------------------------------------------
def check_repo_id(repo_id: str) -> None:
    """OWNER/NAME, as the Hub spells a repository (a bare NAME would land in whoever's namespace the token has)."""
    from huggingface_hub.utils import validate_repo_id

    with hub_errors(repo_id, "read"):
        validate_repo_id(repo_id)
    if repo_id.count("/") != 1:
        raise HubError(f"{repo_id!r} is not a model repository id: write OWNER/NAME (a user or organisation, "
                       "then the model's name)")


@contextmanager
def hub_errors(repo_id: str, action: str):
    """huggingface_hub's exceptions turned into one ``HubError`` line that names the fix."""
    import httpx2
    from huggingface_hub import errors

    try:
        yield
    except (errors.LocalTokenNotFoundError, errors.HFValidationError, errors.OfflineModeIsEnabled,
            errors.HfHubHTTPError, errors.LocalEntryNotFoundError, errors.DryRunError, httpx2.HTTPError) as e:
        raise HubError(hub_message(e, repo_id, action)) from None


def hub_message(error: BaseException, repo_id: str, action: str) -> str:
    """What ``error`` from huggingface_hub means for ``repo_id``, and what to do."""
    from huggingface_hub import errors

    if isinstance(error, errors.DryRunError) and error.__cause__ is not None:   # its own words hide the cause
        return hub_message(error.__cause__, repo_id, action)
    if isinstance(error, errors.LocalTokenNotFoundError):
        return "no Hugging Face token: run `hf auth login`, or set HF_TOKEN"
    if isinstance(error, errors.HFValidationError):
        return f"{repo_id!r} is not a model repository id ({first_line(error)}): write OWNER/NAME"
    if isinstance(error, errors.OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: unset it to reach the Hugging Face Hub"
    if isinstance(error, errors.GatedRepoError):
        return f"{repo_id} is gated: accept its conditions on huggingface.co, then log in (`hf auth login`)"
    if isinstance(error, errors.RepositoryNotFoundError):
        return (f"no model repository {repo_id} on the Hugging Face Hub (or it is private and your token cannot "
                "read it)")
    if isinstance(error, errors.HfHubHTTPError):
        return http_message(error, repo_id, action)
    if isinstance(error, errors.LocalEntryNotFoundError):
        return (f"cannot reach the Hugging Face Hub, and {repo_id} is not in the local cache: check your network "
                f"connection ({first_line(error.__cause__ or error)})")
    return (f"cannot reach the Hugging Face Hub ({type(error).__name__}: {first_line(error)}): check your network "
            "connection")


def http_message(error, repo_id: str, action: str) -> str:
    status = getattr(error.response, "status_code", None)
    if status == 401:
        return "the Hugging Face Hub refused your token (401): log in again (`hf auth login`) or set a valid HF_TOKEN"
    if status == 403:
        return (f"your Hugging Face token may not {action} {repo_id} (403): use a token with write access to "
                "that user or organisation")
    return f"the Hugging Face Hub answered {status} for {repo_id}: {first_line(error)}"


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
