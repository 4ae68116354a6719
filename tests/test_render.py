"""webui.render: the loss plot's frame, sample timelines, progress, status and checkpoint lines (no gradio)."""
from __future__ import annotations

import math

import pytest

from charrnn.model import ModelConfig
from charrnn.train import TrainConfig
from webui.forms import CorpusChoice
from webui.render import (
    checkpoint_line,
    clock,
    corpus_line,
    human_bytes,
    latest_sample,
    loss_frame,
    model_line,
    plot_value,
    progress_line,
    run_timeline,
    samples_html,
    status_line,
    thin,
)
from webui.settings import Settings

POINTS = Settings(root=".").plot_points
EARLIER = Settings(root=".").earlier_samples


def records(n: int, every: int = 10) -> list[dict]:
    out = []
    for i in range(1, n + 1):
        rec = {"step": i * every, "train_loss": 4.0 / i, "chars_per_s": 1000.0, "elapsed": float(i), "progress": i / n}
        if i % 10 == 0:
            rec |= {"val_loss": 4.2 / i, "val_bpc": 4.2 / i / math.log(2), "sample": f"sample <{i}>"}
        out.append(rec)
    return out


# --- following a run ------------------------------------------------------------------
def test_loss_frame_is_typed_thinned_and_keeps_the_ends():
    frame = loss_frame(records(2000) + [{"step": 20010, "train_loss": float("nan")}], POINTS)
    assert {str(t) for t in frame.dtypes} >= {"int64", "float64"}
    train = frame[frame.split == "train"]
    val = frame[frame.split == "validation"]
    assert len(train) == POINTS[0] and len(val) == POINTS[1]
    assert train.step.iloc[0] == 10 and train.step.iloc[-1] == 20000      # NaN dropped, ends kept
    assert val.step.iloc[0] == 100 and val.step.iloc[-1] == 20000
    assert frame.loss.notna().all()


def test_loss_frame_thins_to_the_points_it_is_given():
    frame = loss_frame(records(2000), (50, 7))
    assert (frame.split == "train").sum() == 50 and (frame.split == "validation").sum() == 7


def test_plot_gets_nothing_before_the_first_loss_and_both_splits_after():
    assert plot_value([], POINTS) is None                      # not an empty frame: it would never draw
    assert loss_frame([], POINTS).dtypes["step"] == "int64"
    early = plot_value(records(3), POINTS)                      # train losses only, so far
    assert set(early.split) == {"train", "validation"}
    assert early[early.split == "validation"].loss.isna().all() and early.dtypes["loss"] == "float64"
    assert len(plot_value(records(30), POINTS)) == len(loss_frame(records(30), POINTS))


def test_samples_are_listed_oldest_first_escaped_up_to_the_latest():
    recs = records(50)
    html = samples_html(recs, EARLIER)
    assert html.index("step 100<") < html.index("step 200<")
    assert "&lt;10&gt;" in html and "<10>" not in html
    assert "sample &lt;50&gt;" in html and html.rindex("step 500<") > html.index("step 400<")  # the run's end too
    text, label = latest_sample(recs)
    assert text == "sample <50>" and "step 500" in label
    assert latest_sample(records(5)) == ("", "Latest sample")


def test_earlier_samples_are_thinned_to_the_most_asked():
    html = samples_html(records(500), 5)                      # 50 samples
    assert html.count("<tr><td") == 5 and "step 100<" in html and "step 5,000<" in html
    assert "Samples appear here" in samples_html([], EARLIER)


def test_progress_line_gives_step_total_speed_and_eta_while_running():
    line = progress_line(records(10)[:5], {"state": "running", "iterations": 200})
    assert "step **50** / 200" in line and "1,000 chars/s" in line and "ETA" in line
    done = progress_line(records(20), {"state": "finished"})
    assert "ETA" not in done and "validation loss" in done
    assert progress_line([], {"state": "running"}) == ""


def test_status_line_says_what_the_run_does_and_shows_the_log_when_it_went_wrong():
    assert "No training run yet" in status_line(None, {})
    assert status_line("tiny", {"state": "running", "pid": 42}, "a log") == "**Training** tiny (pid 42)."
    line = status_line("tiny", {"state": "interrupted", "step": 1200, "reason": "gone"}, "error: boom\n``` x")
    assert line.startswith("**Interrupted**: tiny at step 1,200 (gone)")
    assert line.endswith("\n\n```\nerror: boom\n''' x\n```")              # fenced; a fence in the log cannot close it
    assert status_line("tiny", {"state": "interrupted"}) .endswith("Resume it below from its last checkpoint.")
    ended = status_line("tiny", {"state": "ended", "code": 2}, "error: too short")
    assert "ended before training began (exit status 2)" in ended and "error: too short" in ended
    assert "<b>" not in status_line("tiny", {"state": "failed", "reason": "<b>bad</b>"})


# --- the form's lines and the checkpoint line -------------------------------------------
def test_corpus_line_gives_size_characters_and_distinct():
    text = "héllo world\n" * 100
    line = corpus_line(CorpusChoice(text, "<mine>.txt", None), {"chars": len(text), "distinct": len(set(text))})
    assert line == f"**&lt;mine&gt;.txt**: 1.3 KiB, {len(text):,} characters, {len(set(text))} distinct"


def test_model_line_gives_parameters_shape_budget_and_the_limit():
    model_cfg, train_cfg = ModelConfig(vocab_size=30, embed=16, hidden=96, layers=2), TrainConfig(iterations=500)
    line = model_line(model_cfg, train_cfg, 123_456, 20_000_000, vocab_known=True)
    assert line.startswith("**123,456 parameters**: LSTM 2 x 96, embedding 16, 30-character vocabulary")
    assert "500 steps" in line and "over the app's limit" not in line
    over = model_line(model_cfg, TrainConfig(iterations=0, minutes=1.5), 30, 20, vocab_known=False)
    assert "over the app's limit of 20" in over and "vocabulary of the corpus" in over and "1.5 min" in over


def test_checkpoint_is_described_from_its_header():
    header = {"step": 1234, "best_val_loss": 2.5, "params": 5678, "vocab": "abc",
              "data": {"name": "tiny.txt", "chars": 4321}, "model_config": {"cell": "lstm", "layers": 1, "hidden": 16}}
    line = checkpoint_line(header)
    assert "tiny.txt" in line and "1,234 steps" in line and "validation loss 2.500" in line
    assert "5,678 parameters" in line and "4,321 chars" in line and "3-character vocabulary" in line
    assert "no validation loss yet" in checkpoint_line({**header, "best_val_loss": None})


def test_run_timeline_tells_a_runs_story_oldest_first():
    html = run_timeline("tiny", records(50), 40)
    assert html.startswith("<p><strong>tiny</strong>: 5 samples from step 100 to step 500")
    assert "validation loss 0.420 → 0.084" in html and html.index("step 100<") < html.index("step 500<")
    assert "has no samples yet" in run_timeline("<x>", records(5), 40) and "<x>" not in run_timeline("<x>", [], 40)


# --- small helpers -----------------------------------------------------------------------
def test_thin_keeps_the_ends_and_at_most_the_number_asked():
    assert thin(list(range(5)), 10) == [0, 1, 2, 3, 4]
    assert thin(list(range(101)), 5) == [0, 25, 50, 75, 100]


@pytest.mark.parametrize("seconds, shown", [(0, "0m 00s"), (75.9, "1m 15s"), (3600, "1h 00m"), (7322, "2h 02m")])
def test_clock(seconds, shown):
    assert clock(seconds) == shown


def test_human_bytes():
    assert [human_bytes(n) for n in (12, 1500, 2_500_000, 3 * 2**30)] == ["12 bytes", "1.5 KiB", "2.4 MiB", "3.0 GiB"]


def test_a_resumed_runs_budget_reads_as_a_time_and_a_stopped_run_keeps_its_last_speed():
    recs = records(10)
    line = progress_line(recs[:5], {"state": "running", "minutes": 0.6207372})
    assert "(time budget 0m 37s in all)" in line and "0.62" not in line
    stopped = [*recs, {"step": 101, "chars_per_s": 0.0, "elapsed": 99.0, "end": "stopped"}]
    assert "1,000 chars/s" in progress_line(stopped, {"state": "stopped"})
