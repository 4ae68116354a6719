"""The app's 'inside the model' handlers, called in-process: the next-character chart under the temperature,
confidence colouring, temperatures side by side, a unit's activation, and the samples timeline."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import gradio as gr
import pytest
from app_fixtures import corpus_text, is_prefix_chain, make_checkpoint

import app
from charrnn import checkpoint as ck
from charrnn.inside import activations, readable
from charrnn.sample import generate_with_probs


@pytest.fixture
def settings(tmp_path):
    settings = app.Settings(root=(tmp_path / "ckpts").resolve(), bundled=tmp_path / "bundled" / "shakespeare",
                            data_dir=tmp_path / "data")
    make_checkpoint(settings.root / "tiny", corpus_text())
    return settings


@pytest.fixture
def cache():
    return app.ModelCache()


def model_of(settings, cache, key="tiny"):
    model, vocab, _ = cache.get(app.resolve_checkpoint(settings, key))
    return model, vocab


class Spans(HTMLParser):
    """The characters drawn inside each .charrnn-chars box: (character text, style, title) per titled span."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.boxes, self.depth, self.current = [], 0, None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "charrnn-chars" in (attrs.get("class") or ""):
            self.boxes.append([])
            self.depth = 1
        elif tag == "div" and self.depth:
            self.depth += 1
        elif tag == "span" and self.depth and "title" in attrs:
            self.current = ["", attrs.get("style", ""), attrs["title"]]
            self.boxes[-1].append(self.current)

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth -= 1
        elif tag == "span":
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current[0] += data


def drawn_text(span_text: str) -> str:
    """The character a span stands for (a newline is drawn as ⏎ plus the line break)."""
    return "\n" if span_text == "⏎\n" else span_text


# --- the next character under the temperature slider --------------------------------
def chart(settings, cache, memo, text="the ", position=None, temperature=0.8, key="tiny"):
    position = len(text) if position is None else position
    return app.next_char_view(settings, cache, memo, key, text, position, temperature)


def entropy_in(line: str) -> float:
    return float(re.search(r"entropy <strong>([\d.]+) bits", line).group(1))


def test_bars_sharpen_as_the_temperature_falls_and_the_entropy_is_shown(settings, cache):
    memo = app.Memo(8)
    views = {t: chart(settings, cache, memo, temperature=t) for t in (0.3, 1.0, 2.0)}
    tops = [views[t][0].probability.iloc[0] for t in (0.3, 1.0, 2.0)]
    assert tops[0] > tops[1] > tops[2]                                        # colder: the likeliest grows
    assert entropy_in(views[0.3][1]) < entropy_in(views[1.0][1]) < entropy_in(views[2.0][1])
    for frame, _ in views.values():
        assert len(frame) == app.TOP_CHARS and list(frame.probability) == sorted(frame.probability, reverse=True)
        assert str(frame.dtypes["probability"]) == "float64" and str(frame.dtypes["char"]) in ("str", "object")
    greedy, line = chart(settings, cache, memo, temperature=0)
    assert greedy.probability.iloc[0] == 1.0 and greedy.probability.iloc[1] == 0.0
    assert "0.00 bits" in line and "greedy" in line


def test_moving_the_temperature_only_redoes_the_softmax(settings, cache, monkeypatch):
    calls = []
    real = app.next_char_logits
    monkeypatch.setattr(app, "next_char_logits", lambda *a: calls.append(a[2]) or real(*a))
    memo = app.Memo(8)
    for t in (0.2, 0.5, 0.9, 1.4):
        chart(settings, cache, memo, text="the cat", temperature=t)
    assert calls == ["the cat"] and len(memo.items) == 1
    chart(settings, cache, memo, text="the cat", position=3)
    assert calls == ["the cat", "the"]


def test_the_chart_reads_up_to_the_position_and_names_what_came_next(settings, cache):
    frame, line = chart(settings, cache, app.Memo(8), text="the cat\nsat", position=7)
    assert "After <code>the␣cat</code> (7 characters read)" in line
    assert "goes on with <code>⏎</code>" in line and "p = " in line
    model, vocab = model_of(settings, cache)
    assert set(frame.char) <= {readable(c) for c in vocab.chars} and not {" ", "\n"} & set(frame.char)
    _, start = chart(settings, cache, app.Memo(8), text="the", position=0)
    assert "At the very start" in start and "goes on with <code>t</code>" in start


@pytest.mark.parametrize("key, temperature, message", [
    (None, 0.8, "No checkpoint chosen"),
    ("nope", 0.8, "no such checkpoint"),
    ("tiny", 3.0, "Temperature must be a number from 0 to 2"),
    ("tiny", float("nan"), "Temperature must be"),
])
def test_chart_problems_are_shown_as_messages_not_raised(settings, cache, key, temperature, message):
    plot, line = chart(settings, cache, app.Memo(8), key=key, temperature=temperature)
    assert plot == gr.skip() and line.startswith("<p>⚠️") and message in line


def test_editing_the_prime_points_the_chart_at_its_end():
    text, position = app.read_prime("ROMEO:")
    assert text == "ROMEO:" and position["value"] == 6 and position["maximum"] == 6
    assert app.read_prime("")[1]["maximum"] == 1 and app.read_prime(None)[0] == ""


# --- confidence colouring -------------------------------------------------------------
def generated(settings, cache, prime="the ", temperature=0.8, length=120, top_k=0, seed=4, key="tiny"):
    return list(app.generate_with_confidence(settings, cache, key, prime, temperature, length, top_k, seed))


def test_generation_streams_text_then_records_each_characters_probability(settings, cache):
    updates = generated(settings, cache)
    texts = [text for text, _ in updates]
    assert is_prefix_chain(texts) and texts[0] == "the " and len(texts[-1]) == 4 + 120
    assert all(record == gr.skip() for _, record in updates[:-1])
    record = updates[-1][1]
    model, vocab = model_of(settings, cache)
    expected = list(generate_with_probs(model, vocab, "the ", 120, 0.8, seed=4))
    assert record["text"] == texts[-1] and record["start"] == 4
    assert record["probs"] == [p for _, p in expected] and record["temperature"] == 0.8


def test_each_generated_character_is_coloured_by_its_probability(settings, cache):
    record = generated(settings, cache)[-1][1]
    markup = app.confidence_html(record)
    (spans,) = Spans(markup).boxes
    assert len(spans) == len(record["probs"])
    for (shown, style, title), ch, p in zip(spans, record["text"][4:], record["probs"], strict=True):
        assert drawn_text(shown) == ch
        assert f"background:{app.confidence_colour(p)}" in style and f"p = {p:.3f}" in title
    assert app.confidence_colour(0.01) != app.confidence_colour(0.99)
    hues = [int(re.match(r"hsl\((\d+)", app.confidence_colour(p)).group(1)) for p in (0, 0.2, 0.5, 0.8, 1)]
    assert hues == sorted(hues) and hues[0] == 0 and hues[-1] == 120       # red = surprising, green = expected
    assert "surprises (p < 0.1)" in markup and "p = 0.02" in markup           # a summary and a legend


def test_confidence_matches_the_chart_at_the_same_temperature(settings, cache):
    record = generated(settings, cache, temperature=0.7)[-1][1]
    confidence, reading, position = app.after_generation(record)
    assert reading == record["text"] and position["value"] == record["start"]
    assert position["maximum"] == len(record["text"])
    _, line = chart(settings, cache, app.Memo(8), text=reading, position=position["value"], temperature=0.7)
    assert f"p = {record['probs'][0]:.3f} here" in line       # the first character's p, seen from the chart


def test_generated_text_and_prime_are_escaped(settings, cache):
    text = corpus_text() + "<b>&amp;</b>\n"
    make_checkpoint(settings.root / "markup", text)
    record = generated(settings, cache, prime="<b>", key="markup", length=200)[-1][1]
    markup = app.confidence_html(record)
    assert "&lt;b&gt;" in markup and "<b>" not in markup
    assert [drawn_text(s) for s, _, _ in Spans(markup).boxes[0]] == list(record["text"][3:])


def test_greedy_generation_says_every_character_was_the_likeliest(settings, cache):
    record = generated(settings, cache, temperature=0, length=20)[-1][1]
    assert set(record["probs"]) == {1.0} and "greedily" in app.confidence_html(record)
    assert app.after_generation(None) == (gr.skip(),) * 3


def test_stop_says_why_there_are_no_colours_unless_the_generation_had_ended(settings, cache):
    assert "Stopped" in app.stopped_confidence(None)
    assert app.stopped_confidence(generated(settings, cache, length=10)[-1][1]) == gr.skip()


# --- temperatures side by side ----------------------------------------------------------
def columns(markup: str) -> dict[str, str]:
    temps = re.findall(r"data-temperature='([\d.]+)'", markup)
    texts = ["".join(drawn_text(s) for s, _, _ in box) for box in Spans(markup).boxes]
    return dict(zip(temps, texts, strict=True))


def test_side_by_side_gives_one_column_per_temperature_from_one_seed(settings, cache):
    markup = app.compare_temperatures(settings, cache, "tiny", "the ", 5)
    got = columns(markup)
    assert list(got) == [f"{t:g}" for t in app.SIDE_TEMPERATURES]
    model, vocab = model_of(settings, cache)
    for t in app.SIDE_TEMPERATURES:
        expected = "".join(c for c, _ in generate_with_probs(model, vocab, "the ", app.SIDE_LENGTH, t, seed=5))
        assert got[f"{t:g}"] == expected
    assert "seed (5)" in markup and app.compare_temperatures(settings, cache, "tiny", "the ", 5) == markup


def test_side_by_side_with_a_random_seed_shows_the_seed_it_drew(settings, cache):
    markup = app.compare_temperatures(settings, cache, "tiny", "the ", 0, length=30)
    seed = int(re.search(r"seed \((\d+)\)", markup).group(1))
    assert seed > 0 and app.compare_temperatures(settings, cache, "tiny", "the ", seed, length=30) == markup


def test_side_by_side_refuses_bad_requests(settings, cache):
    with pytest.raises(gr.Error, match="Seed must be"):
        app.compare_temperatures(settings, cache, "tiny", "the ", -3)
    with pytest.raises(gr.Error, match="No checkpoint chosen"):
        app.compare_temperatures(settings, cache, None, "the ", 1)


# --- a unit's activation ------------------------------------------------------------------
def unit(settings, cache, memo=None, text="the cat\nsat on", kind="hidden", layer=1, number=3, key="tiny"):
    return app.unit_view(settings, cache, memo or app.Memo(4), key, text, kind, layer, number)


def test_unit_colouring_has_one_span_per_character_coloured_by_its_value(settings, cache):
    text = "the cat\nsat on"
    markup = unit(settings, cache, text=text)
    (spans,) = Spans(markup).boxes
    assert "".join(drawn_text(s) for s, _, _ in spans) == text
    model, vocab = model_of(settings, cache)
    values = activations(model, vocab, text)["hidden"][:, 3].tolist()
    for (_, style, title), v in zip(spans, values, strict=True):
        assert f"background:{app.activation_colour(v, 1.0)}" in style and f"{v:+.3f}" in title
    assert "hidden unit 3</strong> of layer 1" in markup


def test_activation_colours_run_from_blue_through_white_to_red():
    assert app.activation_colour(-1, 1) == "rgb(0,0,255)"
    assert app.activation_colour(0, 1) == "rgb(255,255,255)"
    assert app.activation_colour(5, 2) == "rgb(255,0,0)"           # saturates beyond the scale


def test_cell_values_are_scaled_to_what_they_reach(settings, cache):
    markup = unit(settings, cache, kind="cell", number=0)
    model, vocab = model_of(settings, cache)
    values = activations(model, vocab, "the cat\nsat on")["cell"][:, 0].tolist()
    scale = max(1.0, *(abs(v) for v in values))
    styles = [style for _, style, _ in Spans(markup).boxes[0]]
    assert styles == [f"background:{app.activation_colour(v, scale)}" for v in values]


def test_activations_are_memoised_per_checkpoint_text_and_layer(settings, cache):
    memo = app.Memo(4)
    unit(settings, cache, memo, number=1)
    unit(settings, cache, memo, number=2, kind="cell")
    assert len(memo.items) == 1
    unit(settings, cache, memo, text="sat on the mat")
    assert len(memo.items) == 2


def test_long_texts_are_capped_and_unknown_characters_warned(settings, cache):
    long = (corpus_text() * 2)[:app.MAX_INSIDE_CHARS + 500]
    markup = unit(settings, cache, text=long)
    assert len(Spans(markup).boxes[0]) == app.MAX_INSIDE_CHARS and "first 3,000 characters" in markup
    with pytest.warns(UserWarning, match="does not know 'é'"):
        markup = unit(settings, cache, text="the café")
    assert "".join(drawn_text(s) for s, _, _ in Spans(markup).boxes[0]) == "the cafe"


@pytest.mark.filterwarnings("ignore:The model does not know")
@pytest.mark.parametrize("changes, message", [
    (dict(number=16), "Unit must be a whole number from 0 to 15"),
    (dict(number=-1), "Unit must be"),
    (dict(number=None), "Unit must be"),
    (dict(number=2.5), "Unit must be"),
    (dict(layer=2), "Layer must be a whole number from 1 to 1"),
    (dict(kind="forget"), "State must be 'cell' or 'hidden'"),
    (dict(text=""), "Give the model some text"),
    (dict(text="   \n"), "Give the model some text"),
    (dict(text=None), "Give the model some text"),
    (dict(text="XYZ!"), "knows none of the text's characters"),
    (dict(key=None), "No checkpoint chosen"),
])
def test_bad_unit_requests_are_refused_with_a_message(settings, cache, changes, message):
    with pytest.raises(gr.Error, match=message):
        unit(settings, cache, **changes)


def test_suggestions_name_units_and_picking_one_sets_the_controls(settings, cache):
    text = corpus_text(40)
    radio, best, markup = app.suggest_and_show(settings, cache, app.Memo(4), "tiny", text, "cell", 1)
    features = [label.split(": ", 1)[1].split(" (r =")[0] for label, _ in radio["choices"]]
    assert set(features) == {"position in line", "after a newline"}     # the other features do not vary here
    assert radio["value"] == radio["choices"][0][1]
    assert app.pick_suggestion(radio["value"]) == ("cell", best)
    assert f"cell unit {best}</strong>" in markup
    assert app.pick_suggestion("nonsense") == (gr.skip(), gr.skip())


def test_the_tab_suggests_and_shows_a_unit_once(settings, cache):
    memo = app.Memo(4)
    shown, radio, best, markup = app.first_look(settings, cache, memo, False, "tiny", corpus_text(40), "cell", 1)
    assert shown is True and radio["choices"] and f"unit {best}</strong>" in markup
    assert app.first_look(settings, cache, memo, True, "tiny", "x", "cell", 1) == (gr.skip(),) * 4
    shown, _, best, markup = app.first_look(settings, cache, memo, False, None, corpus_text(40), "cell", 1)
    assert shown is True and f"unit {best}</strong>" in markup       # before the picker is filled: the newest
    empty = app.Settings(root=settings.root / "none", bundled=settings.bundled, data_dir=settings.data_dir)
    shown, *_, message = app.first_look(empty, cache, memo, False, None, "x", "cell", 1)
    assert shown is False and "⚠️" in message and "No checkpoint chosen" in message


def test_the_default_passage_is_whole_lines_with_speaker_names(tmp_path):
    passage = app.corpus_passage(app.APP_DIR / "data", *app.PASSAGE)
    assert 1000 < len(passage) <= app.PASSAGE[2] and passage.endswith("\n")
    assert re.search(r"^[A-Z][A-Z ]+:$", passage, re.MULTILINE)
    assert app.corpus_passage(tmp_path, "missing.txt", 0, 100) == ""


# --- samples over time ------------------------------------------------------------------
def write_metrics(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ck.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def sample_records(n):
    out = []
    for i in range(1, n + 1):
        out.append({"step": i * 10, "train_loss": 3.0 / i, "elapsed": float(i)})
        if i % 5 == 0:
            out[-1] |= {"val_loss": 4.0 / i, "sample": f"text <{i}> & more"}
    return out


def timeline_rows(markup: str) -> list[tuple[int, str]]:
    rows = re.findall(r"<strong>step ([\d,]+)</strong>.*?<td style='vertical-align:top'>([^<]*)", markup)
    return [(int(step.replace(",", "")), loss) for step, loss in rows]


def test_timeline_lists_a_runs_samples_with_steps_in_order_and_losses(settings):
    write_metrics(settings.root / "tiny", sample_records(50))
    markup = app.run_timeline(settings, "tiny")
    rows = timeline_rows(markup)
    assert [s for s, _ in rows] == list(range(50, 501, 50))                 # every sample, the last one included
    assert rows[0][1] == f"{4.0 / 5:.3f}" and rows[-1][1] == f"{4.0 / 50:.3f}"
    assert "&lt;5&gt; &amp; more" in markup and "<5>" not in markup
    assert "10 samples from step 50 to step 500" in markup and "0.800 → 0.080" in markup


def test_a_long_timeline_is_thinned_keeping_the_first_and_last(settings):
    write_metrics(settings.root / "tiny", sample_records(1000))
    steps = [s for s, _ in timeline_rows(app.run_timeline(settings, "tiny"))]
    assert len(steps) == app.TIMELINE_SAMPLES and steps[0] == 50 and steps[-1] == 10_000 and steps == sorted(steps)


def test_the_bundled_run_and_missing_runs_have_timelines_or_messages(settings):
    write_metrics(settings.bundled, sample_records(10))
    assert [s for s, _ in timeline_rows(app.run_timeline(settings, app.BUNDLED_KEY))] == [50, 100]
    assert "Pick a run" in app.run_timeline(settings, None)
    assert "no samples yet" in app.run_timeline(settings, "nothing-here")
    assert "⚠️" in app.run_timeline(settings, "../etc") and "invalid run name" in app.run_timeline(settings, "../etc")


def test_the_live_timeline_leaves_the_latest_sample_to_its_own_box():
    markup = app.samples_html(sample_records(50))
    assert [s for s, _ in timeline_rows(markup)] == list(range(50, 451, 50))


def test_poll_offers_the_runs_for_review_and_keeps_the_choice(settings):
    slot = app.JobSlot()
    make_checkpoint(settings.root / "other", corpus_text())
    first = app.poll(settings, slot, {}, None, None, None)
    review = first[8]
    assert {key for _, key in review["choices"]} == {"tiny", "other"} and review["value"] == first[5]["value"]
    again = app.poll(settings, slot, first[-1], first[5]["value"], None, "tiny")
    assert again[8] == gr.skip()
    make_checkpoint(settings.root / "third", corpus_text())
    third = app.poll(settings, slot, again[-1], "tiny", None, "other")
    assert third[8]["value"] == "other" and "third" in {key for _, key in third[8]["choices"]}

