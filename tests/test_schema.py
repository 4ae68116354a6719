"""charrnn.runs.schema: the schemas run files are read through; webui.train.metrics: the incremental reader of
metrics.jsonl."""
from __future__ import annotations

import json

import pytest

from charrnn.runs import schema as runfiles
from charrnn.runs.schema import Damaged
from charrnn.runs.store import RunDir
from charrnn.runs.weights import FORMAT
from webui.train.metrics import MetricsReader, Thinned


def record(step: int, **more) -> dict:
    return {"step": step, "lr": 0.003, "chars_per_s": 1000.0 + step, "elapsed": step / 10, "progress": 0.5,
            "train_loss": 3.0 - step / 1e6, **more}


def write_lines(path, lines) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


# --- status ----------------------------------------------------------------------------------
@pytest.mark.parametrize("obj, says", [
    ([1, 2, 3], "holds a list"), ("finished", "holds text"), (None, "holds null"), ({}, "has no state"),
    ({"state": "running", "pid": 123456789012345678901}, "pid is 123456789012345678901, outside"),
    ({"state": "running", "pid": "42"}, "pid is text"), ({"state": "running", "pid": True}, "pid is true/false"),
    ({"state": 5}, "state is a number"), ({"state": "<b>x"}, "state is '<b>x'"),
    ({"state": "finished", "step": "x"}, "step is text"),
    ({"state": "finished", "step": -1}, "step is -1"), ({"state": "stopped", "minutes": 1e400}, "not a finite"),
])
def test_a_status_of_the_wrong_shape_is_damaged_naming_the_field(obj, says):
    with pytest.raises(Damaged, match=says):
        runfiles.status_of(obj)


def test_a_status_keeps_its_known_fields_and_plain_extras_only():
    status = runfiles.status_of({"state": "uploaded", "file": "m.safetensors", "added": 1.5, "note": "x",
                                 "nested": {"a": [1]}, "val_loss": float("nan"), "reason": "r" * 5000})
    assert status["state"] == "uploaded" and status["file"] == "m.safetensors" and status["note"] == "x"
    assert "nested" not in status and status["val_loss"] is None and len(status["reason"]) == 1001


# --- records ---------------------------------------------------------------------------------
@pytest.mark.parametrize("line, says", [
    ("[1,2]", "holds a list"), ("null", "holds null"), ('{"step":"x"}', "step is text"),
    ('{"step":999,"val_loss":"x"}', "val_loss is text"), ('{"train_loss": 2.0}', "has no step"),
    ('{"step": 5, "sample": 3}', "sample is a number"), ('{"step": 1e400}', "step is a number"),
    ('{"step": 5, "train_loss": NaN}', "not a finite"), ('{"step": 5, "elapsed": Infinity}', "not a finite"),
    ('{"step": 99999999999999999999}', "outside"), ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ('{"step": 5, "end": ["x"]}', "end is a list"),
])
def test_a_metrics_line_of_the_wrong_shape_is_damaged_naming_the_line_and_field(line, says):
    with pytest.raises(Damaged, match=f"line 7.*{says}"):
        runfiles.parse_line(line.encode(), 7)


def test_read_metrics_skips_damaged_lines_and_says_which(tmp_path):
    write_lines(tmp_path / RunDir.METRICS, [json.dumps(record(10)), "[1,2]", "null", '{"step":"x"}',
                                        '{"step":999,"val_loss":"x"}', json.dumps(record(20))])
    assert [r["step"] for r in RunDir(tmp_path).records()] == [10, 20]
    records, damaged, first = RunDir(tmp_path).metrics_of()
    assert len(records) == 2 and damaged == 4 and first == "line 2 holds a list, not an object"


# --- the incremental reader --------------------------------------------------------------------
def test_the_reader_reads_only_what_was_appended_since_its_last_read(tmp_path):
    path = tmp_path / RunDir.METRICS
    write_lines(path, [json.dumps(record(s)) for s in (10, 20)])
    reader = MetricsReader(path)
    assert [r["step"] for r in reader.records()] == [10, 20]
    raw = path.read_bytes()
    path.write_bytes(b"x" * (len(raw) - 1) + b"\n")        # the read part overwritten in place: never read again
    write_lines(path, [json.dumps(record(30))])
    assert [r["step"] for r in reader.records()] == [10, 20, 30]
    assert reader.offset == path.stat().st_size


def test_the_reader_waits_for_a_line_still_being_written(tmp_path):
    path = tmp_path / RunDir.METRICS
    write_lines(path, [json.dumps(record(10))])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"step": 20, "train_lo')
    reader = MetricsReader(path)
    assert [r["step"] for r in reader.records()] == [10] and reader.damaged == 0
    with open(path, "a", encoding="utf-8") as f:
        f.write('ss": 2.5}\n')
    assert [r["step"] for r in reader.records()] == [10, 20] and reader.damaged == 0


def test_the_reader_starts_again_when_the_file_is_rewritten(tmp_path):
    path = tmp_path / RunDir.METRICS
    for step in (10, 20, 30):
        RunDir(tmp_path).append_metrics(record(step))
    reader = MetricsReader(path)
    assert len(reader.records()) == 3
    RunDir(tmp_path).truncate_metrics(10)                      # a resume from step 10: a new file
    RunDir(tmp_path).append_metrics(record(15))
    assert [r["step"] for r in reader.records()] == [10, 15]
    path.unlink()
    assert reader.records() == []


def test_the_reader_counts_damaged_lines_and_skips_a_runaway_line(tmp_path, monkeypatch):
    monkeypatch.setattr(runfiles, "MAX_LINE_BYTES", 1000)
    path = tmp_path / RunDir.METRICS
    write_lines(path, [json.dumps(record(10)), '{"step":"x"}'])
    reader = MetricsReader(path)
    reader.records()
    with open(path, "a", encoding="utf-8") as f:
        f.write("y" * 5000)                                # no newline yet, far longer than any record
    assert [r["step"] for r in reader.records()] == [10]
    with open(path, "a", encoding="utf-8") as f:
        f.write("y" * 5000 + "\n" + json.dumps(record(20)) + "\n")
    assert [r["step"] for r in reader.records()] == [10, 20]
    assert reader.damaged == 2
    assert reader.damage_note() == "metrics.jsonl: 2 damaged lines skipped (line 2: step is text, not a whole number)"


def test_the_readers_digest_is_bounded_and_keeps_what_the_view_draws(tmp_path):
    path = tmp_path / RunDir.METRICS
    lines = []
    for i in range(1, 20_001):
        extra = {"val_loss": 2.0 - i / 1e5, "sample": f"sample {i}"} if i % 20 == 0 else {}
        lines.append(json.dumps(record(10 * i, **extra)))
    lines.append(json.dumps(record(200_005, end="stopped")))
    write_lines(path, lines)
    digest = MetricsReader(path, keep=50).records()
    everything = RunDir(tmp_path).records()
    assert len(digest) <= 3 * 100 + 4 < len(everything)
    assert [r["step"] for r in digest] == sorted(r["step"] for r in digest)     # in file order
    assert digest[0] == everything[0] and digest[-1] == everything[-1]
    samples = [r for r in digest if "sample" in r]
    assert samples[-1] == [r for r in everything if "sample" in r][-1]
    assert [r for r in digest if "val_loss" in r][-1] == [r for r in everything if "val_loss" in r][-1]
    assert [r for r in digest if "end" not in r][-1] == everything[-2]          # the last rate before the end
    vals = [r["step"] for r in digest if "val_loss" in r]
    assert len(vals) >= 50 and max(b - a for a, b in zip(vals, vals[1:], strict=False)) <= 2 * 200_000 / 50


def test_thinned_keeps_between_keep_and_twice_keep_evenly_spaced_items_from_the_first():
    thinned = Thinned(10)
    for i in range(1000):
        thinned.add(i)
    assert 10 <= len(thinned.items) <= 20 and thinned.items[0] == 0
    gaps = {b - a for a, b in zip(thinned.items, thinned.items[1:], strict=False)}
    assert gaps == {thinned.stride}


# --- headers and corpus records ----------------------------------------------------------------
@pytest.mark.parametrize("changes, says", [
    ({"step": "ten"}, "step is text"), ({"step": True}, "step is true/false"), ({"data": "corpus.txt"}, "data is"),
    ({"train_config": {"iterations": "x"}}, "train_config.iterations is text"), ({"vocab": 5}, "vocab is"),
    ({"best_step": "x"}, "best_step is text"), ({"elapsed": -1}, "elapsed is -1"),
])
def test_a_header_of_the_wrong_shape_is_damaged_naming_the_field(changes, says):
    header = {"format": FORMAT, "model_config": {}, "vocab": "ab", "step": 10, "data": {"chars": 5},
              "train_config": {"iterations": 10, "minutes": 0.0}, "val_loss": None}
    assert runfiles.header_of(header, "header") is header
    with pytest.raises(Damaged, match=says):
        runfiles.header_of({**header, **changes}, "header")


def test_a_corpus_record_of_the_wrong_shape_is_refused():
    assert runfiles.corpus_record_of({"path": "corpus.txt"}) == {"path": "corpus.txt"}
    for obj in ([1], {"path": 3}, {}, "x"):
        with pytest.raises(Damaged):
            runfiles.corpus_record_of(obj)


def test_the_reader_keeps_every_record_of_a_metrics_file_of_many_chunks(tmp_path):
    """D7: the file position and the reader's offset stay in step across chunks (a 5+ MiB file, no record lost)."""
    path = tmp_path / "metrics.jsonl"
    records = [{"step": i, "train_loss": 1.0 + i % 7 / 10, "sample": "x" * (i % 97)} for i in range(60_000)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert path.stat().st_size > 5 * 2**20
    reader = MetricsReader(path, keep=10)
    reader.CHUNK = 1 << 20                                       # several chunks, each ending mid-line
    digest = reader.records()
    assert reader.damaged == 0 and reader.damage_note() is None
    assert reader.count == len(records) and digest[-1]["step"] == records[-1]["step"]
