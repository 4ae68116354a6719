"""The Inside-a-unit tab's gradio-facing helpers (webui.inside_tab), called in-process: suggested units as radio
choices, picking one, the first look when the tab opens, and the handlers ``wire`` builds.

(The samples-over-time review, tested with the inside-the-model views before the split, is in test_train_tab.py.)"""
from __future__ import annotations

import os

import gradio as gr
import pytest
from app_fixtures import app_settings, corpus_text, make_checkpoint, tiny_context, wired

from charrnn.runs.store import RunDir
from webui.context import AppContext
from webui.inside import tab as inside_tab
from webui.inside.units import suggestions, unit_view
from webui.passages import model_passage
from webui.settings import Settings

TEXT = corpus_text(40)


@pytest.fixture
def ctx(tmp_path):
    return tiny_context(tmp_path)


@pytest.fixture
def tab(ctx):
    return built(ctx)


def built(ctx):
    """The tab's components, built and wired in a Blocks with a checkpoint picker and an output box."""
    with gr.Blocks() as demo:
        checkpoint, output = gr.Dropdown([]), gr.Textbox()
        with gr.Tab("Inside a unit") as page:
            u = inside_tab.build(ctx)
        inside_tab.wire(ctx, u, page, checkpoint, output)
    u.demo = demo
    return u


def features_of(radio) -> list[str]:
    return [label.split(": ", 1)[1].split(" (r =")[0] for label, _ in radio["choices"]]


SUGGESTED = ("suggestions", "unit", "view", "suggested")        # suggest_and_show's components
FIRST = ("shown", *SUGGESTED)                                   # first_look's


def parts(values: dict, names: tuple) -> tuple:
    """A handler's values keyed by component, in ``names``' order."""
    return tuple(values[name] for name in names)


# --- suggested units --------------------------------------------------------------------
def test_suggestions_name_units_and_picking_one_sets_the_controls(ctx):
    radio, best, markup, values = parts(inside_tab.suggest_and_show(ctx, "tiny", TEXT, "cell", 1), SUGGESTED)
    assert set(features_of(radio)) == {"position in line", "after a newline"}   # the other features do not vary here
    assert radio["value"] == radio["choices"][0][1] and values == [value for _, value in radio["choices"]]
    assert inside_tab.pick_suggestion(radio["value"]) == ("cell", best)
    assert f"cell unit {best}</strong>" in markup
    assert inside_tab.pick_suggestion("nonsense") == (gr.skip(), gr.skip())
    assert inside_tab.pick_suggestion(None) == (gr.skip(), gr.skip())


def test_the_choices_are_the_suggestions_best_first_and_the_best_is_shown(ctx):
    found = suggestions(ctx, "tiny", TEXT, "hidden", 1)
    radio, best, markup, _ = parts(inside_tab.suggest_and_show(ctx, "tiny", TEXT, "hidden", 1), SUGGESTED)
    assert radio["choices"] == [(f"hidden {d['unit']}: {d['feature']} (r = {d['r']:+.2f})",
                                 f"hidden/{d['unit']}/{d['feature']}") for d in found]
    assert best == found[0]["unit"] and markup == unit_view(ctx, "tiny", TEXT, "hidden", 1, best)
    assert [inside_tab.pick_suggestion(value) for _, value in radio["choices"]] == [("hidden", d["unit"])
                                                                                     for d in found]


def test_a_text_where_no_feature_varies_gets_no_suggestions_and_says_why(ctx):
    found = inside_tab.suggest_and_show(ctx, "tiny", "t", "cell", 1)
    radio, markup, values = found["suggestions"], found["view"], found["suggested"]
    assert radio["choices"] == [] and radio["value"] is None and "unit" not in found and values == []
    assert markup.startswith("<p>⚠️") and "No simple feature varies" in markup


def test_the_same_suggestions_again_are_said_to_be_the_same(ctx):
    radio, best, first, values = parts(inside_tab.suggest_and_show(ctx, "tiny", TEXT, "cell", 1), SUGGESTED)
    assert "same units again" not in first
    again = parts(inside_tab.suggest_and_show(ctx, "tiny", TEXT, "cell", 1, values), SUGGESTED)
    assert again[0] == radio and again[1] == best and again[3] == values
    units = ", ".join("{} {} ({})".format(*value.split("/")) for value in values)     # e.g. cell 3 (after a newline)
    assert again[2].startswith(f"<p class='charrnn-note'>The same units again: {units}.") and again[2].endswith(first)
    other = inside_tab.suggest_and_show(ctx, "tiny", TEXT, "hidden", 1, values)       # another state: new units
    assert "same units again" not in other["view"]


def test_suggest_warns_about_unknown_characters_once(ctx):
    with pytest.warns(UserWarning, match="does not know 'é'") as caught:
        inside_tab.suggest_and_show(ctx, "tiny", TEXT + "café\n", "cell", 1)
    assert len([w for w in caught if "does not know" in str(w.message)]) == 1


# --- the first look when the tab opens --------------------------------------------------
def test_the_tab_suggests_and_shows_a_unit_once(ctx, tmp_path):
    shown, radio, best, markup, values = parts(inside_tab.first_look(ctx, False, "tiny", TEXT, "cell", 1), FIRST)
    assert shown is True and radio["choices"] and f"unit {best}</strong>" in markup and len(values) == 2
    assert inside_tab.first_look(ctx, True, "tiny", "x", "cell", 1) == {}            # once shown: nothing changes
    shown, _, best, markup, _ = parts(inside_tab.first_look(ctx, False, None, TEXT, "cell", 1), FIRST)
    assert shown is True and f"unit {best}</strong>" in markup       # before the picker is filled: the newest
    empty = AppContext(app_settings(tmp_path / "none"))
    look = inside_tab.first_look(empty, False, None, "x", "cell", 1)
    assert look["shown"] is False and "⚠️" in look["view"] and "No checkpoint chosen" in look["view"]
    assert set(look) == {"shown", "view"}                                        # the rest is left as it is


def test_before_the_picker_is_filled_the_first_look_uses_the_newest_checkpoint(ctx):
    newer = make_checkpoint(ctx.settings.root / "newer", corpus_text(), seed=1)
    older = ctx.settings.root / "tiny" / RunDir.WEIGHTS
    stamp = older.stat().st_mtime_ns
    os.utime(older, ns=(stamp, stamp))
    os.utime(newer, ns=(stamp + 10**9, stamp + 10**9))
    look = inside_tab.first_look(ctx, False, None, TEXT, "cell", 1)
    assert {k: v for k, v in look.items() if k != "shown"} == inside_tab.suggest_and_show(ctx, "newer", TEXT, "cell", 1)
    assert look["view"] != inside_tab.suggest_and_show(ctx, "tiny", TEXT, "cell", 1)["view"]


def test_a_bad_request_on_the_first_look_is_drawn_in_place_and_tried_again_next_time(ctx):
    look = inside_tab.first_look(ctx, False, "tiny", TEXT, "forget", 1)
    assert look["shown"] is False and set(look) == {"shown", "view"}              # the controls are left as they are
    assert look["view"].startswith("<p>⚠️") and "State must be" in look["view"]


# --- the handlers wire builds -----------------------------------------------------------
def test_the_wired_unit_view_shows_a_unit_and_refuses_with_a_toast(ctx, tab):
    show = wired(tab, tab.view)
    assert show("tiny", TEXT, "hidden", 1, 3) == unit_view(ctx, "tiny", TEXT, "hidden", 1, 3)
    with pytest.raises(gr.Error, match="Unit must be a whole number from 0 to 15"):
        show("tiny", TEXT, "hidden", 1, 16)
    with pytest.warns(UserWarning, match="does not know 'é'"):
        show("tiny", "the café", "hidden", 1, 3)


def test_the_wired_suggestions_and_first_look(ctx, tab):
    suggest = wired(tab, tab.suggestions, tab.unit, tab.view, tab.suggested)
    listed = suggest("tiny", TEXT, "cell", 1, [])
    by_name = {name: getattr(tab, name) for name in FIRST}
    assert listed == {by_name[k]: v for k, v in inside_tab.suggest_and_show(ctx, "tiny", TEXT, "cell", 1).items()}
    assert "same units again" in suggest("tiny", TEXT, "cell", 1, listed[tab.suggested])[tab.view]   # pressed again
    with pytest.raises(gr.Error, match="No checkpoint chosen"):
        suggest(None, TEXT, "cell", 1, [])
    first = wired(tab, tab.shown, tab.suggestions, tab.unit, tab.view, tab.suggested)
    look = inside_tab.first_look(ctx, False, "tiny", TEXT, "cell", 1)
    assert first(False, "tiny", TEXT, "cell", 1) == {by_name[k]: v for k, v in look.items()}
    assert wired(tab, tab.kind, tab.unit) is inside_tab.pick_suggestion


def test_the_tab_opens_on_the_shakespeare_passage(tmp_path):
    shipped = built(AppContext(Settings(root=tmp_path)))             # the bundled corpora of the project
    assert shipped.text.value == shipped.passage and len(shipped.passage) > 1000 and shipped.passage.endswith("\n")
    assert built(AppContext(app_settings(tmp_path))).text.value == ""  # no corpus there: an empty box, no error


def test_choosing_another_model_gives_the_tab_its_own_passage_and_a_fresh_first_look(ctx, tab):
    own = "".join(f"my own line {i}\n" for i in range(50))
    (ctx.settings.root / "tiny" / "corpus.txt").write_text(own, encoding="utf-8")
    follow = wired(tab, tab.text, tab.passage_btn, tab.shown, tab.model_md)
    text, button, shown, line = follow("tiny")
    assert text == own and button["value"] == "A passage of tiny" and shown is False and "tiny" in line


def test_a_model_whose_text_is_not_here_reads_a_passage_it_wrote_and_the_tab_says_why(ctx, tab):
    follow = wired(tab, tab.text, tab.passage_btn, tab.shown, tab.model_md)   # "tiny": no corpus.txt, no tiny.txt
    text, button, _, line = follow("tiny")
    assert text == model_passage(ctx.settings, ctx.models, "tiny")[0] and set(text) <= set(corpus_text())
    assert "ROMEO" not in text and button["value"] == "A passage it wrote"
    assert "Model: **tiny**. Its training text is not on this server" in line


def test_the_terms_of_the_tab_have_plain_english_hints(tab):
    assert "h = o * tanh(c)" in tab.kind.info and "memory squashed to -1..1" in tab.kind.info
    assert "how closely the unit follows the feature" in tab.suggestions.info and "-1 to +1" in tab.suggestions.info
    assert "charrnn-view" in tab.view.elem_classes                           # drawn by webui/style.py in either theme
