"""One unit's activation over a text, and the suggested units (webui.units, no gradio)."""
from __future__ import annotations

import re

import pytest
import torch
from app_fixtures import app_settings, corpus_text, make_checkpoint, model_of, tiny_context
from html_reading import Spans, box_text

from charrnn.config import ModelConfig
from charrnn.inside import activations, suggest_units
from charrnn.model import CharRNN
from charrnn.runs.store import PROJECT_DIR, RunDir
from charrnn.vocab import Vocab
from webui.colours import activation_colour, ink_for
from webui.errors import UserError
from webui.inside import units
from webui.inside.units import inside_text, suggestions, unit_args, unit_view
from webui.models import BUNDLED_KEY, ModelCache
from webui.passages import PASSAGE, WRITTEN_NOTE, corpus_passage, line_start, model_passage, model_prime
from webui.prime import DEFAULT_PRIME
from webui.settings import Settings

MODELS = ModelCache()          # the passages' and primes' models, loaded once

TEXT = "the cat\nsat on"


def painted(colour: str) -> str:
    return f"background:{colour};color:{ink_for(colour)}"


@pytest.fixture
def ctx(tmp_path):
    return tiny_context(tmp_path)


def unit(ctx, text=TEXT, kind="hidden", layer=1, number=3, key="tiny", warn=None):
    return unit_view(ctx, key, text, kind, layer, number, *([warn] if warn is not None else []))


def test_unit_colouring_has_one_span_per_character_coloured_by_its_value(ctx):
    markup = unit(ctx)
    (spans,) = Spans(markup).boxes
    assert box_text(markup) == TEXT
    model, vocab = model_of(ctx)
    values = activations(model, vocab, TEXT, 0)["hidden"][:, 3].tolist()
    for (_, style, title), v in zip(spans, values, strict=True):
        assert f"background:{activation_colour(v, 1.0)}" in style and f"{v:+.3f}" in title
    assert "hidden unit 3</strong> of layer 1" in markup


def test_cell_values_are_scaled_to_what_they_reach(ctx):
    markup = unit(ctx, kind="cell", number=0)
    model, vocab = model_of(ctx)
    values = activations(model, vocab, TEXT, 0)["cell"][:, 0].tolist()
    scale = max(1.0, *(abs(v) for v in values))
    styles = [style for _, style, _ in Spans(markup).boxes[0]]
    assert styles == [painted(activation_colour(v, scale)) for v in values]


def make_deep_checkpoint(directory, text):
    """A two-layer untrained checkpoint, written as the trainer would."""
    vocab = Vocab.from_text(text)
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=16, layers=2))
    directory.mkdir(parents=True)
    RunDir(directory).keep(model, vocab, {"run": directory.name, "step": 1, "params": model.num_params()})


def test_the_layer_asked_for_is_the_one_shown(ctx):
    make_deep_checkpoint(ctx.settings.root / "deep", corpus_text())
    model, vocab = model_of(ctx, "deep")
    for layer in (1, 2):
        markup = unit(ctx, key="deep", layer=layer, number=5)
        values = activations(model, vocab, TEXT, layer - 1)["hidden"][:, 5].tolist()
        assert [s for _, s, _ in Spans(markup).boxes[0]] == [painted(activation_colour(v, 1.0)) for v in values]
        assert f"hidden unit 5</strong> of layer {layer} (LSTM 2 x 16)" in markup
    with pytest.raises(UserError, match="Layer must be a whole number from 1 to 2"):
        unit(ctx, key="deep", layer=3)


def test_activations_are_memoised_per_checkpoint_text_and_layer(ctx, monkeypatch):
    calls = []
    real = units.activations
    monkeypatch.setattr(units, "activations", lambda *a: calls.append(a[2]) or real(*a))
    unit(ctx, number=1)
    unit(ctx, number=2, kind="cell")
    assert len(ctx.activations) == 1 and calls == [TEXT]
    unit(ctx, text="sat on the mat")
    assert len(ctx.activations) == 2 and calls == [TEXT, "sat on the mat"]


@pytest.mark.parametrize("fields, most, note", [
    ({}, 3000, "Showing the first 3,000 characters."),
    ({"max_inside_chars": 200}, 200, "Showing the first 200 characters."),
])
def test_long_texts_are_capped_to_the_setting(tmp_path, fields, most, note):
    ctx = tiny_context(tmp_path, **fields)
    long = (corpus_text() * 2)[:most + 500]
    markup = unit(ctx, text=long)
    assert len(Spans(markup).boxes[0]) == most and note in markup and box_text(markup) == long[:most]
    assert "Showing the first" not in unit(ctx, text=long[:most])


def test_unknown_characters_are_folded_or_dropped_with_a_warning(ctx):
    messages = []
    markup = unit(ctx, text="the café", warn=messages.append)
    assert box_text(markup) == "the cafe"
    assert len(messages) == 1 and "does not know 'é'" in messages[0] and "left out of the text" in messages[0]
    messages.clear()
    unit(ctx, text="the cat", warn=messages.append)
    assert messages == []


BAD_REQUESTS = [
    (dict(number=16), "Unit must be a whole number from 0 to 15"),
    (dict(number=-1), "Unit must be"),
    (dict(number=None), "Unit must be"),
    (dict(number=2.5), "Unit must be"),
    (dict(layer=2), "Layer must be a whole number from 1 to 1"),
    (dict(layer=0), "Layer must be"),
    (dict(kind="forget"), "State must be 'cell' or 'hidden'"),
    (dict(text=""), "Give the model some text"),
    (dict(text="   \n"), "Give the model some text"),
    (dict(text=None), "Give the model some text"),
    (dict(text="XYZ!"), "knows none of the text's characters"),
    (dict(key=None), "No checkpoint chosen"),
    (dict(key="../etc"), "invalid run name"),
]


@pytest.mark.parametrize("changes, message", BAD_REQUESTS)
def test_bad_unit_requests_are_refused_with_a_message(ctx, changes, message):
    with pytest.raises(UserError, match=message):
        unit(ctx, warn=[].append, **changes)


@pytest.mark.parametrize("changes, message", [(c, m) for c, m in BAD_REQUESTS if "number" not in c])
def test_bad_suggestion_requests_are_refused_with_a_message(ctx, changes, message):
    args = {"key": "tiny", "text": TEXT, "kind": "cell", "layer": 1, **changes}
    with pytest.raises(UserError, match=message):
        suggestions(ctx, args["key"], args["text"], args["kind"], args["layer"], [].append)


def test_the_message_quotes_a_bad_state_as_text():
    with pytest.raises(UserError) as refused:
        unit_args(CharRNN(ModelConfig(vocab_size=4, embed=2, hidden=4)), "<b>", 1, 0)
    assert "&lt;b&gt;" in str(refused.value) and "<b>" not in str(refused.value)


def test_inside_text_caps_folds_and_notes(ctx):
    _, vocab = model_of(ctx)
    messages = []
    assert inside_text(vocab, "the cat", 100, messages.append) == ("the cat", "")
    assert inside_text(vocab, "the café sat", 8, messages.append) == ("the cafe", " Showing the first 8 characters.")
    assert len(messages) == 1


def test_suggestions_name_the_units_that_best_follow_simple_features(ctx):
    text = corpus_text(40)
    found = suggestions(ctx, "tiny", text, "cell", 1)
    assert {d["feature"] for d in found} == {"position in line", "after a newline"}  # the other features do not vary
    assert [abs(d["r"]) for d in found] == sorted((abs(d["r"]) for d in found), reverse=True)
    model, vocab = model_of(ctx)
    assert found == suggest_units(model, vocab, text, "cell", 0)
    assert all(0 <= d["unit"] < 16 for d in found)
    assert suggestions(ctx, "tiny", text, "cell", 1) is found                 # memoised with the activations
    assert suggestions(ctx, "tiny", text, "hidden", 1) is not found


def test_the_default_passage_is_whole_lines_with_speaker_names(tmp_path):
    passage = corpus_passage(PROJECT_DIR / "data", *PASSAGE)
    assert 1000 < len(passage) <= PASSAGE[2] and passage.endswith("\n")
    assert re.search(r"^[A-Z][A-Z ]+:$", passage, re.MULTILINE)
    assert corpus_passage(tmp_path, "missing.txt", 0, 100) == ""


def test_a_passage_starts_after_a_blank_line_and_ends_on_a_whole_line(tmp_path):
    (tmp_path / "c.txt").write_text("one\ntwo\n\nthree four\nfive six\nseven\n", encoding="utf-8")
    assert corpus_passage(tmp_path, "c.txt", 0, 16) == "three four\n"
    assert corpus_passage(tmp_path, "c.txt", 10**6, 100) == "three four\nfive six\nseven\n"   # past the end: start


# --- the passage follows the chosen model ----------------------------------------------------------
def test_the_bundled_model_reads_its_shakespeare_passage(tmp_path):
    settings = Settings(root=tmp_path)                         # the project's own data folder
    text, label, note = model_passage(settings, MODELS, BUNDLED_KEY)
    assert text == corpus_passage(settings.data_dir, *PASSAGE) and "ROMEO" in text
    assert label == "A Shakespeare passage" and note == ""


def test_a_run_reads_whole_lines_from_the_held_out_end_of_its_own_text(tmp_path):
    settings = app_settings(tmp_path)
    own = "".join(f"line {i} of my own prose, nothing like Shakespeare.\n" for i in range(2000))
    make_checkpoint(settings.root / "mine", own)
    (settings.root / "mine" / "corpus.txt").write_text(own, encoding="utf-8")
    text, label, note = model_passage(settings, MODELS, "mine")
    assert text in own and text.endswith("\n") and own[own.index(text) - 1] == "\n"     # whole lines
    assert own.index(text) >= 0.9 * len(own) and 750 < len(text) <= 1500
    assert label == "A passage of tiny" and note == ""       # make_checkpoint names its corpus tiny.txt


def test_a_short_own_text_is_read_from_its_start(tmp_path):
    settings = app_settings(tmp_path)
    own = "a short text of mine\nwith two lines\n"
    make_checkpoint(settings.root / "short", own)
    (settings.root / "short" / "corpus.txt").write_text(own, encoding="utf-8")
    assert model_passage(settings, MODELS, "short")[0] == own


def test_a_run_on_a_bundled_corpus_reads_that_corpus(tmp_path):
    settings = app_settings(tmp_path, corpus=True)
    make_checkpoint(settings.root / "on-bundled", corpus_text(), data={"name": "tiny.txt", "chars": 10, "path": ""})
    (settings.data_dir / "tiny.txt").write_text(corpus_text(3000), encoding="utf-8")
    text, _, _ = model_passage(settings, MODELS, "on-bundled")
    assert text in corpus_text(3000)


def test_a_model_whose_text_is_not_here_reads_what_it_writes_itself_and_says_so(tmp_path):
    settings = app_settings(tmp_path, corpus=True)
    make_checkpoint(settings.root / "uploaded", "xyz\nqrs\n", data={"name": "elsewhere.txt", "chars": 8, "path": ""})
    text, label, note = model_passage(settings, MODELS, "uploaded")
    assert label == "A passage it wrote" and note == WRITTEN_NOTE and "not on this server" in note
    assert text == model_passage(settings, ModelCache(), "uploaded")[0]       # one seed: the same passage each time
    assert set(text) <= set("xyz\nqrs") and len(text) > PASSAGE[2] // 2     # its own characters, no Shakespeare
    assert text.endswith("\n")                                                # whole lines
    assert model_passage(settings, MODELS, "../escape")[1] == "A Shakespeare passage"   # no model: the tab refuses


# --- the Generate tab's prime follows the chosen model ---------------------------------------------
def test_the_bundled_model_and_no_model_start_from_romeo(tmp_path):
    settings = Settings(root=tmp_path)
    assert model_prime(settings, MODELS, BUNDLED_KEY) == DEFAULT_PRIME == "ROMEO:\n"
    assert model_prime(settings, MODELS, None) == DEFAULT_PRIME and model_prime(settings, MODELS, "") == DEFAULT_PRIME


def test_a_run_starts_from_the_start_of_a_line_of_its_own_held_out_text(tmp_path):
    settings = app_settings(tmp_path)
    own = "".join(f"line {i} of my own prose, nothing like Shakespeare.\n" for i in range(2000))
    make_checkpoint(settings.root / "mine", own)
    (settings.root / "mine" / "corpus.txt").write_text(own, encoding="utf-8")
    prime = model_prime(settings, MODELS, "mine")
    first_line = model_passage(settings, MODELS, "mine")[0].split("\n")[0]
    assert first_line.startswith(prime) and prime.startswith("line 1") and prime.endswith(" ")
    assert "ROMEO" not in prime and len(prime) <= 16
    assert ("\n" + prime) in own[int(0.9 * len(own)):]                    # a line's start, from the held-out end


def test_a_model_whose_text_is_not_here_starts_from_the_first_line_it_writes_itself(tmp_path):
    settings = app_settings(tmp_path)
    make_checkpoint(settings.root / "uploaded", "xyz\nqrs\n", data={"name": "elsewhere.txt", "chars": 8, "path": ""})
    prime = model_prime(settings, MODELS, "uploaded")
    assert prime and set(prime) <= set("xyz\nqrs") and len(prime) <= 16      # not empty, and from its vocabulary
    assert model_passage(settings, MODELS, "uploaded")[0].lstrip("\n").startswith(prime)  # the passage's first line
    assert model_prime(settings, MODELS, "../escape") == ""                   # no such model: the start of a line


@pytest.mark.parametrize("text, prime", [
    ("BALTHASAR:\nThen she is well\n", "BALTHASAR:\n"),             # a short line, whole: a speaker's name
    ("\n  \nthe cat sat on the mat 3\n", "the cat sat on "),       # blank lines skipped; cut after a word
    ("abcdefghijklmnopqrstuvwxyz\n", "abcdefghijklmnop"),           # one long word: cut at the length
    ("", ""),
])
def test_line_start_is_a_whole_short_line_or_the_first_words_of_a_long_one(text, prime):
    assert line_start(text, 16) == prime
