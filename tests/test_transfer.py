"""webui.transfer: a run downloaded (zip and model file), a charrnn .safetensors file added back as a new run, a run
deleted. No gradio: refusals are UserError. Bad uploads are refused with a message naming what the file is, and
nothing is written; nothing outside a run directory is read."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from app_fixtures import corpus_text, fake_trainer_running, make_checkpoint, tiny_context
from safetensors.torch import load_file, save_file

from charrnn.runs.store import RunDir, plot_losses, read_header
from charrnn.runs.weights import read_json
from charrnn.sample import generate
from webui.errors import UserError
from webui.models import BUNDLED_KEY, list_checkpoints, load_model
from webui.transfer import (
    DownloadFolder,
    add_model,
    build_download,
    check_model_file,
    delete_run,
    model_cap,
    travelling_files,
)


@pytest.fixture
def ctx(tmp_path):
    """A context with one finished run, "tiny", that has every file a trained run has."""
    ctx = tiny_context(tmp_path)
    run = ctx.settings.root / "tiny"
    records = [{"step": 5, "train_loss": 3.0}, {"step": 10, "train_loss": 2.6, "val_loss": 2.5}]
    for r in records:
        RunDir(run).append_metrics(r)
    plot_losses(run, records)
    RunDir(run).write_status("finished", step=10)
    RunDir(run).save_train_state(10, {"step": torch.tensor(10)})
    (run / "corpus.txt").write_text(corpus_text(), encoding="utf-8")
    (run / "train.log").write_text("log\n", encoding="utf-8")
    return ctx


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))} if root.exists() else {}


@contextmanager
def nothing_written(root: Path):
    """Fail if the block adds, removes or changes the size of anything in the checkpoints folder."""
    before = tree(root)
    yield
    assert tree(root) == before


def text_of(ctx, key: str) -> str:
    model, vocab, _ = load_model(ctx.settings, ctx.models, key)
    return "".join(generate(model, vocab, "the ", 80, temperature=0.8, seed=5))


# --- download ---------------------------------------------------------------------------
def test_a_download_is_a_zip_of_the_kept_model_its_records_and_plot_and_the_model_alone(ctx, tmp_path):
    run = ctx.settings.root / "tiny"
    archive, model = build_download(ctx, "tiny", tmp_path / "out")
    assert (archive.name, model.name) == ("tiny.zip", "tiny.safetensors")
    with zipfile.ZipFile(archive) as z:
        names = sorted(z.namelist())
        assert names == sorted(f"tiny/{n}" for n in (RunDir.WEIGHTS, RunDir.META, RunDir.METRICS, *RunDir.PLOTS))
        assert all(z.read(f"tiny/{n}") == (run / n).read_bytes() for n in (RunDir.WEIGHTS, RunDir.META, RunDir.METRICS))
    assert model.read_bytes() == (run / RunDir.WEIGHTS).read_bytes()        # no optimizer state, corpus or log


def test_the_same_run_downloads_to_the_same_bytes(ctx, tmp_path):
    first, _ = build_download(ctx, "tiny", tmp_path / "a")
    second, _ = build_download(ctx, "tiny", tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()        # so the server's file cache keeps one copy


def test_the_bundled_model_downloads_too(ctx, tmp_path):
    make_checkpoint(ctx.settings.bundled, corpus_text())
    archive, model = build_download(ctx, BUNDLED_KEY, tmp_path / "out")
    assert archive.name == "shakespeare.zip" and read_header(model)["run"] == "shakespeare"


def test_a_download_reads_nothing_outside_its_run(ctx, tmp_path):
    run = ctx.settings.root / "tiny"
    (run / RunDir.METRICS).unlink()
    (run / RunDir.METRICS).symlink_to("/etc/passwd")                 # a planted link is left out, not followed
    assert RunDir.METRICS not in [p.name for p in travelling_files(run)]
    archive, _ = build_download(ctx, "tiny", tmp_path / "out")
    with zipfile.ZipFile(archive) as z:
        assert "tiny/metrics.jsonl" not in z.namelist()
    make_checkpoint(tmp_path / "elsewhere", corpus_text())
    (ctx.settings.root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for key, message in (("../tiny", "invalid run name"), ("/etc", "invalid run name"), ("a/b", "invalid run name"),
                         ("link", "points outside"), ("nope", "no such checkpoint"), (None, "No checkpoint chosen"),
                         (BUNDLED_KEY, "no such checkpoint")):
        with pytest.raises(UserError, match=message):
            build_download(ctx, key, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()                    # refused before anything is written


def test_a_run_that_is_training_is_neither_downloaded_nor_deleted(ctx, tmp_path):
    with fake_trainer_running(ctx.settings.root, "busy"):
        make_checkpoint(ctx.settings.root / "busy", corpus_text())
        with pytest.raises(UserError, match="busy is still training"):
            build_download(ctx, "busy", tmp_path / "out")
        with pytest.raises(UserError, match="busy is training: press Stop"):
            delete_run(ctx, None, "busy")
        assert (ctx.settings.root / "busy" / RunDir.WEIGHTS).is_file()


def test_repeated_downloads_of_one_run_version_reuse_one_built_file(ctx, tmp_path):
    folder = tmp_path / "downloads"
    first = build_download(ctx, "tiny", folder, now=1000.0)
    again = [build_download(ctx, "tiny", folder, now=1000.0 + i) for i in range(20)]
    assert all(paths == first for paths in again)
    assert len({p.stat().st_ino for paths in again for p in paths}) == 2          # never written again
    assert len(list(folder.iterdir())) == 1                                        # one version, no staging left
    RunDir(ctx.settings.root / "tiny").append_metrics({"step": 11, "train_loss": 2.4})   # a new version of the run
    newer = build_download(ctx, "tiny", folder, now=1100.0)
    assert newer[0] != first[0] and len(list(folder.iterdir())) == 2


def test_built_downloads_stay_within_their_total_least_recently_handed_out_removed_first(ctx, tmp_path):
    shutil.copytree(ctx.settings.root / "tiny", ctx.settings.root / "other")     # as big as tiny
    folder, size = tmp_path / "downloads", sum(p.stat().st_size for p in build_download(ctx, "tiny", tmp_path / "x"))
    small = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, max_download_bytes=2 * size,
                                                                  download_reuse_s=600.0))
    tiny = build_download(small, "tiny", folder, now=1000.0)
    with pytest.raises(UserError, match=r"handed out in the last 10 minutes take .* try again in 10 minutes"):
        build_download(small, "other", folder, now=1300.0)           # tiny's visitor may still be fetching it
    other = build_download(small, "other", folder, now=1700.0)       # tiny was handed out 700 s ago: it goes
    assert not tiny[0].exists() and all(p.is_file() for p in other)
    huge = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, max_download_bytes=size // 4))
    with pytest.raises(UserError, match=r"tiny takes .* to download; this server prepares downloads of up to"):
        build_download(huge, "tiny", tmp_path / "y", now=1000.0)
    assert not list((tmp_path / "y").iterdir())


def test_the_download_folder_is_one_per_app_and_one_a_killed_app_left_is_removed(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    left = tmp_path / f"charrnn-downloads-{gone.pid}-abc"            # a killed app's: its pid is no process now
    live = tmp_path / f"charrnn-downloads-{os.getpid()}-def"          # another app's, still serving
    for folder in (left, live):
        (folder / "v").mkdir(parents=True)
    downloads = DownloadFolder(base=tmp_path)
    path = downloads.ready()
    assert path == downloads.ready() == downloads.fresh() and path.is_dir()
    assert not left.exists() and live.is_dir()


def test_sigterm_ends_the_app_in_order_so_its_download_folder_is_removed(tmp_path):
    code = ("import signal, time\n"
            "from webui.demo import interrupted\n"
            "from webui.transfer import DownloadFolder\n"
            "signal.signal(signal.SIGTERM, interrupted)\n"
            f"print(DownloadFolder(base={str(tmp_path)!r}).ready(), flush=True)\n"
            "try:\n    time.sleep(120)\n"                           # as gradio's launch blocks, until Ctrl-C
            "except KeyboardInterrupt:\n    pass\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    folder = Path(proc.stdout.readline().strip())
    assert folder.is_dir()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0 and not folder.exists()


# --- upload -----------------------------------------------------------------------------
def downloaded(ctx, tmp_path, key="tiny") -> Path:
    return build_download(ctx, key, tmp_path / "downloaded")[1]


def test_a_downloaded_model_added_back_is_a_new_run_that_generates_the_same_text(ctx, tmp_path):
    before = text_of(ctx, "tiny")
    model = downloaded(ctx, tmp_path)
    delete_run(ctx, None, "tiny")
    assert not (ctx.settings.root / "tiny").exists()
    message = add_model(ctx, None, str(model), "")
    assert "Added **tiny**" in message and "tiny.txt" in message
    run = ctx.settings.root / "tiny"
    assert (run / RunDir.WEIGHTS).read_bytes() == model.read_bytes()
    assert read_json(run / RunDir.META) == read_header(model)
    assert RunDir(run).status()["state"] == "uploaded"
    assert list_checkpoints(ctx.settings)[0]["key"] == "tiny"          # newest: selected in the picker
    assert text_of(ctx, "tiny") == before


def test_a_fine_tuned_model_is_named_by_its_base_and_text_and_comes_back_the_same_from_a_download(ctx, tmp_path):
    from charrnn.config import ModelConfig, TrainConfig
    from charrnn.runs.runner import Run
    from webui.models import checkpoint_line

    data = tmp_path / "poem.txt"
    data.write_text("Ünder the linden, on the heath, där vi två låg.\n" * 30, encoding="utf-8")
    steps = dict(batch_size=4, seq_len=16, iterations=6, warmup=1, eval_every=3, sample_every=1000,
                 checkpoint_every=3, log_every=3, eval_chars=300, device="cpu")
    run = Run.create(ctx.settings.root / "tuned", data, ModelConfig(vocab_size=1), TrainConfig(**steps),
                     init=ctx.settings.root / "tiny")
    list(run.train())
    listed = {r["key"]: r for r in list_checkpoints(ctx.settings)}
    assert listed["tuned"]["label"] == "tuned (tiny fine-tuned on poem.txt)"
    assert checkpoint_line(listed["tuned"]["header"]).startswith("Fine-tuned from **tiny** on **poem.txt**")
    assert listed["tiny"]["label"] == "tiny"                                      # trained from zero: its name
    before = text_of(ctx, "tuned")
    model = downloaded(ctx, tmp_path, "tuned")
    delete_run(ctx, None, "tuned")
    add_model(ctx, None, str(model), "")
    assert text_of(ctx, "tuned") == before
    assert {r["key"]: r for r in list_checkpoints(ctx.settings)}["tuned"]["label"].endswith("fine-tuned on poem.txt)")


def test_an_added_model_never_overwrites_a_run(ctx, tmp_path):
    model = downloaded(ctx, tmp_path)
    original = (ctx.settings.root / "tiny" / RunDir.WEIGHTS).stat().st_mtime_ns
    assert "Added **tiny-2**" in add_model(ctx, None, str(model), None)
    assert "Added **tiny-3**" in add_model(ctx, None, str(model), "  ")
    assert "Added **mine**" in add_model(ctx, None, str(model), "mine")
    with nothing_written(ctx.settings.root):
        with pytest.raises(UserError, match="A run named mine already exists"):
            add_model(ctx, None, str(model), "mine")
        with pytest.raises(UserError, match="invalid run name"):
            add_model(ctx, None, str(model), "../escape")
    assert (ctx.settings.root / "tiny" / RunDir.WEIGHTS).stat().st_mtime_ns == original
    assert not (ctx.settings.root.parent / "escape").exists()


class PlantedPickle:
    """Unpickling this creates ``marker``: proof that a loader executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def bad_file(kind: str, good: Path, folder: Path) -> Path:
    """A file of the ``kind`` named in the parametrization below, made from the good checkpoint ``good``."""
    folder.mkdir(exist_ok=True)
    path = folder / ("model.bin" if kind == "not safetensors" else "upload.safetensors")
    data = good.read_bytes()
    header = {"charrnn": json.dumps(read_header(good))}
    if kind == "not safetensors":
        path.write_bytes(data)
    elif kind == "pickle renamed":
        torch.save({"weights": PlantedPickle(folder / "EXECUTED")}, path)
    elif kind == "truncated data":
        path.write_bytes(data[:-100])
    elif kind == "truncated header":
        path.write_bytes(data[:40])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "another project":
        save_file({"encoder.weight": torch.zeros(4, 4)}, str(path), metadata={"format": "pt"})
    elif kind == "no metadata":
        save_file({"w": torch.zeros(2)}, str(path))
    elif kind == "older format":
        save_file(load_file(str(good)), str(path),
                  metadata={"charrnn": json.dumps({**read_header(good), "format": "charrnn/0"})})
    elif kind == "missing weights":
        save_file({k: v for k, v in load_file(str(good)).items() if k != "head.bias"}, str(path), metadata=header)
    elif kind == "header not json":
        n = int.from_bytes(data[:8], "little")
        path.write_bytes(data[:8] + b"{" + b"x" * (n - 1) + data[8 + n:])
    return path


@pytest.mark.parametrize("kind, message", [
    ("not safetensors", "model.bin is not a .safetensors file"),
    ("pickle renamed", "is not a safetensors file: it does not begin with a safetensors header"),
    ("truncated data", "is cut short: .* of the .* bytes its header describes"),
    ("truncated header", "is cut short: its header alone needs"),
    ("empty", "is not a safetensors file"),
    ("another project", "is a safetensors file, but not a charrnn model"),
    ("no metadata", "not a charrnn model"),
    ("older format", "cannot be used: unsupported format 'charrnn/0'"),
    ("missing weights", "cannot be used: incompatible checkpoint"),
    ("header not json", "its header is not JSON"),
])
def test_a_bad_upload_is_refused_saying_what_it_is_and_nothing_is_written(ctx, tmp_path, kind, message):
    path = bad_file(kind, ctx.settings.root / "tiny" / RunDir.WEIGHTS, tmp_path / "uploads")
    with nothing_written(ctx.settings.root):
        with pytest.raises(UserError, match=message):
            add_model(ctx, None, str(path), "")
    assert not (tmp_path / "uploads" / "EXECUTED").exists()        # never unpickled
    assert str(tmp_path) not in message                              # the server's upload path is not shown


def test_an_oversized_model_is_refused_before_it_is_read(ctx, tmp_path):
    good = ctx.settings.root / "tiny" / RunDir.WEIGHTS
    small = dataclasses.replace(ctx.settings, max_params=10)          # cap: 40 bytes of weights plus a header
    assert model_cap(small) < good.stat().st_size + (1 << 20)
    big = tmp_path / "big.safetensors"
    big.write_bytes(good.read_bytes() + b"\0" * (2 * model_cap(small) - good.stat().st_size))
    with pytest.raises(UserError, match=r"big.safetensors is 2.0 Mi?B; the app takes models up to 1.0 Mi?B"):
        check_model_file(big, model_cap(small))
    assert check_model_file(good, model_cap(ctx.settings))["step"] == 10


def test_an_upload_that_would_pass_the_checkpoints_folder_cap_is_refused(ctx, tmp_path):
    model = downloaded(ctx, tmp_path)
    used = sum(p.stat().st_size for p in ctx.settings.root.rglob("*") if p.is_file())
    full = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, max_checkpoints_bytes=used + 10))
    with nothing_written(ctx.settings.root):
        with pytest.raises(UserError, match="with this model they would pass this server's"):
            add_model(full, None, str(model), "")
    roomy = dataclasses.replace(ctx.settings, max_checkpoints_bytes=used + model.stat().st_size + 10_000)
    assert "Added **tiny-2**" in add_model(dataclasses.replace(ctx, settings=roomy), None, str(model), "")


def test_an_upload_whose_file_is_gone_or_missing_is_refused(ctx, tmp_path):
    with nothing_written(ctx.settings.root):
        with pytest.raises(UserError, match="Choose a .safetensors file"):
            add_model(ctx, None, None, "")
        with pytest.raises(UserError, match="gone"):
            add_model(ctx, None, str(tmp_path / "nope.safetensors"), "")


# --- the password -------------------------------------------------------------------------
def test_adding_and_deleting_need_the_training_password_when_one_is_set(ctx, tmp_path):
    model = downloaded(ctx, tmp_path)
    locked = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, password="sesame"))
    with nothing_written(ctx.settings.root):
        for password in (None, "", "wrong"):
            with pytest.raises(UserError, match="need the password"):
                add_model(locked, password, str(model), "copy")
            with pytest.raises(UserError, match="need the password"):
                delete_run(locked, password, "tiny")
    assert "Added **copy**" in add_model(locked, "sesame", str(model), "copy")
    assert "Deleted **copy**" in delete_run(locked, "sesame", "copy")


# --- delete -------------------------------------------------------------------------------
def test_delete_removes_the_run_and_nothing_else(ctx, tmp_path):
    make_checkpoint(ctx.settings.root / "other", corpus_text())
    assert "Deleted **tiny**" in delete_run(ctx, None, "tiny")
    assert sorted(p.name for p in ctx.settings.root.iterdir()) == ["other"]      # no leftover trash folder
    with pytest.raises(UserError, match="There is no run named tiny"):
        delete_run(ctx, None, "tiny")


def test_with_no_password_only_the_browser_that_added_a_model_can_delete_it(ctx, tmp_path):
    model = downloaded(ctx, tmp_path)
    assert "Added **mine**" in add_model(ctx, None, str(model), "mine", "browser-a-key")
    for other in ("browser-b-key", None):
        with pytest.raises(UserError, match=r"Only the browser that started or added mine can delete it"):
            delete_run(ctx, None, "mine", other)
    assert (ctx.settings.root / "mine" / RunDir.WEIGHTS).is_file()
    assert "Deleted **mine**" in delete_run(ctx, None, "mine", "browser-a-key")


def test_the_bundled_model_cannot_be_deleted(ctx, tmp_path):
    make_checkpoint(ctx.settings.bundled, corpus_text())
    with pytest.raises(UserError, match="bundled model cannot be deleted"):
        delete_run(ctx, None, BUNDLED_KEY)
    inside = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, root=ctx.settings.bundled.parent))
    with pytest.raises(UserError, match="bundled model cannot be deleted"):       # listed as the run "shakespeare"
        delete_run(inside, None, "shakespeare")
    assert (ctx.settings.bundled / RunDir.WEIGHTS).is_file()


def test_delete_refuses_names_that_leave_the_checkpoints_folder(ctx, tmp_path):
    make_checkpoint(tmp_path / "elsewhere", corpus_text())
    (ctx.settings.root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for key, message in (("../ckpts", "invalid run name"), ("/etc", "invalid run name"), ("link", "points outside"),
                         ("", "No run chosen"), (None, "No run chosen")):
        with pytest.raises(UserError, match=message):
            delete_run(ctx, None, key)
    assert (tmp_path / "elsewhere" / RunDir.WEIGHTS).is_file() and (ctx.settings.root / "tiny").is_dir()


def test_delete_waits_for_a_trainer_of_ours_that_is_still_starting_or_ending(ctx):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ctx.jobs.proc, ctx.jobs.run = proc, "tiny"            # a resume just spawned: its status still says finished
    try:
        with pytest.raises(UserError, match="starting or just ending"):
            delete_run(ctx, None, "tiny")
    finally:
        proc.kill()
        proc.wait()
    assert "Deleted **tiny**" in delete_run(ctx, None, "tiny")


def test_delete_does_not_wait_on_a_trainer_that_wrote_its_final_status_and_is_only_exiting(ctx):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ctx.jobs.proc, ctx.jobs.run = proc, "tiny"
    RunDir(ctx.settings.root / "tiny").write_final_status("finished", step=3, pid=proc.pid)   # its own last write
    try:
        assert "Deleted **tiny**" in delete_run(ctx, None, "tiny")   # waited, then deleted
        assert not (ctx.settings.root / "tiny").exists()
    finally:
        proc.kill()
        proc.wait()
