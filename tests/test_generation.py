"""Generation for the page (webui.generation, no gradio): streamed text with each character's probability,
unknown prime characters, temperatures side by side, and the next-character chart with its memoised logits."""
from __future__ import annotations

import itertools
import os
import re

import pytest
from app_fixtures import corpus_text, is_prefix_chain, make_checkpoint, model_of, tiny_context
from html_reading import Spans, columns, drawn_text, entropy_in

from charrnn.inside import readable
from charrnn.runs.store import RunDir
from charrnn.sample import generate_with_probs
from charrnn.vocab import Vocab
from webui.colours import confidence_colour
from webui.errors import UserError
from webui.generate import generation
from webui.generate.generation import (
    SIDE_LENGTH,
    SIDE_TEMPERATURES,
    TOP_CHARS,
    Generation,
    compare_temperatures,
    generation_stream,
    next_char,
)
from webui.generate.view import confidence_html
from webui.models import BUNDLED_KEY, resolve_checkpoint
from webui.prime import ignore, usable_prime


@pytest.fixture
def ctx(tmp_path):
    return tiny_context(tmp_path)


# --- streamed generation ------------------------------------------------------------------
def texts_of(ctx, key="tiny", prime="the ", temperature=0.8, length=100, top_k=0, seed=1, warn=None, clock=None):
    stream = generation_stream(ctx, key, prime, temperature, length, top_k, seed,
                               *([warn or ignore, clock] if clock else [warn] if warn is not None else []))
    return [gen.text for gen in stream]


def test_generation_streams_growing_text_of_the_asked_length(ctx):
    texts = texts_of(ctx, length=100)
    assert len(texts) >= 2 and is_prefix_chain(texts)
    assert texts[0] == "the " and len(texts[-1]) == 4 + 100
    assert texts_of(ctx, seed=7) == texts_of(ctx, seed=7)
    assert texts_of(ctx, seed=7) != texts_of(ctx, seed=8)


def test_the_stream_yields_the_prime_then_every_stream_seconds_then_the_end(tmp_path):
    ctx = tiny_context(tmp_path, stream_seconds=5)
    # a clock that ticks once per character: an update every 5 "seconds" is one every 5 characters
    assert [len(t) for t in texts_of(ctx, length=20, clock=itertools.count().__next__)] == [4, 9, 14, 19, 24, 24]
    assert [len(t) for t in texts_of(ctx, length=7, clock=itertools.count().__next__)] == [4, 9, 11]
    # a clock that does not move: only the prime and the end, however long the text
    assert [len(t) for t in texts_of(ctx, length=300, clock=lambda: 0.0)] == [4, 304]


def test_generation_records_each_characters_probability(ctx):
    gens = list(generation_stream(ctx, "tiny", "the ", 0.8, 120, 0, 4))
    gen = gens[-1]
    assert all(g is gen for g in gens)                           # one Generation, grown in place
    assert isinstance(gen, Generation) and gen.text == gen.prime + "".join(gen.chars) and len(gen.chars) == 120
    record = gen.record(0.8, 0)
    model, vocab = model_of(ctx)
    expected = list(generate_with_probs(model, vocab, "the ", 120, 0.8, seed=4))
    assert record["text"] == gen.text == "the " + "".join(c for c, _ in expected) and record["start"] == 4
    assert record["probs"] == [p for _, p in expected] and record["temperature"] == 0.8 and record["top_k"] is None
    assert gen.record(1, 5)["top_k"] == 5 and isinstance(gen.record(1, 5)["temperature"], float)
    assert gen.record(1.0, None)["top_k"] is None
    *_, top_k = generation_stream(ctx, "tiny", "the ", 0.8, 30, 5, 3)
    record = top_k.record(0.8, 5)
    assert len(top_k.chars) == 30 and record["start"] == 4 and record["top_k"] == 5
    assert len(record["probs"]) == 30 and all(0 < p <= 1 for p in record["probs"])


def test_each_generated_character_is_coloured_by_its_probability(ctx):
    record = list(generation_stream(ctx, "tiny", "the ", 0.8, 120, 0, 4))[-1].record(0.8, 0)
    markup = confidence_html(record)
    (spans,) = Spans(markup).boxes
    assert len(spans) == len(record["probs"]) == 120
    for (shown, style, title), ch, p in zip(spans, record["text"][4:], record["probs"], strict=True):
        assert drawn_text(shown) == ch
        assert f"background:{confidence_colour(p)}" in style and f"p = {p:.3f}" in title
    assert "surprises (p < 0.1)" in markup and "p = 0.02" in markup           # a summary and a legend


def test_generated_text_and_prime_are_escaped(ctx):
    text = corpus_text() + "<b>&amp;</b>\n"
    make_checkpoint(ctx.settings.root / "markup", text)
    record = list(generation_stream(ctx, "markup", "<b>", 0.8, 200, 0, 4))[-1].record(0.8, 0)
    markup = confidence_html(record)
    assert "&lt;b&gt;" in markup and "<b>" not in markup
    assert [drawn_text(s) for s, _, _ in Spans(markup).boxes[0]] == list(record["text"][3:])


def test_greedy_generation_says_every_character_was_the_likeliest(ctx):
    record = list(generation_stream(ctx, "tiny", "the ", 0, 20, 0, 4))[-1].record(0, 0)
    assert set(record["probs"]) == {1.0} and "greedily" in confidence_html(record)


def test_unknown_prime_characters_are_folded_or_dropped_with_a_warning(ctx):
    messages = []
    texts = texts_of(ctx, prime="the café€ ", length=20, warn=messages.append)
    assert texts[0] == "the cafe "               # é folds to e; € folds to EUR, not in the vocabulary: dropped
    assert len(messages) == 1 and "does not know 'é', '€'" in messages[0] and "the prime" in messages[0]
    quiet = []
    assert texts_of(ctx, prime="the cat ", length=5, warn=quiet.append)[0] == "the cat " and quiet == []


def test_usable_prime_warns_only_when_it_changes_the_prime():
    vocab = Vocab.from_text("abc e\n")
    messages = []
    assert usable_prime(vocab, "a bc\n", messages.append) == "a bc\n" and messages == []
    assert usable_prime(vocab, "café", messages.append, "the text") == "cae"
    assert messages == ["The model does not know 'f', 'é': transliterated to ASCII where possible, "
                        "otherwise left out of the text."]


def test_usable_prime_names_ten_unknown_characters_and_counts_the_rest_as_text():
    vocab = Vocab.from_text("ab")
    messages = []
    assert usable_prime(vocab, "a<" + "klmnopqrstuvw" + "b", messages.append) == "ab"
    (message,) = messages
    assert "'&lt;', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's' and 4 more:" in message and "<" not in message


@pytest.mark.parametrize("changes, message", [
    (dict(temperature=-0.1), "Temperature must be"),
    (dict(temperature=float("nan")), "Temperature must be"),
    (dict(temperature=2.5), "from 0 to 2"),
    (dict(temperature="hot"), "Temperature must be"),
    (dict(length=0), "Length must be a whole number from 1 to 5,000"),
    (dict(length=10**9), "Length must be"),
    (dict(length=2.5), "Length must be"),
    (dict(top_k=-1), "Top-k must be"),
    (dict(top_k=500), "Top-k must be from 1 to"),
    (dict(seed=-5), "Seed must be"),
    (dict(prime="x" * 20_000), "at most 10,000"),
    (dict(key="../../etc"), "invalid run name"),
    (dict(key="nope"), "no such checkpoint"),
    (dict(key=None), "No checkpoint chosen"),
    (dict(key=BUNDLED_KEY), "no such checkpoint"),
])
def test_bad_generation_requests_are_refused_with_a_clear_message(ctx, changes, message):
    with pytest.raises(UserError, match=message):
        texts_of(ctx, **changes)


def test_generation_limits_are_the_settings(tmp_path):
    ctx = tiny_context(tmp_path, max_length=50, max_prime=3)
    assert len(texts_of(ctx, prime="the", length=50)[-1]) == 53
    with pytest.raises(UserError, match="Length must be a whole number from 1 to 50,"):
        texts_of(ctx, prime="the", length=51)
    with pytest.raises(UserError, match="at most 3 characters"):
        texts_of(ctx, prime="the ", length=5)


def test_a_corrupt_checkpoint_is_refused_not_a_traceback(ctx):
    (ctx.settings.root / "broken").mkdir(parents=True)
    (ctx.settings.root / "broken" / RunDir.WEIGHTS).write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        texts_of(ctx, key="broken")


# --- temperatures side by side ----------------------------------------------------------
def test_side_by_side_gives_one_column_per_temperature_from_one_seed(ctx):
    markup = compare_temperatures(ctx, "tiny", "the ", 5)
    got = columns(markup)
    assert list(got) == [f"{t:g}" for t in SIDE_TEMPERATURES]
    model, vocab = model_of(ctx)
    for t in SIDE_TEMPERATURES:
        expected = "".join(c for c, _ in generate_with_probs(model, vocab, "the ", SIDE_LENGTH, t, seed=5))
        assert got[f"{t:g}"] == expected
    assert "seed (5)" in markup and compare_temperatures(ctx, "tiny", "the ", 5) == markup


def test_side_by_side_with_a_random_seed_shows_the_seed_it_drew(ctx):
    markup = compare_temperatures(ctx, "tiny", "the ", 0, length=30)
    seed = int(re.search(r"seed \((\d+)\)", markup).group(1))
    assert seed > 0 and compare_temperatures(ctx, "tiny", "the ", seed, length=30) == markup


def test_side_by_side_folds_the_prime_with_a_warning(ctx):
    messages = []
    markup = compare_temperatures(ctx, "tiny", "the café", 3, messages.append, length=10)
    assert len(messages) == 1 and "does not know 'é'" in messages[0]
    assert markup == compare_temperatures(ctx, "tiny", "the cafe", 3, length=10)


def test_side_by_side_refuses_bad_requests(ctx):
    with pytest.raises(UserError, match="Seed must be"):
        compare_temperatures(ctx, "tiny", "the ", -3)
    with pytest.raises(UserError, match="No checkpoint chosen"):
        compare_temperatures(ctx, None, "the ", 1)


# --- the next character under the temperature slider --------------------------------
def chart(ctx, text="the ", position=None, temperature=0.8, key="tiny"):
    position = len(text) if position is None else position
    return next_char(ctx, key, text, position, temperature)


def test_bars_sharpen_as_the_temperature_falls_and_the_entropy_is_shown(ctx):
    views = {t: chart(ctx, temperature=t) for t in (0.3, 1.0, 2.0)}
    tops = [views[t][0].probability.iloc[0] for t in (0.3, 1.0, 2.0)]
    assert tops[0] > tops[1] > tops[2]                                        # colder: the likeliest grows
    assert entropy_in(views[0.3][1]) < entropy_in(views[1.0][1]) < entropy_in(views[2.0][1])
    for frame, _ in views.values():
        assert len(frame) == TOP_CHARS and list(frame.probability) == sorted(frame.probability, reverse=True)
        assert str(frame.dtypes["probability"]) == "float64" and str(frame.dtypes["char"]) in ("str", "object")
    greedy, line = chart(ctx, temperature=0)
    assert greedy.probability.tolist() == [1.0]            # one bar: the rest would be labelled at random
    assert "0.00 bits" in line and "greedy" in line


def test_moving_the_temperature_only_redoes_the_softmax(ctx, monkeypatch):
    calls = []
    real = generation.next_char_logits
    monkeypatch.setattr(generation, "next_char_logits", lambda *a: calls.append(a[2]) or real(*a))
    for t in (0.2, 0.5, 0.9, 1.4):
        chart(ctx, text="the cat", temperature=t)
    assert calls == ["the cat"] and len(ctx.logits) == 1
    chart(ctx, text="the cat", position=3)
    assert calls == ["the cat", "the"] and len(ctx.logits) == 2


def test_a_rewritten_checkpoint_gets_fresh_logits(ctx, monkeypatch):
    calls = []
    real = generation.next_char_logits
    monkeypatch.setattr(generation, "next_char_logits", lambda *a: calls.append(a[2]) or real(*a))
    path = resolve_checkpoint(ctx.settings, "tiny")
    before = chart(ctx, text="the cat")
    make_checkpoint(ctx.settings.root / "tiny", corpus_text(), seed=1)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))            # a later write, whatever the clock
    after = chart(ctx, text="the cat")
    assert calls == ["the cat", "the cat"] and list(after[0].probability) != list(before[0].probability)


def test_the_chart_reads_up_to_the_position_and_names_what_came_next(ctx):
    frame, line = chart(ctx, text="the cat\nsat", position=7)
    assert "After <code>the␣cat</code> (7 characters read)" in line
    assert "goes on with <code>⏎</code>" in line and "p = " in line
    model, vocab = model_of(ctx)
    assert set(frame.char) <= {readable(c) for c in vocab.chars} and not {" ", "\n"} & set(frame.char)
    _, start = chart(ctx, text="the", position=0)
    assert "At the very start" in start and "goes on with <code>t</code>" in start


@pytest.mark.parametrize("position, read", [(-5, 0), (99, 7), (float("nan"), 7), (None, 7), (2.7, 2)])
def test_a_position_outside_the_text_is_clamped_to_it(ctx, position, read):
    _, line = next_char(ctx, "tiny", "the cat", position, 0.8)
    assert (f"({read} characters read)" in line) if read else "At the very start" in line


def test_the_chart_reads_at_most_a_prime_and_a_generation(tmp_path):
    ctx = tiny_context(tmp_path, max_prime=4, max_length=6)
    _, line = chart(ctx, text="the cat sat on the mat")
    assert "After <code>on␣the␣mat</code> (10 characters read)" in line


@pytest.mark.parametrize("key, temperature, message", [
    (None, 0.8, "No checkpoint chosen"),
    ("nope", 0.8, "no such checkpoint"),
    ("tiny", 3.0, "Temperature must be a number from 0 to 2"),
    ("tiny", float("nan"), "Temperature must be"),
])
def test_chart_problems_are_refused_with_a_message(ctx, key, temperature, message):
    with pytest.raises(UserError, match=message):
        chart(ctx, key=key, temperature=temperature)


def test_the_prime_limit_holds_after_transliteration(tmp_path):
    """A prime within the limit that folds to many times its length (U+FDFA is about 18 in ASCII) is refused,
    not read whole: 10,000 of them would be some 180,000 characters."""
    ctx = tiny_context(tmp_path, max_prime=100)
    with pytest.raises(UserError, match=r"becomes [\d,]+ characters once transliterated.*at most 100"):
        texts_of(ctx, prime="\ufdfa" * 100, length=5)
    assert len(texts_of(ctx, prime="the café", length=5)[0]) == len("the cafe")      # a fold within it is fine
