"""webui.compare: several runs' validation curves on one frame (x = step or characters seen) and their settings in a
table. No gradio."""
from __future__ import annotations

import html
import math
import re

import pytest
from app_fixtures import app_settings, corpus_text, make_checkpoint

from charrnn.runs.store import RunDir
from webui.models import BUNDLED_KEY
from webui.train.compare import MOST_RUNS, chars_per_step, compare_frame, compare_runs, compared_runs, settings_table


def text_of(markup: str) -> str:
    """What a table says, without its tags."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


@pytest.fixture
def settings(tmp_path):
    return app_settings(tmp_path)


def trained(settings, name: str, losses: list[float], batch=8, seq=32, chars_seen=None, **meta):
    """A run with a checkpoint and one validation record per 10 steps (and train records between them)."""
    steps = 10 * len(losses)
    make_checkpoint(settings.root / name, corpus_text(), step=steps,
                    train_config={"batch_size": batch, "seq_len": seq, "lr": 0.004, "iterations": steps},
                    **({"chars_seen": chars_seen} if chars_seen else {}), **meta)
    for i, loss in enumerate(losses, 1):
        RunDir(settings.root / name).append_metrics({"step": 10 * i - 5, "train_loss": loss + 0.1})
        RunDir(settings.root / name).append_metrics({"step": 10 * i, "train_loss": loss, "val_loss": loss})
    return settings.root / name


def test_characters_per_step_come_from_the_header_count_else_batch_times_sequence():
    assert chars_per_step({"step": 10, "chars_seen": 5120, "train_config": {"batch_size": 8, "seq_len": 32}}) == 512
    assert chars_per_step({"step": 10, "train_config": {"batch_size": 8, "seq_len": 32}}) == 256
    assert chars_per_step({"step": 0, "chars_seen": 0, "train_config": {}}) is None
    assert chars_per_step(None) is None


def test_two_runs_share_one_frame_by_step_and_by_characters_seen(settings):
    trained(settings, "small", [3.0, 2.5, 2.2], batch=8, seq=32)                    # 256 chars a step
    trained(settings, "big", [2.8, 2.1], batch=16, seq=64, chars_seen=20 * 2048)    # 2048 (two ranks' worth)
    frame, x, table, colors = compare_runs(settings, ["small", "big"], "chars")
    assert x == "chars" and list(frame.columns) == ["step", "chars", "val_loss", "run"]
    assert list(colors) == ["small", "big"] and len(set(colors.values())) == 2
    assert str(frame.step.dtype) == "int64" and str(frame.chars.dtype) == "float64"
    small = frame[frame.run == "small"]
    assert list(small.step) == [10, 20, 30] and list(small.val_loss) == [3.0, 2.5, 2.2]   # validation points only
    assert list(small.chars) == [2560, 5120, 7680]
    assert list(frame[frame.run == "big"].chars) == [20480, 40960]
    assert compare_runs(settings, ["small"], "nonsense")[1] == "step"


def test_each_run_is_thinned_to_the_most_points_the_plot_takes(settings):
    trained(settings, "long", [3.0 - i / 100 for i in range(50)])
    frame = compare_frame(compared_runs(settings, ["long"])[0], most=10)
    assert len(frame) == 10 and frame.step.iloc[0] == 10 and frame.step.iloc[-1] == 500


def test_the_table_gives_each_runs_settings_and_best_loss_as_text(settings):
    trained(settings, "small", [3.0, 2.2], data={"name": "<b>odd</b>.txt", "chars": 100, "path": ""},
            best_val_loss=2.2)
    table = settings_table(*compared_runs(settings, ["small"]))
    assert "<b>odd</b>" not in table and "&lt;b&gt;odd&lt;/b&gt;.txt" in table     # a corpus name is text
    text = text_of(table)
    for expected in ("small", "LSTM 1 × 16", "embedding 8", "8 × 32", "0.004", "20", "5 k", "2.200 nats/char"):
        assert expected in text, expected


def test_runs_that_cannot_be_read_are_noted_and_the_rest_compared(settings):
    trained(settings, "good", [2.0])
    (settings.root / "no-model").mkdir()
    RunDir(settings.root / "no-model").append_metrics({"step": 10, "val_loss": 3.0})
    frame, _, table, _ = compare_runs(settings, ["good", "../x", "gone", "no-model"], "step")
    assert set(frame.run) == {"good", "no-model"}
    assert math.isnan(frame[frame.run == "no-model"].chars.iloc[0])          # no header: no characters count
    assert "invalid run name" in table and "no run gone" in table and "no readable checkpoint" in table


def test_nothing_picked_draws_nothing_and_says_so(settings):
    frame, x, table, colors = compare_runs(settings, [], "step")
    assert frame is None and x == "step" and "Pick runs" in table and colors == {}
    trained(settings, "no-validation", [])
    assert compare_runs(settings, ["no-validation"], "step")[0] is None


def test_the_bundled_model_is_named_so_and_at_most_a_few_runs_are_compared(settings):
    make_checkpoint(settings.bundled, corpus_text())
    RunDir(settings.bundled).append_metrics({"step": 10, "val_loss": 2.0})
    for i in range(MOST_RUNS + 1):
        trained(settings, f"r{i}", [2.0])
    runs, notes = compared_runs(settings, [BUNDLED_KEY] + [f"r{i}" for i in range(MOST_RUNS + 1)])
    assert len(runs) == MOST_RUNS and runs[0].name == "shakespeare (bundled)"
    assert notes == [f"Only the first {MOST_RUNS} runs are compared."]


def test_the_poll_offers_every_run_to_compare_and_drops_a_deleted_one_from_the_picked(settings):
    from webui.context import AppContext
    from webui.demo import poll

    ctx = AppContext(settings)
    trained(settings, "kept", [2.0])
    trained(settings, "doomed", [2.5])
    first = poll(ctx, {}, None, None, None, ["kept", "doomed"])
    compare, view = first["compare_runs"], first["view"]
    assert {key for _, key in compare["choices"]} == {"kept", "doomed"} and compare["value"] == ["kept", "doomed"]
    assert "compare_runs" not in poll(ctx, view, None, None, None, ["kept", "doomed"])   # nothing new: left out
    for f in (settings.root / "doomed").iterdir():
        f.unlink()
    (settings.root / "doomed").rmdir()
    after = poll(ctx, {**view, "run": "doomed"}, None, None, None, ["kept", "doomed"])
    compared = after["compare_runs"]
    assert compared["value"] == ["kept"] and [key for _, key in compared["choices"]] == ["kept"]
    assert after["view"]["run"] == "kept"                       # the Train tab stops following the deleted run
