"""The Train tab's "Start from" (webui.train.startfrom): what it offers a browser, and what each choice becomes in
run.json; someone else's run, a missing run and anything else are refused in words. No gradio."""
from __future__ import annotations

import pytest
from app_fixtures import app_settings, corpus_text, make_checkpoint

from charrnn.config import ModelConfig
from charrnn.runs import startpoint
from charrnn.runs.store import RunDir
from webui.errors import UserError
from webui.models import list_checkpoints
from webui.owners import record_owner
from webui.train import startfrom


@pytest.fixture
def settings(tmp_path):
    s = app_settings(tmp_path)
    make_checkpoint(s.root / "mine", corpus_text())
    record_owner(s.root / "mine", "my-key-0123456789abcdef")
    make_checkpoint(s.root / "theirs", corpus_text())
    record_owner(s.root / "theirs", "their-key-0123456789abcdef")
    return s


def test_offers_auto_nothing_the_base_and_only_the_callers_runs(settings):
    values = [v for _, v in startfrom.choices(settings, list_checkpoints(settings), "my-key-0123456789abcdef")]
    assert values[:3] == ["auto", "none", "english-base"]
    assert "run:mine" in values and "run:theirs" not in values


def test_each_choice_becomes_what_run_json_says(settings):
    key = "my-key-0123456789abcdef"
    assert startfrom.resolve(settings, "auto", key) == "auto" and startfrom.resolve(settings, None, key) == "auto"
    assert startfrom.resolve(settings, "none", key) == "none"
    assert startfrom.resolve(settings, "english-base", key) == str(startpoint.BUNDLED_BASE / RunDir.WEIGHTS)
    assert startfrom.resolve(settings, "run:mine", key) == str(settings.root / "mine" / RunDir.WEIGHTS)


@pytest.mark.parametrize("value, said", [("run:theirs", "Only the browser that started"),
                                         ("run:nobody", "There is no run"), ("run:../etc", "There is no run"),
                                         ("/etc/passwd", "Choose where the run starts"),
                                         ("bundled", "cannot be read")])
def test_refusals_are_words(settings, value, said):
    with pytest.raises(UserError, match=said):
        startfrom.resolve(settings, value, "my-key-0123456789abcdef")


def test_a_base_over_the_apps_size_is_refused(settings):
    small = app_settings(settings.root.parent, max_params=1000)
    with pytest.raises(UserError, match="at most 1,000"):
        startfrom.resolve(small, "english-base", None)


def test_the_shape_checked_before_a_start_is_the_bases(settings):
    form = ModelConfig(vocab_size=80, hidden=256, layers=2, dropout=0.5)
    shaped = startfrom.shape_of(str(startpoint.BUNDLED_BASE / RunDir.WEIGHTS), form)
    assert (shaped.hidden, shaped.layers, shaped.embed, shaped.dropout) == (512, 1, 64, 0.5)
    assert startfrom.shape_of("auto", form) is form


@pytest.mark.parametrize("preset, chosen, init", [("auto", None, "auto"), ("quick", None, "none"),
                                                  ("quick", "none", "none"), ("quick", "english-base", "base"),
                                                  ("auto", "run:mine", "mine")])
def test_a_start_writes_where_the_run_starts_into_run_json(settings, preset, chosen, init):
    import dataclasses

    from app_fixtures import TINY_TRAINING

    from webui.context import AppContext
    from webui.train import actions
    from webui.train.burst import RunFolder

    ctx = AppContext(settings)
    values = {k: v for k, v in TINY_TRAINING.items() if k not in ("preset", "hidden", "layers")}
    message = actions.start_training(dataclasses.replace(ctx, jobs=RunFolder(settings.root)), None, "paste", None,
                                     None, corpus_text(), preset, values, "new", key="my-key-0123456789abcdef",
                                     start_from=chosen)
    written = RunDir(settings.root / "new").read_config()["init"]
    expected = {"base": str(startpoint.BUNDLED_BASE / RunDir.WEIGHTS),
                "mine": str(settings.root / "mine" / RunDir.WEIGHTS)}.get(init, init)
    assert written == expected
    if init == "base":
        assert "fine-tuning english-base" in message
        assert int(message.split(" parameters")[0].split()[-1].replace(",", "")) > 10**6   # the base's size (H512)



@pytest.mark.parametrize("values", [{"hidden": 32}, {"layers": 2}])
def test_auto_trains_from_zero_when_the_visitor_sets_a_model_size(settings, values):
    import dataclasses

    from webui.context import AppContext
    from webui.train import actions
    from webui.train.burst import RunFolder

    ctx = dataclasses.replace(AppContext(settings), jobs=RunFolder(settings.root))
    for name, form in (("sized", {"minutes": 1.0, **values}), ("unsized", {"minutes": 1.0})):
        actions.start_training(ctx, None, "paste", None, None, corpus_text(), "auto", form, name,
                               key="my-key-0123456789abcdef")
    assert RunDir(settings.root / "sized").read_config()["init"] == "none"
    assert RunDir(settings.root / "unsized").read_config()["init"] == "auto"


def test_auto_never_weighs_a_base_bigger_than_the_app_trains(settings):
    assert startfrom.resolve(settings, None, None, "auto") == "auto"
    small = app_settings(settings.root.parent, max_params=1_000_000)
    assert startfrom.resolve(small, None, None, "auto") == "none"


def test_the_model_line_follows_start_from(settings):
    from webui.train import actions
    from webui.train.forms import text_stats

    stats = text_stats(corpus_text())
    auto = actions.describe_model(settings, stats, "auto", {"minutes": 2.0}, "auto")
    assert "auto may instead fine-tune the English base (LSTM 1 x 512, 1,23" in auto
    sized = actions.describe_model(settings, stats, "auto", {"minutes": 2.0, "hidden": 64}, "auto")
    assert "may instead" not in sized and "LSTM 1 x 64" in sized                 # a size set: auto keeps it
    base = actions.describe_model(settings, stats, "quick", {}, "english-base")
    assert base.startswith("Fine-tuning **english-base**") and "LSTM 1 x 512" in base
    assert "may instead" not in actions.describe_model(settings, stats, "auto", {"minutes": 2.0}, "none")
    with pytest.raises(UserError, match="Only the browser that started"):
        actions.describe_model(settings, stats, "auto", {}, "run:theirs", "my-key-0123456789abcdef")
