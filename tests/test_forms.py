"""webui.forms: the chosen corpus, the model and train configs, and generation arguments, checked (no gradio)."""
from __future__ import annotations

import math

import pytest
from app_fixtures import TINY_TRAINING, app_settings, corpus_text

from charrnn.config import PRESETS
from webui.checks import check_generation_args, finite, whole_number
from webui.errors import UserError
from webui.settings import Settings
from webui.train.forms import (
    DEFAULT_PATIENCE,
    FIELD_HINTS,
    FORM_FIELDS,
    PAGE_FIELDS,
    PRESET_PURPOSES,
    SOURCES,
    CorpusChoice,
    build_configs,
    bundled_corpora,
    fitted_hidden,
    preset_values,
    read_corpus,
    read_pasted,
    read_upload,
    text_stats,
)

TINY = {k: v for k, v in TINY_TRAINING.items() if k != "preset"}


@pytest.fixture
def settings(tmp_path):
    return app_settings(tmp_path, corpus=True)


# --- corpus ---------------------------------------------------------------------------
def test_a_bundled_corpus_is_read_from_the_data_folder(settings):
    assert bundled_corpora(settings.data_dir) == ["tiny.txt"]
    choice = read_corpus(settings, "bundled", "tiny.txt", None, None)
    assert choice == CorpusChoice(corpus_text(), "tiny.txt", settings.data_dir / "tiny.txt")
    assert text_stats(choice.text) == {"chars": len(corpus_text()), "distinct": len(set(corpus_text()))}


def test_bundled_corpora_of_a_missing_folder_is_empty(tmp_path):
    assert bundled_corpora(tmp_path / "nowhere") == []


def test_pasted_and_uploaded_text_are_trained_from_the_run_directory(settings, tmp_path):
    assert read_corpus(settings, "paste", None, None, "some text") == CorpusChoice("some text", "pasted text", None)
    path = tmp_path / "mine.txt"
    path.write_text("uploaded words", encoding="utf-8")
    assert read_corpus(settings, "upload", None, str(path), None) == CorpusChoice("uploaded words", "mine.txt", None)
    assert {value for _, value in SOURCES} == {"bundled", "upload", "paste"}


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01binary\x00", "binary"),
    (b"caf\xe9 au lait", "not valid UTF-8"),
])
def test_bad_uploads_are_refused_with_the_reason(settings, tmp_path, content, message):
    path = tmp_path / "upload.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_corpus(settings, "upload", None, str(path), None)


def test_an_upload_gone_from_the_server_is_refused(tmp_path):
    with pytest.raises(UserError, match="no longer on the server"):
        read_upload(str(tmp_path / "gone.txt"), 1000)


def test_oversized_upload_and_paste_are_refused_naming_the_limit(tmp_path):
    settings = Settings(root=tmp_path / "ckpts", max_corpus_bytes=1000)
    path = tmp_path / "big.txt"
    path.write_text("a" * 2000)
    with pytest.raises(UserError, match="limit"):
        read_corpus(settings, "upload", None, str(path), None)
    with pytest.raises(UserError, match="limit"):
        read_corpus(settings, "paste", None, None, "a" * 2000)
    with pytest.raises(UserError, match="limit"):
        read_upload(str(path), 1000)
    with pytest.raises(UserError, match="limit"):
        read_pasted("a" * 2000, 1000)
    assert read_corpus(settings, "paste", None, None, "a" * 1000).text == "a" * 1000     # at the limit: fine
    path.write_text("a" * 1000)
    assert read_upload(str(path), 1000).text == "a" * 1000
    assert read_corpus(Settings(root=tmp_path), "paste", None, None, "a" * 2000).text == "a" * 2000


@pytest.mark.parametrize("source, bundled, pasted, message", [
    ("paste", None, "   ", "Paste some text"),
    ("paste", None, None, "Paste some text"),
    ("upload", None, None, "Upload a .txt"),
    ("bundled", "../etc/passwd", None, "No bundled corpus"),
    ("bundled", None, None, "No bundled corpus"),
    ("ftp", None, None, "Unknown corpus source"),
])
def test_missing_or_unknown_corpus_choices_are_refused(settings, source, bundled, pasted, message):
    with pytest.raises(UserError, match=message):
        read_corpus(settings, source, bundled, None, pasted)


def test_a_user_value_in_a_message_is_shown_as_text_not_markup(settings):
    with pytest.raises(UserError) as refused:
        read_corpus(settings, "<b>x</b>", None, None, None)
    assert "<b>" not in str(refused.value) and "&lt;b&gt;" in str(refused.value)


# --- configuration --------------------------------------------------------------------
def test_preset_values_fill_the_form_from_presets():
    for name, (model_kw, train_kw) in PRESETS.items():
        values = preset_values(name)
        assert list(values) == [*FORM_FIELDS, *PAGE_FIELDS]
        assert (values["hidden"], values["layers"], values["seq_len"], values["batch_size"], values["lr"]) == (
            model_kw["hidden"], model_kw["layers"], train_kw["seq_len"], train_kw["batch_size"], train_kw["lr"])
        assert values["iterations"] == train_kw.get("iterations", 0)
        assert values["minutes"] == train_kw.get("minutes", 0)


def test_the_form_stops_early_by_default_when_a_time_budget_ends_the_run():
    assert {name: preset_values(name)["patience"] for name in PRESETS} == {
        "seed": 0, "quick": DEFAULT_PATIENCE, "long": DEFAULT_PATIENCE, "auto": PRESETS["auto"][1]["patience"]}
    assert preset_values("auto")["patience"] > 0 and PRESETS["seed"][1]["iterations"] > 0


def test_the_auto_presets_hidden_size_follows_the_text_and_the_minutes():
    assert preset_values("auto", 6000)["hidden"] == fitted_hidden("auto", 6000, 2.0) == 512      # a small text
    assert fitted_hidden("auto", 1_100_000, 2.0) == 384
    assert fitted_hidden("auto", 6000, 0.5) == 256                     # under a minute: the smaller, faster model
    assert fitted_hidden("auto", None, 0.5) == 384                     # no text yet: the preset's own
    assert fitted_hidden("quick", 6000, 0.2) == PRESETS["quick"][0]["hidden"]       # the others do not move
    assert fitted_hidden("auto", 6000, -1) == 512 and fitted_hidden("auto", 6000, "x") == 512   # not a budget
    assert fitted_hidden("huge", 6000, 2.0) is None


def test_every_field_and_preset_is_explained_in_plain_words():
    assert set(FIELD_HINTS) == {*FORM_FIELDS, *PAGE_FIELDS}
    assert set(PRESET_PURPOSES) == set(PRESETS)
    assert "30 s" in PRESET_PURPOSES["quick"] and "lecture" in PRESET_PURPOSES["seed"]
    assert all(len(hint) < 140 for hint in FIELD_HINTS.values())


def test_the_forms_patience_reaches_the_train_config_and_none_keeps_the_presets(settings):
    assert build_configs(settings, "quick", 30, {**TINY, "patience": 3})[1].patience == 3
    assert build_configs(settings, "auto", 30, {**TINY, "patience": None})[1].patience == PRESETS["auto"][1]["patience"]
    assert build_configs(settings, "quick", 30, TINY)[1].patience == 0              # what an API caller gets
    with pytest.raises(UserError, match="patience"):
        build_configs(settings, "quick", 30, {**TINY, "patience": -1})


def test_build_configs_gives_the_trainers_configs_from_the_preset_and_the_form(settings):
    model_cfg, train_cfg = build_configs(settings, "quick", 30, TINY)
    assert (model_cfg.vocab_size, model_cfg.hidden, model_cfg.layers) == (30, 32, 1)
    assert model_cfg.embed == PRESETS["quick"][0]["embed"]
    assert (train_cfg.seq_len, train_cfg.batch_size, train_cfg.lr, train_cfg.iterations, train_cfg.minutes) == (
        32, 8, 0.01, 0, 2.0)
    blank = build_configs(settings, "quick", 30, {})                   # a blank field keeps the preset's value
    assert blank[0].hidden == PRESETS["quick"][0]["hidden"]


@pytest.mark.parametrize("changes, message", [
    (dict(hidden=0), "hidden=0 is out of range; allowed 1 to 4096"),
    (dict(layers=9), "allowed 1 to 8"),
    (dict(lr=5.0), "lr=5.0 is out of range"),
    (dict(seq_len=-3), "seq_len=-3 is out of range"),
    (dict(iterations=0, minutes=0), "iterations > 0, minutes > 0"),
    (dict(batch_size=4096, seq_len=4096), "characters per batch"),
])
def test_out_of_range_settings_are_refused_naming_the_value(settings, changes, message):
    with pytest.raises(UserError, match=message):
        build_configs(settings, "quick", 30, {**TINY, **changes})


def test_an_unknown_preset_is_refused(settings):
    with pytest.raises(UserError, match="Unknown preset"):
        build_configs(settings, "huge", 30, TINY)


def test_the_batch_limit_is_the_settings(tmp_path):
    small = Settings(root=tmp_path, max_batch_chars=255)
    with pytest.raises(UserError, match="at most 255 characters per batch"):
        build_configs(small, "quick", 30, TINY)                       # 8 x 32 = 256
    assert build_configs(Settings(root=tmp_path, max_batch_chars=256), "quick", 30, TINY)[1].batch_size == 8


# --- generation arguments -------------------------------------------------------------
GOOD = dict(prime="the ", temperature=0.8, length=100, top_k=0, seed=1)


@pytest.mark.parametrize("changes, message", [
    (dict(temperature=-0.1), "Temperature must be"),
    (dict(temperature=float("nan")), "Temperature must be"),
    (dict(temperature=2.5), "from 0 to 2"),
    (dict(temperature="hot"), "Temperature must be"),
    (dict(temperature=True), "Temperature must be"),
    (dict(length=0), "Length must be a whole number from 1 to 5,000"),
    (dict(length=10**9), "Length must be"),
    (dict(length=2.5), "Length must be"),
    (dict(length=math.inf), "Length must be"),
    (dict(top_k=-1), "Top-k must be"),
    (dict(seed=-5), "Seed must be"),
    (dict(prime="x" * 20_000), "at most 10,000"),
    (dict(prime=5), "at most 10,000"),
])
def test_bad_generation_arguments_are_refused_with_a_clear_message(settings, changes, message):
    with pytest.raises(UserError, match=message):
        check_generation_args(settings, **{**GOOD, **changes})


def test_generation_arguments_are_normalised(settings):
    assert check_generation_args(settings, **GOOD) == ("the ", 0.8, 100, None, 1)     # top-k 0 = off
    assert check_generation_args(settings, None, 0, 1.0, 5, 0) == ("", 0.0, 1, 5, None)  # seed 0 = random
    assert check_generation_args(settings, "", 2, 5000, None, None) == ("", 2.0, 5000, None, None)


def test_generation_limits_are_the_settings(tmp_path):
    tight = Settings(root=tmp_path, max_length=10, max_prime=3)
    with pytest.raises(UserError, match="Length must be a whole number from 1 to 10,"):
        check_generation_args(tight, "ab", 1.0, 11, None, None)
    with pytest.raises(UserError, match="at most 3 characters"):
        check_generation_args(tight, "abcd", 1.0, 10, None, None)
    assert check_generation_args(tight, "abc", 1.0, 10, None, None)[2] == 10


def test_whole_number_and_finite():
    assert whole_number("N", 3.0, 1, 5) == 3 and isinstance(whole_number("N", 3.0, 1, 5), int)
    for bad in (True, "3", 3.5, math.nan, 0, 6):
        with pytest.raises(UserError, match="N must be a whole number from 1 to 5"):
            whole_number("N", bad, 1, 5)
    assert finite(1) and finite(-2.5)
    assert not any(finite(x) for x in (math.nan, math.inf, True, "1", None))


def test_pasted_nul_characters_are_refused_like_an_uploaded_binary(settings):
    with pytest.raises(UserError, match="NUL characters"):
        read_corpus(settings, "paste", None, None, "some text\x00 and more text " * 20)


@pytest.mark.parametrize("seed", [10**400, -(10**400), 2**63])
def test_a_seed_out_of_range_is_refused_by_name_even_when_huge(settings, seed):
    with pytest.raises(UserError, match="Seed must be a whole number from 0"):
        check_generation_args(settings, "Th", 0.8, 10, 0, seed)
