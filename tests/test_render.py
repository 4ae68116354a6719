"""webui.render: the loss plot's frame, sample timelines, progress, status and checkpoint lines (no gradio)."""
from __future__ import annotations

import math

import pytest

from charrnn.config import ModelConfig, TrainConfig
from webui.models import checkpoint_line
from webui.settings import Settings
from webui.train.forms import CorpusChoice
from webui.train.render import (
    KEPT,
    SPLITS,
    active_banner,
    clock,
    corpus_line,
    human_bytes,
    kept_line,
    kept_model,
    latest_sample,
    loss_frame,
    loss_guide,
    model_line,
    overfit_note,
    overfitting,
    plot_value,
    precision_line,
    progress_line,
    run_settings,
    run_timeline,
    samples_html,
    status_line,
    thin,
)

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


def test_plot_gets_nothing_before_the_first_loss_and_every_series_after():
    assert plot_value([], POINTS) is None                      # not an empty frame: it would never draw
    assert loss_frame([], POINTS).dtypes["step"] == "int64"
    early = plot_value(records(3), POINTS)                      # train losses only, so far
    assert set(early.split) == set(SPLITS) == {"train", "validation", "kept model"}
    assert early[early.split != "train"].loss.isna().all() and early.dtypes["loss"] == "float64"
    later = plot_value(records(30), POINTS)                     # no record names a kept model: a placeholder
    assert len(later) == len(loss_frame(records(30), POINTS)) + 1 and later[later.split == KEPT].loss.isna().all()


def test_the_plot_marks_the_kept_model_with_one_point():
    recs = records(30)
    recs[19] |= {"best_step": 200, "best_val_loss": 0.21}
    recs[29] |= {"val_loss": 0.5, "best_step": 200, "best_val_loss": 0.21}   # a worse check later: still step 200
    frame = plot_value(recs, POINTS)
    kept = frame[frame.split == KEPT]
    assert list(kept.step) == [200] and list(kept.loss) == [0.21]
    assert kept_model(recs) == (200, 0.21) and kept_model(records(30)) is None
    assert kept_model([{"step": 5, "best_step": "x", "best_val_loss": 1.0}]) is None       # read, not trusted


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


def test_a_run_ended_by_early_stopping_says_so_and_which_model_it_kept():
    line = status_line("tiny", {"state": "finished", "step": 3600, "reason": "validation stopped improving at step "
                                "2600"})
    assert line.startswith("**Finished** early: tiny at step 3,600: validation stopped improving at step 2600, so "
                           "early stopping (patience) ended it.")
    assert status_line("tiny", {"state": "finished", "step": 10}) == ("**Finished**: tiny at step 10. Generate from "
                                                                      "it in the Generate tab.")
    passes = status_line("tiny", {"state": "finished", "step": 879, "reason": "it had read its text 20 times, its "
                                  "limit of passes"})
    assert passes == ("**Finished**: tiny at step 879: it had read its text 20 times, its limit of passes. Generate "
                      "from it in the Generate tab.")


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
    assert "dropout" not in line and "stopping early" not in line
    fitted = model_line(ModelConfig(vocab_size=30, dropout=0.5), TrainConfig(iterations=0, minutes=2, patience=5),
                        10, 20, vocab_known=True)
    assert "vocabulary, dropout 0.5; training for 2 min, stopping early after 5 checks without a better" in fitted
    inputs = model_line(ModelConfig(vocab_size=30, dropout=0.7, input_dropout=0.1), TrainConfig(minutes=2), 10, 20,
                        vocab_known=True)
    assert "vocabulary, dropout 0.7, input dropout 0.1; training for" in inputs
    both = model_line(model_cfg, TrainConfig(iterations=0, minutes=2, max_epochs=20), 30, 20_000_000, True)
    assert "training for 2 min or 20 passes over the text, whichever comes first." in both
    over = model_line(model_cfg, TrainConfig(iterations=0, minutes=1.5), 30, 20, vocab_known=False)
    assert "over the app's limit of 20" in over and "vocabulary of the corpus" in over and "1.5 min" in over


def test_checkpoint_is_described_from_its_header():
    header = {"step": 1234, "best_val_loss": 2.5, "params": 5678, "vocab": "abc",
              "data": {"name": "tiny.txt", "chars": 4321}, "model_config": {"cell": "lstm", "layers": 1, "hidden": 16}}
    line = checkpoint_line(header)
    assert "tiny.txt" in line and "1,234 steps · validation loss 2.500" in line
    assert "5,678 parameters" in line and "4,321 chars" in line and "3-character vocabulary" in line
    assert "no validation loss yet" in checkpoint_line({**header, "best_val_loss": None})


def test_the_checkpoint_line_says_the_kept_models_step_and_loss():
    header = {"step": 1200, "best_step": 1200, "best_val_loss": 1.5, "val_loss": 1.5, "vocab": "ab",
              "data": {"name": "t.txt", "chars": 10}, "model_config": {"layers": 1, "hidden": 8}}
    line = checkpoint_line(header)
    assert line.endswith("kept model from 1,200 steps of training: the run's best validation loss 1.500 nats/char "
                         "(2.16 bits/char)")


def test_a_checkpoint_line_of_odd_header_values_is_still_a_line():
    line = checkpoint_line({"step": "ten", "data": "corpus.txt", "model_config": [], "params": True,
                            "best_step": None, "best_val_loss": "low", "vocab": 5})
    assert "0 steps" in line and "no validation loss yet" in line and "parameters" not in line


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


# --- what a run's numbers mean -----------------------------------------------------------
def evals(pairs: list[tuple[float, float]], every: int = 200) -> list[dict]:
    """Records of checks every ``every`` steps, from (train loss, validation loss) pairs."""
    return [{"step": every * (i + 1), "train_loss": t, "val_loss": v} for i, (t, v) in enumerate(pairs)]


def test_the_kept_line_names_the_step_and_loss_and_a_worse_latest_check():
    recs = [*records(20), {"step": 210, "val_loss": 0.3, "best_step": 200, "best_val_loss": 0.21}]
    line = kept_line(recs, {"state": "running"})
    assert line.startswith("**Kept model**: step 200, validation loss 0.210 (0.30 bits/char), the best so far")
    assert "the Generate tab uses" in line and "The latest check, at step 210, scored 0.300." in line
    assert "the best of the run" in kept_line(recs, {"state": "finished"})
    assert kept_line(records(20), {"state": "running"}) == ""


def test_the_precision_line_gives_the_choice_and_the_measured_rates():
    measured = [{"step": 10, "precision": {"choice": "bf16", "how": "measured",
                                           "rates": {"float32": 20000.0, "bf16": 30000.0}}}, {"step": 20}]
    line = precision_line(measured)
    assert line.startswith("**Precision**: bf16, the faster in a quick measurement here (bf16 30,000, float32 "
                           "20,000 chars/s: bf16 ran at 1.50x float32's speed)")
    assert precision_line([{"step": 1, "precision": {"choice": "float32", "how": "set", "rates": {}}}]) == (
        "**Precision**: float32, as the recipe sets it (not measured).")
    odd = {"choice": "bf16", "how": "measured", "rates": {"bf16": "fast", "fp8": 1.0}}
    assert precision_line([{"step": 1, "precision": odd}]) == "**Precision**: bf16."
    assert precision_line([{"step": 1, "precision": {"choice": "fp8"}}, {"step": 2, "precision": "bf16"}]) == ""
    assert precision_line(records(5)) == ""


def test_the_precision_line_says_when_bf16_does_not_run_here():
    p = {"choice": "float32", "how": "measured", "rates": {"float32": 21000.0},
         "unavailable": {"bf16": "could not create a primitive descriptor"}}
    assert precision_line([{"step": 1, "precision": p}]) == (
        "**Precision**: float32 (float32 21,000 chars/s). bf16 autocast does not run on this machine, "
        "so it was not used.")


def test_overfitting_is_validation_rising_while_training_falls():
    rising = evals([(2.0, 2.1), (1.6, 1.8), (1.3, 1.70), (1.1, 1.75), (0.9, 1.85)])
    o = overfitting(rising)
    assert o == {"best_step": 600, "best_val": 1.70, "step": 1000, "val": 1.85, "train_then": 1.3, "train_now": 0.9}
    note = overfit_note(rising)
    assert "overfitting" in note and "1.700 → 1.850" in note and "1.300 → 0.900" in note
    assert "the kept model is step 600's, the best one" in note
    assert "more text" in note and "more dropout" in note and "smaller model" in note
    strong = overfit_note(rising, dropout=0.7)                 # auto's small-text run: more dropout is no advice
    assert "already trained with dropout 0.7" in strong and "more dropout" not in strong
    assert "more text" in strong and "smaller model" in strong
    assert "more dropout" in overfit_note(rising, dropout=0.2)


@pytest.mark.parametrize("pairs", [
    [(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.1, 1.65), (0.9, 1.6)],       # still improving
    [(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.2, 1.705), (1.1, 1.71)],     # a plateau: within 1% of the best
    [(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.4, 1.8), (1.5, 1.9)],        # both rising: diverging, not memorising
    [(2.0, 2.1), (1.6, 1.8), (1.3, 1.7), (1.1, 1.9)],                    # one check after the best: too soon
])
def test_no_overfitting_is_claimed_without_the_evidence(pairs):
    assert overfitting(evals(pairs)) is None and overfit_note(evals(pairs)) == ""


def test_the_loss_guide_scales_to_the_text():
    guide = loss_guide({"chars": 1_115_394, "distinct": 65})
    assert "Guessing blindly among its 65 characters scores ln 65 = 4.17" in guide
    assert "about 1.5 is good" in guide and "by heart" not in guide
    small = loss_guide({"chars": 5000, "distinct": 12})
    assert "ln 12 = 2.48" in small and "English" not in small and "5,000 characters" in small
    assert loss_guide(None) == "" and loss_guide({"chars": 5, "distinct": 1}) == ""


def test_the_banner_names_the_run_in_progress_and_the_status_its_settings():
    header = {"model_config": {"cell": "lstm", "layers": 1, "hidden": 32, "dropout": 0.5},
              "train_config": {"batch_size": 8, "seq_len": 32, "lr": 0.01, "iterations": 0, "minutes": 2.0,
                               "patience": 5}, "data": {"name": "<t>.txt", "chars": 6150}}
    assert run_settings(header) == ("on &lt;t&gt;.txt (6,150 characters) · LSTM 1 x 32, dropout 0.5 · batch 8 x 32, "
                                    "learning rate 0.01 · 2 min · patience 5")
    header["model_config"]["input_dropout"] = 0.1
    assert "LSTM 1 x 32, dropout 0.5, input dropout 0.1 · batch" in run_settings(header)
    assert run_settings({"model_config": "x", "train_config": {"lr": "fast"}, "data": []}) == ""
    banner = active_banner("tiny", {"state": "running"})
    assert banner.startswith("**Training now: tiny**. Section 3 below follows this run")
    assert "The form is for your next run" in banner
    assert active_banner("tiny", {"state": "starting"}).startswith("**Starting: tiny**")
