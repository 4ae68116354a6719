"""The presets, and the auto recipe fitted to the text and the budget: stronger dropout and more passes for smaller
texts, a larger model for a larger text over a long budget, a smaller one for a budget under a minute, input dropout
on every run, the user's own values always winning."""
import pytest

from charrnn.config import (
    AUTO_MAX_EPOCHS,
    DEFAULT_PRESET,
    INPUT_DROPOUT,
    LONG_BUDGET,
    PRESETS,
    SMALL_MAX_EPOCHS,
    SMALL_TEXT,
    auto_recipe,
    preset_configs,
)


def test_auto_is_the_default_and_stops_early():
    assert DEFAULT_PRESET == "auto" and "auto" in PRESETS
    _, train = preset_configs("auto", 60)
    assert train.patience > 0 and train.minutes > 0 and train.iterations == 0


@pytest.mark.parametrize("chars, dropout, hidden", [(85_000, 0.7, 512), (300_000, 0.2, 384), (1_100_000, 0.2, 384),
                                                   (20_000_000, 0.1, 384)])
def test_a_small_text_gets_a_larger_model_held_back_by_stronger_dropout(chars, dropout, hidden):
    model, _ = preset_configs("auto", 60, corpus_chars=chars)
    assert (model.dropout, model.hidden) == (dropout, hidden)


def test_autos_schedule_ends_after_its_passes_over_the_text_and_a_small_text_is_checked_more_often():
    _, small = preset_configs("auto", 60, corpus_chars=SMALL_TEXT - 1)
    _, large = preset_configs("auto", 60, corpus_chars=SMALL_TEXT)
    assert small.max_epochs == SMALL_MAX_EPOCHS > large.max_epochs == AUTO_MAX_EPOCHS > 0
    assert small.eval_every < large.eval_every == PRESETS["auto"][1]["eval_every"]
    assert small.sample_every < large.sample_every == PRESETS["auto"][1]["sample_every"]
    assert preset_configs("long", 60, corpus_chars=85_000)[1].max_epochs == 0      # the fixed presets do not
    assert preset_configs("auto", 60, None, {"max_epochs": 0}, 85_000)[1].max_epochs == 0   # the user's value wins


@pytest.mark.parametrize("chars, dropout, hidden", [(85_000, 0.7, 512), (1_100_000, 0.25, 512),
                                                   (20_000_000, 0.1, 512)])
def test_a_long_budget_trains_a_larger_text_on_a_larger_model(chars, dropout, hidden):
    model, train = preset_configs("auto", 60, None, {"minutes": LONG_BUDGET}, chars)
    assert (model.dropout, model.hidden) == (dropout, hidden)
    shorter, short_train = preset_configs("auto", 60, None, {"minutes": LONG_BUDGET - 1}, chars)
    assert shorter.hidden == (512 if chars < SMALL_TEXT else 384)
    assert shorter.dropout == (0.7 if chars < SMALL_TEXT else 0.2 if chars < 3_000_000 else 0.1)
    assert train.max_epochs == short_train.max_epochs            # the passes depend on the text, not the budget


def test_every_auto_run_drops_some_input_and_the_fixed_presets_none():
    for chars, minutes in [(85_000, 2), (1_100_000, 2), (1_100_000, 10), (85_000, 0.5)]:
        assert preset_configs("auto", 60, None, {"minutes": minutes}, chars)[0].input_dropout == INPUT_DROPOUT > 0
    assert all(preset_configs(name, 60, corpus_chars=85_000)[0].input_dropout == 0 for name in PRESETS
               if name != "auto")
    assert preset_configs("auto", 60, {"input_dropout": 0.0}, None, 85_000)[0].input_dropout == 0    # the user's wins


def test_a_budget_under_a_minute_trains_a_smaller_model():
    assert auto_recipe(85_000, 0.5)[0]["hidden"] == 256
    assert preset_configs("auto", 60, None, {"minutes": 0.5}, 85_000)[0].hidden == 256


def test_the_users_values_win_over_the_recipe_and_other_presets_ignore_the_size():
    model, _ = preset_configs("auto", 60, {"dropout": 0.05, "hidden": 128}, None, 85_000)
    assert (model.dropout, model.hidden) == (0.05, 128)
    assert preset_configs("long", 60, corpus_chars=85_000)[0].dropout == PRESETS["long"][0]["dropout"]
