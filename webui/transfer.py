"""Models that travel: a run's kept model and records as a download, a charrnn .safetensors file added as a new run,
and a run deleted. No gradio: refusals are ``UserError``.

Every path comes from a resolved run directory (``webui.models.run_directory``). A download reads only fixed
file names inside that directory (never through a symlink) and writes only into the folder its caller passes, where
each version of a run is built once and handed to every request for it, within a total size. An
upload is checked in full before anything is written: the extension, the size, the safetensors layout, the charrnn
header and the weights, as ``load_checkpoint`` loads them (never unpickled); it then lands in a new run directory
under the checkpoints folder, never over an existing one.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from charrnn.runs.schema import pid_alive
from charrnn.runs.store import RunDir, load_checkpoint, new_run_folder, safe_run_name
from charrnn.runs.weights import CheckpointError, layout_problem, max_file_bytes
from charrnn.runs.writes import atomic_write, write_json
from charrnn.runs.writes import human as human_bytes
from webui.context import AppContext
from webui.errors import UserError, esc, no_markup
from webui.expiry import make_room
from webui.models import BUNDLED_KEY, checkpoint_line, resolve_checkpoint, run_directory
from webui.owners import check_owner, check_password, record_owner
from webui.quotas import check_owned, folder_bytes
from webui.settings import Settings

TRAVELS = (RunDir.WEIGHTS, RunDir.META, RunDir.METRICS, "loss.png", "loss.pdf")   # what a download holds, when present
STORED = {".safetensors", ".png", ".pdf"}          # already dense: zipped without compression
ZIP_ROOM = 4096                                    # a zip's headers and directory, beyond 1% its deflate may add
BUSY = ("running", "stopping", "starting")


def model_cap(settings: Settings) -> int:
    """The largest model file the app takes: float32 weights of the biggest model it would train, and a header."""
    return max_file_bytes(settings.max_params)


def training_state(ctx: AppContext, directory: Path) -> str | None:
    """The run's state as the job supervisor reads it ('starting' before a trainer of ours writes its status,
    'running' only while a trainer is alive, 'stopping' after Stop); the bundled run's from its status file."""
    if directory.parent == ctx.settings.root:
        return ctx.jobs.state(directory.name).get("state")
    return RunDir(directory).status().get("state")


def trainer_attached(ctx: AppContext, directory: Path, exit_wait_s: float = 5.0) -> bool:
    """A trainer process of ours for this run may still write to it: one that is starting (a resume). One that
    wrote its final status is only exiting: it is given ``exit_wait_s`` to end, and counts as detached either way
    (it writes nothing to the run any more but a last log line)."""
    jobs = ctx.jobs
    if not (directory.parent == ctx.settings.root and jobs.child_alive() and jobs.run == directory.name):
        return False
    if not jobs.child_done():
        return True
    try:
        jobs.proc.wait(timeout=exit_wait_s)
    except subprocess.TimeoutExpired:
        pass
    return False


# --- download ---------------------------------------------------------------------------
DOWNLOADS_PREFIX = "charrnn-downloads-"


class DownloadFolder:
    """Where downloads are built: a private folder under ``base`` (the system's temp directory), made on first use,
    with one subfolder per run version that ``build_download`` builds once and hands to every request for it.
    Removed at exit (``webui.demo.launch`` makes SIGTERM an orderly exit); one a killed app left behind is removed
    by the next app's first download."""

    def __init__(self, base: Path | None = None):
        self.base, self.path, self.lock = Path(base or tempfile.gettempdir()), None, threading.Lock()

    def ready(self) -> Path:
        with self.lock:
            if self.path is None or not self.path.is_dir():
                remove_orphans(self.base)
                self.path = Path(tempfile.mkdtemp(prefix=f"{DOWNLOADS_PREFIX}{os.getpid()}-", dir=self.base))
                atexit.register(shutil.rmtree, self.path, True)
            return self.path

    fresh = ready           # its earlier name, which webui/generate/tab.py still calls


def remove_orphans(base: Path) -> None:
    """Remove the download folders of apps that are gone (their pid is in the folder's name)."""
    for folder in base.glob(f"{DOWNLOADS_PREFIX}*-*"):
        pid = folder.name.removeprefix(DOWNLOADS_PREFIX).split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def travelling_files(directory: Path) -> list[Path]:
    """The run's files that a download holds: fixed names, regular files (a symlink is left out)."""
    return [directory / name for name in TRAVELS
            if not (directory / name).is_symlink() and (directory / name).is_file()]


def downloadable_run(ctx: AppContext, key) -> Path:
    """The run directory of picker value ``key``, when it has a kept model and no trainer writing to it."""
    if not key:
        raise UserError("No checkpoint chosen: pick the run to download.")
    directory = run_directory(ctx.settings, key)
    weights = resolve_checkpoint(ctx.settings, key)
    if weights.is_symlink() or not weights.is_file():
        raise UserError(f"{esc(directory.name)} has no model file of its own to download.")
    if training_state(ctx, directory) in BUSY:
        raise UserError(f"{esc(directory.name)} is still training: download it when it has finished, or after Stop.")
    return directory


def build_download(ctx: AppContext, key, folder: Path, now: float | None = None) -> list[Path]:
    """``<run>.zip`` (a folder ``<run>/`` of the kept model, checkpoint.json, metrics.jsonl and the loss plot) and
    ``<run>.safetensors`` (the kept model alone, to add back later), built once per version of the run in a subfolder
    of ``folder`` and handed out again while they last (``now``, epoch seconds, marks them handed out)."""
    directory = downloadable_run(ctx, key)
    name, files = directory.name, travelling_files(directory)
    version = folder / version_of(directory, files)
    built = [version / f"{name}.zip", version / f"{name}.safetensors"]
    now = time.time() if now is None else now
    try:
        if not built[1].is_file():              # a version's folder appears whole (renamed into place) or not at all
            folder.mkdir(parents=True, exist_ok=True)
            raw = sum(f.stat().st_size for f in files)
            need = raw + raw // 100 + ZIP_ROOM + (directory / RunDir.WEIGHTS).stat().st_size
            room_for_download(ctx.settings, folder, name, need, now)
            build_version(version, name, directory, files)
        os.utime(version, (now, now))           # handed out now: kept at least download_reuse_s from now
    except OSError as e:
        raise UserError(f"Cannot prepare the download of {esc(name)}: {esc(e.strerror or e)}") from None
    return built


def version_of(directory: Path, files: list[Path]) -> str:
    """A name for what a download of the run holds now: its folder and each file's name, size and time."""
    stamps = [str(directory)] + [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:24]


def build_version(version: Path, name: str, directory: Path, files: list[Path]) -> None:
    """Write the zip and the model into a hidden folder, then rename it to ``version``; a request that built the
    same version meanwhile wins, and this copy is dropped."""
    staging = version.parent / f".building-{secrets.token_hex(6)}"
    try:
        staging.mkdir()
        write_zip(staging / f"{name}.zip", name, files)
        shutil.copyfile(directory / RunDir.WEIGHTS, staging / f"{name}.safetensors")
        try:
            os.rename(staging, version)
        except OSError:
            if not (version / f"{name}.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def room_for_download(settings: Settings, folder: Path, name: str, need: int, now: float) -> None:
    """Remove built downloads, least recently handed out first, until ``need`` more bytes fit in
    ``max_download_bytes``; never one handed out within ``download_reuse_s`` (its visitor may still be fetching it)."""
    cap = settings.max_download_bytes
    if need > cap:
        raise UserError(f"{esc(name)} takes {human_bytes(need)} to download; this server prepares downloads of up "
                        f"to {human_bytes(cap)}. Ask whoever runs it for the run's files.")
    for version in sorted((v for v in folder.iterdir() if not v.name.startswith(".")), key=handed_out):
        if folder_bytes(folder) + need <= cap or handed_out(version) > now - settings.download_reuse_s:
            break
        shutil.rmtree(version, ignore_errors=True)
    if folder_bytes(folder) + need > cap:
        minutes = max(1, round(settings.download_reuse_s / 60))
        raise UserError(f"The downloads handed out in the last {minutes} minutes take "
                        f"{human_bytes(folder_bytes(folder))} of the {human_bytes(cap)} this server keeps for them: "
                        f"try again in {minutes} minutes.")


def handed_out(version: Path) -> float:
    """When a built download was last handed out (its folder's time, read now: another request may just have)."""
    try:
        return version.stat().st_mtime
    except OSError:
        return 0.0                                  # removed meanwhile


def write_zip(path: Path, folder: str, files: list[Path]) -> None:
    """A zip of ``files`` under ``folder/``; the same files give the same bytes (entries dated by file times)."""
    with zipfile.ZipFile(path, "w") as z:
        for file in files:
            dated = time.localtime(max(file.stat().st_mtime, 315532800))[:6]        # zip dates start in 1980
            info = zipfile.ZipInfo(f"{folder}/{file.name}", date_time=dated)
            info.compress_type = zipfile.ZIP_STORED if file.suffix in STORED else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(file, "rb") as src, z.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


# --- upload -----------------------------------------------------------------------------
def check_model_file(path: Path, max_bytes: int) -> dict:
    """The header of the charrnn checkpoint at ``path``, after checking all of it as ``load_checkpoint`` does;
    a ``UserError`` saying what the file is instead. Reads it, writes nothing."""
    shown = esc(path.name)
    if path.suffix.lower() != ".safetensors":
        raise UserError(f"{shown} is not a .safetensors file. Only checkpoints charrnn wrote (model.safetensors, or "
                        "the .safetensors of a download) can be added; pickles and other formats are never opened.")
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(f"{shown} is {human_bytes(size)}; the app takes models up to {human_bytes(max_bytes)}.")
    check_layout(path, shown)
    try:
        _, _, header = load_checkpoint(path)
    except CheckpointError as e:
        reason = str(e).removeprefix(f"{path}: ")
        raise UserError(f"{shown} cannot be used: {no_markup(reason)}.") from None
    return header


def check_layout(path: Path, shown: str) -> None:
    """The safetensors layout (8-byte header length, JSON header, tensor data) and a charrnn header in it."""
    problem = layout_problem(path, shown)
    if problem:
        again = " Download it again." if "cut short" in problem else ""
        raise UserError(f"{problem}{again} Nothing was added.")

def new_run_dir(root: Path, wanted, stem: str) -> Path:
    """A new, empty run directory: named ``wanted`` (refused if taken), else after the file (``-2``, ``-3``, ...
    added until the name is free). Made with mkdir, so two uploads never share one."""
    named = isinstance(wanted, str) and bool(wanted.strip())
    base = wanted.strip() if named else safe_run_name(stem)[:70]
    try:
        run = new_run_folder(root, base, numbered=not named)
        if run is not None:
            return run.path
        if named:
            raise UserError(f"A run named {esc(base)} already exists; pick another name (nothing was "
                            "overwritten).")
    except CheckpointError as e:
        raise UserError(no_markup(e)) from None
    except OSError as e:
        raise UserError(f"Cannot write to the checkpoints folder: {esc(e.strerror or e)}") from None
    raise UserError(f"Too many runs are named after {esc(base)}; give this one a name.")


def add_model(ctx: AppContext, password, upload, run_name=None, owner_key=None, visitor: str | None = None,
              now: float | None = None) -> str:
    """Add an uploaded charrnn checkpoint as a new run (selectable in the picker), owned by ``owner_key`` (see
    ``webui.owners``) and counted toward ``visitor``'s quota (``webui.quotas``); expired runs make room for it
    (``webui.expiry``, at ``now``, epoch seconds). Returns the message to show."""
    settings = ctx.settings
    check_password(settings, password)
    if not upload:
        raise UserError("Choose a .safetensors file to add.")
    path = Path(upload)
    if not path.is_file():
        raise UserError("The uploaded file is gone; upload it again.")
    header = check_model_file(path, model_cap(settings))
    size = path.stat().st_size
    check_owned(settings, visitor, size)
    make_room(ctx, size, now)
    used = folder_bytes(settings.root)
    if used + size > settings.max_checkpoints_bytes:
        raise UserError(f"The saved runs take {human_bytes(used)}; with this model they would pass this server's "
                        f"{human_bytes(settings.max_checkpoints_bytes)}: delete a run you no longer need, then add it.")
    directory = new_run_dir(settings.root, run_name, path.stem)
    try:
        write_json(directory / RunDir.META, header)
        record_owner(directory, owner_key, visitor)
        RunDir(directory).write_status("uploaded", file=path.name, added=time.time())
        atomic_write(directory / RunDir.WEIGHTS, lambda tmp: shutil.copyfile(path, tmp))   # last: then it is listed
    except OSError as e:
        shutil.rmtree(directory, ignore_errors=True)
        raise UserError(f"Cannot write to the checkpoints folder: {esc(e.strerror or e)}. Nothing was added.") from None
    return stamp(f"Added **{directory.name}**, now in the checkpoint list: {checkpoint_line(header)}")


# --- delete -----------------------------------------------------------------------------
def delete_run(ctx: AppContext, password, key, owner_key=None, visitor: str | None = None) -> str:
    """Delete a run's directory: never the bundled model, never a run that is training; with no password set,
    only the run's owner (``owner_key``) may; ``visitor``'s wrong keys are counted (``owners.WrongKeys``)."""
    settings = ctx.settings
    check_password(settings, password)
    if not key:
        raise UserError("No run chosen: pick the run to delete.")
    directory = run_directory(settings, key)
    if key == BUNDLED_KEY or directory == settings.bundled.resolve():
        raise UserError("The bundled model cannot be deleted: it is what a fresh app generates from.")
    if not directory.is_dir():
        raise UserError(f"There is no run named {esc(directory.name)}.")
    check_owner(settings, directory, owner_key, "delete", ctx.wrong_keys, visitor)
    trash = settings.root / f".deleting-{directory.name}-{secrets.token_hex(4)}"   # hidden: never listed
    with ctx.jobs.lock:                                   # no Start or Resume of it in between
        if training_state(ctx, directory) in BUSY:
            raise UserError(f"{esc(directory.name)} is training: press Stop, then delete it.")
        if trainer_attached(ctx, directory):
            raise UserError(f"The trainer of {esc(directory.name)} is starting or just ending; try again in a moment.")
        try:
            os.rename(directory, trash)
        except OSError as e:
            raise UserError(f"Cannot delete {esc(directory.name)}: {esc(e.strerror or e)}") from None
    shutil.rmtree(trash, ignore_errors=True)
    return stamp(f"Deleted **{directory.name}**.")


def stamp(message: str) -> str:
    return f"{time.strftime('%H:%M:%S')} · {message}"
