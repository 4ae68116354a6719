"""Run directories: checkpoint round trips, atomic writes, refusing bad files, names, metrics and status."""
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import charrnn.runs.weights as weights_module
import charrnn.runs.writes as writes
from charrnn.runs.store import RunDir, latest_checkpoint, list_runs, load_checkpoint, read_header, safe_run_name
from charrnn.runs.weights import FORMAT, CheckpointError, read_json
from charrnn.runs.writes import LOW_ROOM, WriteFailed, atomic_write, write_json
from charrnn.vocab import Vocab


class PlantedPickle:
    """Unpickling this creates ``marker``: proof that a loader executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def saved_run(directory, make_model, vocab, seed=0, step=10, **config):
    model = make_model(vocab, seed=seed, **config)
    directory.mkdir(parents=True, exist_ok=True)
    RunDir(directory).keep(model, vocab, {"step": step, "note": "test"})
    return model


def logits_of(model, vocab, text="the cat sat"):
    return model(vocab.encode(text).long()[None])[0]


# --- round trip --------------------------------------------------------------------
@pytest.mark.parametrize("config", [dict(), dict(layers=2, cell="gru", dropout=0.1)])
def test_checkpoint_round_trip_gives_identical_logits_and_vocab(tmp_path, make_model, vocab, config):
    model = saved_run(tmp_path / "run", make_model, vocab, **config)
    loaded, loaded_vocab, header = load_checkpoint(tmp_path / "run")
    assert loaded_vocab == vocab
    assert loaded.config == model.config
    assert torch.equal(logits_of(loaded, vocab), logits_of(model, vocab))
    assert header["step"] == 10 and header["note"] == "test" and header["format"] == FORMAT
    assert not loaded.training


def test_checkpoint_loads_from_the_weights_file_too(tmp_path, make_model, vocab):
    model = saved_run(tmp_path / "run", make_model, vocab)
    loaded, _, _ = load_checkpoint(tmp_path / "run" / RunDir.WEIGHTS)
    assert torch.equal(logits_of(loaded, vocab), logits_of(model, vocab))


def test_checkpoint_keeps_a_unicode_vocabulary(tmp_path, make_model):
    vocab = Vocab.from_text("床前明月光 où forêt 🙂\n")
    saved_run(tmp_path / "run", make_model, vocab)
    assert load_checkpoint(tmp_path / "run")[1] == vocab


def test_header_is_readable_without_loading_weights_and_matches_the_json(tmp_path, make_model, vocab):
    saved_run(tmp_path / "run", make_model, vocab)
    header = read_header(tmp_path / "run")
    assert header["vocab"] == "".join(vocab.chars)
    assert json.loads((tmp_path / "run" / RunDir.META).read_text(encoding="utf-8")) == header


# --- atomic writes -------------------------------------------------------------------
def test_a_save_that_fails_midway_keeps_the_previous_checkpoint_and_no_temp_file(tmp_path, make_model, vocab,
                                                                                 monkeypatch):
    run = tmp_path / "run"
    old = saved_run(run, make_model, vocab, seed=0)
    before = (run / RunDir.WEIGHTS).read_bytes()

    def half_write_then_fail(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(before[:100])
        raise OSError("disk full")

    monkeypatch.setattr(weights_module, "save_file", half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        RunDir(run).keep(make_model(vocab, seed=1), vocab, {"step": 20})
    assert (run / RunDir.WEIGHTS).read_bytes() == before
    assert torch.equal(logits_of(load_checkpoint(run)[0], vocab), logits_of(old, vocab))
    assert sorted(p.name for p in run.iterdir()) == sorted([RunDir.WEIGHTS, RunDir.META])


def test_atomic_write_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "f.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert read_json(path) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


# --- refusing bad files ---------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "cut_short", "empty", "garbage"])
def test_corrupt_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path, make_model, vocab, damage):
    saved_run(tmp_path / "run", make_model, vocab)
    path = tmp_path / "run" / RunDir.WEIGHTS
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[:len(raw) // 2], "cut_short": raw[:-1], "empty": b"",
                      "garbage": bytes(range(256)) * 4}[damage])
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_checkpoint(tmp_path / "run")


def test_missing_checkpoint_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nothing-here")


def test_safetensors_without_a_charrnn_header_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        load_checkpoint(path)


def test_checkpoint_whose_vocab_does_not_fit_the_model_is_refused(tmp_path, make_model, vocab):
    saved_run(tmp_path / "run", make_model, vocab)
    model, _, header = load_checkpoint(tmp_path / "run")
    RunDir(tmp_path / "run").keep(model, Vocab("ab"), {"step": header["step"]})
    with pytest.raises(CheckpointError, match="vocabulary"):
        load_checkpoint(tmp_path / "run")


@pytest.mark.parametrize("dumps", [pickle.dumps, "torch.save"])
def test_a_pickle_renamed_to_safetensors_is_refused_without_executing(tmp_path, dumps):
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "model.safetensors"
    if dumps == "torch.save":
        torch.save({"weights": PlantedPickle(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(PlantedPickle(marker)))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_pt_checkpoint_is_refused_without_opening(tmp_path):
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "model.pt"
    torch.save({"weights": PlantedPickle(marker)}, path)
    with pytest.raises(CheckpointError, match="only .safetensors"):
        load_checkpoint(path)
    assert not marker.exists()


def test_resume_state_is_loaded_without_unpickling_code(tmp_path):
    marker = tmp_path / "EXECUTED"
    torch.save({"optimizer": PlantedPickle(marker)}, tmp_path / "train_state-5.pt")
    with pytest.raises(CheckpointError, match="train_state-5.pt"):
        RunDir(tmp_path).train_state(5)
    assert not marker.exists()


def test_resume_state_keeps_only_the_newest_files(tmp_path):
    for step in (10, 20, 30):
        RunDir(tmp_path).save_train_state(step, {"step": step, "t": torch.ones(2) * step})
    assert sorted(RunDir(tmp_path).train_state_steps()) == [20, 30]
    assert torch.equal(RunDir(tmp_path).train_state(30)["t"], torch.full((2,), 30.0))


# --- kept model and latest weights ----------------------------------------------------------
def test_save_latest_writes_the_state_of_its_step_and_leaves_the_kept_model_alone(tmp_path, make_model, vocab):
    kept = saved_run(tmp_path, make_model, vocab, seed=0, step=10)
    newer = make_model(vocab, seed=1)
    header = RunDir(tmp_path).save_latest(newer, vocab, {"step": 30, "best_step": 10}, {"step": 30})
    assert RunDir(tmp_path).latest == tmp_path / RunDir.LATEST and RunDir(tmp_path).latest_header() == header
    assert header["step"] == 30 and RunDir(tmp_path).train_state(30) == {"step": 30}
    assert torch.equal(logits_of(load_checkpoint(tmp_path / RunDir.LATEST)[0], vocab), logits_of(newer, vocab))
    assert torch.equal(logits_of(load_checkpoint(tmp_path)[0], vocab), logits_of(kept, vocab))
    assert read_header(tmp_path)["step"] == 10


def test_a_latest_save_that_fails_leaves_the_previous_latest_naming_a_step_whose_state_exists(tmp_path, make_model,
                                                                                              vocab, monkeypatch):
    model = saved_run(tmp_path, make_model, vocab)
    RunDir(tmp_path).save_latest(model, vocab, {"step": 10}, {"step": 10})
    monkeypatch.setattr(weights_module, "save_file", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        RunDir(tmp_path).save_latest(model, vocab, {"step": 20}, {"step": 20})
    step = RunDir(tmp_path).latest_header()["step"]
    assert step == 10 and RunDir(tmp_path).train_state(step) == {"step": 10}
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_from_before_the_split_has_its_kept_model_as_latest(tmp_path, make_model, vocab):
    saved_run(tmp_path / "old", make_model, vocab, step=40)
    assert RunDir(tmp_path / "old").latest == tmp_path / "old" / RunDir.WEIGHTS
    assert RunDir(tmp_path / "old").latest_header() == read_header(tmp_path / "old")
    (run,) = list_runs(tmp_path)
    assert run["latest"] == run["header"] and run["latest"]["step"] == 40
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        RunDir(tmp_path / "absent").latest_header()


def test_list_runs_gives_the_latest_header_and_the_newer_files_time(tmp_path, make_model, vocab):
    model = saved_run(tmp_path / "r", make_model, vocab, step=10)
    RunDir(tmp_path / "r").save_latest(model, vocab, {"step": 50}, {})
    os.utime(tmp_path / "r" / RunDir.WEIGHTS, (1_000_000, 1_000_000))
    os.utime(tmp_path / "r" / RunDir.LATEST, (2_000_000, 2_000_000))
    (run,) = list_runs(tmp_path)
    assert run["header"]["step"] == 10 and run["latest"]["step"] == 50 and run["mtime"] == 2_000_000
    (tmp_path / "r" / RunDir.LATEST).write_bytes(b"garbage")
    (run,) = list_runs(tmp_path)
    assert run["header"]["step"] == 10 and run["latest"] is None          # still generates; not resumable


# --- where the corpus is -------------------------------------------------------------------------
def test_the_corpus_record_is_relative_inside_the_run_and_absolute_outside(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "corpus.txt").write_text("x")
    RunDir(run).record_corpus(run / "corpus.txt")
    assert read_json(run / RunDir.CORPUS_RECORD) == {"path": "corpus.txt"}
    assert RunDir(run).corpus_path() == run / "corpus.txt"
    RunDir(run).record_corpus(tmp_path / "book.txt")
    assert read_json(run / RunDir.CORPUS_RECORD) == {"path": str((tmp_path / "book.txt").resolve())}
    assert RunDir(run).corpus_path() == (tmp_path / "book.txt").resolve()


def test_corpus_path_falls_back_to_an_old_headers_path_else_none(tmp_path):
    old = {"data": {"name": "a.txt", "chars": 3, "path": "/data/a.txt"}}
    assert RunDir(tmp_path).corpus_path(old) == Path("/data/a.txt")
    assert RunDir(tmp_path).corpus_path({"data": {"name": "a.txt", "chars": 3}}) is None
    assert RunDir(tmp_path).corpus_path() is None
    (tmp_path / RunDir.CORPUS_RECORD).write_text("{broken", encoding="utf-8")
    assert RunDir(tmp_path).corpus_path(old) == Path("/data/a.txt")
    write_json(tmp_path / RunDir.CORPUS_RECORD, {"path": "/elsewhere/b.txt"})
    assert RunDir(tmp_path).corpus_path(old) == Path("/elsewhere/b.txt")     # the record wins over the header


# --- run names --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["..", ".", "../evil", "a/../../b", "a/b", "/etc", "a\\b", "a..b", "", "-x",
                                  ".hidden", "with space", "é", "a\x00b", "run\n", "tab\t", "x" * 81, None])
def test_run_dir_refuses_names_that_could_escape_or_are_odd(tmp_path, name):
    with pytest.raises(CheckpointError, match="run name"):
        RunDir.of(tmp_path, name)


@pytest.mark.parametrize("name", ["shakespeare", "run-1.v2_a", "A", "x" * 80])
def test_run_dir_accepts_plain_names_inside_the_root(tmp_path, name):
    assert RunDir.of(tmp_path, name).path == tmp_path.resolve() / name


def test_safe_run_name_turns_any_text_into_a_valid_name(tmp_path):
    for text in ("../my corpus (v2).txt", "床前明月光", "...", "a" * 200):
        RunDir.of(tmp_path, safe_run_name(text))


# --- finding the latest checkpoint -----------------------------------------------------------
def test_latest_checkpoint_is_the_newest_complete_one_skipping_corrupt(tmp_path, make_model, vocab):
    for i, name in enumerate(["old", "new", "broken"]):
        saved_run(tmp_path / name, make_model, vocab)
        os.utime(tmp_path / name / RunDir.WEIGHTS, (1_000_000 + i, 1_000_000 + i))
    broken = tmp_path / "broken" / RunDir.WEIGHTS
    broken.write_bytes(broken.read_bytes()[:50])
    os.utime(broken, (2_000_000, 2_000_000))
    (tmp_path / "no-weights").mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "new" / RunDir.WEIGHTS
    assert [r["name"] for r in list_runs(tmp_path)] == ["new", "old"]


def test_latest_checkpoint_of_an_empty_or_missing_root_is_none(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "absent") is None


# --- metrics and status -----------------------------------------------------------------------
def test_read_metrics_skips_a_half_written_last_line(tmp_path):
    RunDir(tmp_path).append_metrics({"step": 10, "train_loss": 2.0})
    RunDir(tmp_path).append_metrics({"step": 20, "train_loss": 1.5})
    with open(tmp_path / RunDir.METRICS, "a", encoding="utf-8") as f:
        f.write('{"step": 30, "train_lo')
    assert RunDir(tmp_path).records() == [{"step": 10, "train_loss": 2.0}, {"step": 20, "train_loss": 1.5}]


def test_read_metrics_of_a_new_run_is_empty(tmp_path):
    assert RunDir(tmp_path).records() == []


def test_truncate_metrics_drops_records_after_the_step(tmp_path):
    for step in (10, 20, 30):
        RunDir(tmp_path).append_metrics({"step": step})
    RunDir(tmp_path).truncate_metrics(20)
    assert [r["step"] for r in RunDir(tmp_path).records()] == [10, 20]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_read_status_reports_a_running_run_with_a_dead_pid_as_interrupted_at_its_last_checkpoint(tmp_path, make_model,
                                                                                                   vocab):
    model = saved_run(tmp_path, make_model, vocab, step=1000)
    RunDir(tmp_path).save_latest(model, vocab, {"step": 1000}, {"step": 1000})
    RunDir(tmp_path).write_status("running", pid=dead_pid(), step=0)          # the step it started from
    status = RunDir(tmp_path).status()
    assert status["state"] == "interrupted" and "gone" in status["reason"]
    assert status["step"] == 1000 and status["checkpoint_step"] == 1000     # not "at step 0"


def test_an_interrupted_run_without_a_checkpoint_says_there_is_none(tmp_path):
    RunDir(tmp_path).write_status("running", pid=dead_pid(), step=0)
    status = RunDir(tmp_path).status()
    assert status["state"] == "interrupted" and status["checkpoint_step"] is None and "step" not in status


def test_read_status_keeps_a_running_run_whose_trainer_lives(tmp_path):
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "charrnn", "train"])
    try:
        RunDir(tmp_path).write_status("running", pid=trainer.pid)
        assert RunDir(tmp_path).status()["state"] == "running"
    finally:
        trainer.kill()
        trainer.wait()


def test_read_status_reports_a_running_run_whose_pid_now_belongs_to_another_program_as_interrupted(tmp_path):
    RunDir(tmp_path).write_status("running", pid=os.getpid())       # pytest: alive, but no trainer
    assert RunDir(tmp_path).status()["state"] == "interrupted"


def test_read_status_of_a_run_without_status_is_unknown(tmp_path):
    assert RunDir(tmp_path).status() == {"state": "unknown"}


def test_read_json_names_the_corrupt_file(tmp_path):
    (tmp_path / "status.json").write_text('{"state": "runn', encoding="utf-8")
    with pytest.raises(CheckpointError, match="status.json"):
        read_json(tmp_path / "status.json")


# --- run files of the wrong shape --------------------------------------------------------------------
@pytest.mark.parametrize("content, says", [
    ("[1,2,3]", "status.json holds a list"), ('"finished"', "status.json holds text"),
    ("null", "status.json holds null"),
    ('{"state": "running", "pid": 123456789012345678901}', "status.json: pid is 123456789012345678901, outside"),
    ('{"state": "runn', "status.json is not valid JSON"), (b"\xff\xfe{}", "status.json is not valid JSON"),
])
def test_a_status_file_of_the_wrong_shape_reads_as_damaged_with_the_reason(tmp_path, content, says):
    (tmp_path / RunDir.STATUS).write_bytes(content if isinstance(content, bytes) else content.encode())
    status = RunDir(tmp_path).status()
    assert status["state"] == "damaged" and status["reason"].startswith(says)


def test_list_runs_marks_a_damaged_run_with_the_reason_and_lists_the_others(tmp_path, make_model, vocab):
    for name in ("good", "bad-status", "bad-meta"):
        saved_run(tmp_path / name, make_model, vocab)
    RunDir(tmp_path / "good").write_status("finished", step=10)
    (tmp_path / "bad-status" / RunDir.STATUS).write_text("[1, 2, 3]", encoding="utf-8")
    (tmp_path / "bad-meta" / RunDir.META).write_text('{"format": "charrnn/1", "step": "ten"}', encoding="utf-8")
    runs = {r["name"]: r for r in list_runs(tmp_path)}
    assert set(runs) == {"good", "bad-status", "bad-meta"}
    assert runs["good"]["damaged"] is None and runs["good"]["status"]["state"] == "finished"
    assert runs["bad-status"]["status"]["state"] == "damaged"
    assert runs["bad-status"]["damaged"] == "status.json holds a list, not an object"
    assert runs["bad-meta"]["damaged"] == "checkpoint.json: step is text, not a whole number"


def test_a_symlinked_run_folder_is_not_listed(tmp_path, make_model, vocab):
    saved_run(tmp_path / "elsewhere" / "real", make_model, vocab)
    root = tmp_path / "root"
    saved_run(root / "mine", make_model, vocab)
    (root / "link").symlink_to(tmp_path / "elsewhere" / "real", target_is_directory=True)
    (root / "alias").symlink_to(root / "mine", target_is_directory=True)
    assert [r["name"] for r in list_runs(root)] == ["mine"]
    with pytest.raises(CheckpointError, match="points outside"):
        RunDir.of(root, "link")
    with pytest.raises(CheckpointError, match="is a link to another folder, not a run"):
        RunDir.of(root, "alias")                                      # nor picked, nor written into


def test_a_header_with_fields_of_the_wrong_type_is_refused_naming_the_field(tmp_path, make_model, vocab):
    saved_run(tmp_path, make_model, vocab)
    model, _, _ = load_checkpoint(tmp_path)
    RunDir(tmp_path).keep(model, vocab, {"step": 10, "train_config": {"iterations": "x"}})
    with pytest.raises(CheckpointError, match=r"malformed charrnn header \(train_config.iterations is text"):
        read_header(tmp_path)


def test_a_corpus_record_of_the_wrong_shape_is_no_corpus(tmp_path):
    (tmp_path / RunDir.CORPUS_RECORD).write_text("[1, 2]", encoding="utf-8")
    assert RunDir(tmp_path).corpus_path({"data": "corpus.txt"}) is None


# --- failed writes -------------------------------------------------------------------------------------
def torch_short_write(obj, path, *args, **kwargs):
    """What torch.save does on a full disk: part of the file, then its own error."""
    Path(path).write_bytes(b"x" * 598)
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


def test_a_save_on_a_full_disk_says_disk_full_and_leaves_no_temp_file(tmp_path, monkeypatch):
    run = tmp_path / "my-run"
    run.mkdir()
    monkeypatch.setattr(torch, "save", torch_short_write)
    monkeypatch.setattr(writes, "free_bytes", lambda directory: 300 * 1024)
    with pytest.raises(WriteFailed, match=r"^disk full: 300.0 KiB free in my-run$"):
        RunDir(run).save_train_state(10, {"step": 10})
    assert list(run.iterdir()) == []


@pytest.mark.parametrize("error, says", [
    (OSError(30, "Read-only file system"), "cannot write f.json in my-run: read-only file system"),
    (OSError(27, "File too large"), "cannot write f.json in my-run: file too large"),
    (OSError(28, "No space left on device"), "disk full: "),
    (RuntimeError("safetensors: I/O error: No space left on device (os error 28)"), "disk full: "),
])
def test_a_failed_write_says_why_in_the_runs_name(tmp_path, error, says):
    run = tmp_path / "my-run"
    run.mkdir()

    def fail(tmp):
        raise error

    with pytest.raises(WriteFailed) as caught:
        atomic_write(run / "f.json", fail)
    assert str(caught.value).startswith(says) and str(tmp_path) not in str(caught.value)
    assert list(run.iterdir()) == []


def test_an_error_that_is_no_write_failure_stays_itself(tmp_path):
    def bug(tmp):
        raise TypeError("a bug")

    with pytest.raises(TypeError, match="a bug"):
        atomic_write(tmp_path / "f.json", bug)
    assert list(tmp_path.iterdir()) == []


def test_a_metrics_append_that_fails_part_way_leaves_no_half_line(tmp_path, monkeypatch):
    RunDir(tmp_path).append_metrics({"step": 10, "train_loss": 2.0})
    before = (tmp_path / RunDir.METRICS).read_bytes()
    real_write = os.write

    def half(fd, data):
        return real_write(fd, data[:len(data) // 2])         # a full disk takes part of the line

    monkeypatch.setattr(writes, "free_bytes", lambda directory: 0)
    with monkeypatch.context() as m:
        m.setattr(writes.os, "write", half)
        with pytest.raises(WriteFailed, match="disk full"):
            RunDir(tmp_path).append_metrics({"step": 20, "train_loss": 1.5})
    assert (tmp_path / RunDir.METRICS).read_bytes() == before
    RunDir(tmp_path).append_metrics({"step": 30, "train_loss": 1.0})
    assert [r["step"] for r in RunDir(tmp_path).records()] == [10, 30]


def no_room(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_final_status_on_a_full_disk_is_written_in_place_else_the_running_one_goes(tmp_path, monkeypatch):
    RunDir(tmp_path).write_status("running", pid=os.getpid(), step=0)
    monkeypatch.setattr(writes, "atomic_write", no_room)                 # no room for a new file
    assert RunDir(tmp_path).write_final_status("failed", reason="disk full: 0 bytes free in x")
    assert RunDir(tmp_path).status() == {"state": "failed", "reason": "disk full: 0 bytes free in x"}
    (tmp_path / RunDir.STATUS).write_text(json.dumps({"state": "running", "pid": os.getpid()}), encoding="utf-8")
    monkeypatch.setattr(writes, "overwrite_in_place", no_room)           # nor in place: a read-only folder
    assert not RunDir(tmp_path).write_final_status("failed", reason="x")
    assert RunDir(tmp_path).status() == {"state": "unknown"}               # never a 'running' left behind


def test_check_room_refuses_a_disk_without_room_for_one_more_checkpoint(tmp_path, make_model, vocab, monkeypatch):
    model = saved_run(tmp_path / "r", make_model, vocab)
    RunDir(tmp_path / "r").save_latest(model, vocab, {"step": 10}, {"step": 10, "t": torch.zeros(100_000)})
    run = tmp_path / "r"
    need = (run / "train_state-10.pt").stat().st_size + max((run / n).stat().st_size
                                                            for n in (RunDir.LATEST, RunDir.WEIGHTS))
    monkeypatch.setattr(writes, "free_bytes", lambda directory: need)
    with pytest.raises(WriteFailed, match=r"disk full: .* free in r, and a checkpoint of it needs about"):
        RunDir(tmp_path / "r").check_room()
    monkeypatch.setattr(writes, "free_bytes", lambda directory: need + LOW_ROOM)
    RunDir(tmp_path / "r").check_room()
