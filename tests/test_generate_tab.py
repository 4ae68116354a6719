"""The Generate tab's gradio-facing helpers (webui.generate_tab), called in-process: the prime feeding the chart,
the confidence colouring after a generation or a Stop, the checkpoint line, and the handlers ``wire`` builds
(/generate streaming its text then a record, the chart showing problems inline, side by side refusing with a toast);
the text a page generation sends back (no probabilities), what the page colours with; Delete offered only where it can
work, refused at the first click in plain words, /delete_run refusing with errors."""
from __future__ import annotations

import inspect
import shutil
import time
import zipfile

import gradio as gr
import pytest
from app_fixtures import corpus_text, is_prefix_chain, make_checkpoint, model_of, tiny_context, wired
from html_reading import columns

from charrnn.runs.store import RunDir
from charrnn.sample import generate_with_probs
from webui.colours import confidence_colour, ink_for
from webui.generate import tab as generate_tab
from webui.generate.browser import record_chars
from webui.generate.generation import SIDE_TEMPERATURES, compare_temperatures, generation_stream, next_char
from webui.generate.view import GENERATING, STOPPED, confidence_html, confidence_legend, page_views
from webui.models import BUNDLED_KEY
from webui.owners import WrongKeys
from webui.passages import model_prime
from webui.prime import DEFAULT_PRIME


@pytest.fixture
def ctx(tmp_path):
    return tiny_context(tmp_path)


@pytest.fixture
def tab(ctx):
    """The tab's components, built and wired in a Blocks as the demo does."""
    with gr.Blocks() as demo:
        g = generate_tab.build(ctx)
        g.key = gr.BrowserState(None)          # the demo makes one per page (webui.owners)
        generate_tab.wire(ctx, g)
    g.demo = demo
    return g


def record_of(ctx, prime="the ", temperature=0.8, length=120, top_k=0, seed=4, key="tiny"):
    *_, gen = generation_stream(ctx, key, prime, temperature, length, top_k, seed)
    return gen.record(temperature, top_k)


# --- the prime feeds the chart ------------------------------------------------------------
def test_editing_the_prime_points_the_chart_at_its_end():
    text, position = generate_tab.read_prime("ROMEO:")
    assert text == "ROMEO:" and position["value"] == 6 and position["maximum"] == 6
    assert generate_tab.read_prime("")[1]["maximum"] == 1 and generate_tab.read_prime("")[1]["value"] == 0
    assert generate_tab.read_prime(None)[0] == ""


def test_the_prime_box_is_wired_to_read_prime(tab):
    assert wired(tab, tab.reading, tab.position) is generate_tab.read_prime


# --- the prime follows the chosen model --------------------------------------------------
OWN = "".join(f"whiskers {i} and the cat\n" for i in range(60))


def test_choosing_a_model_sets_the_prime_to_the_start_of_a_line_of_its_own_text(ctx, tab):
    (ctx.settings.root / "tiny" / "corpus.txt").write_text(OWN, encoding="utf-8")
    follow = wired(tab, tab.prime, tab.default_prime)
    prime, suggested = follow("tiny", DEFAULT_PRIME, DEFAULT_PRIME)         # the page's first prime, unedited
    assert prime == suggested == model_prime(ctx.settings, ctx.models, "tiny") and prime.startswith("whiskers 0 ")
    assert follow(BUNDLED_KEY, prime, suggested) == (DEFAULT_PRIME, DEFAULT_PRIME)   # and back: ROMEO
    assert tab.prime.value == tab.default_prime.value == DEFAULT_PRIME


def test_a_model_whose_text_is_not_here_gets_a_prime_it_wrote_itself_not_an_empty_one(ctx, tab):
    follow = wired(tab, tab.prime, tab.default_prime)                       # "tiny": its corpus is not here
    prime, suggested = follow("tiny", DEFAULT_PRIME, DEFAULT_PRIME)
    assert prime == suggested == model_prime(ctx.settings, ctx.models, "tiny") != ""
    assert set(prime) <= set(corpus_text()) and len(prime) <= 16 and prime != DEFAULT_PRIME


def test_a_prime_the_visitor_edited_is_kept_when_the_model_changes(ctx):
    (ctx.settings.root / "tiny" / "corpus.txt").write_text(OWN, encoding="utf-8")
    assert generate_tab.follow_prime(ctx, "tiny", "my own words", DEFAULT_PRIME) == (gr.skip(), gr.skip())
    assert generate_tab.follow_prime(ctx, "tiny", "", DEFAULT_PRIME) == (gr.skip(), gr.skip())


# --- the chart: problems are drawn in place, not raised --------------------------------
@pytest.mark.parametrize("key, temperature, message", [
    (None, 0.8, "No checkpoint chosen"),
    ("nope", 0.8, "no such checkpoint"),
    ("tiny", 3.0, "Temperature must be a number from 0 to 2"),
    ("tiny", float("nan"), "Temperature must be"),
])
def test_chart_problems_are_shown_as_messages_not_raised(tab, key, temperature, message):
    plot, line = wired(tab, tab.dist_plot, tab.dist_line)(key, "the ", 4, temperature)
    assert plot == gr.skip() and line.startswith("<p>⚠️") and message in line


def test_the_wired_chart_draws_the_next_character(ctx, tab):
    frame, line = wired(tab, tab.dist_plot, tab.dist_line)("tiny", "the cat", 7, 0.5)
    expected_frame, expected_line = next_char(ctx, "tiny", "the cat", 7, 0.5)
    assert frame.equals(expected_frame) and line == expected_line


# --- /generate: the text streams, then a record of each character's probability ----------
def test_generation_streams_text_then_records_each_characters_probability(ctx, tab):
    updates = list(wired(tab, tab.output, tab.record)("tiny", "the ", 0.8, 120, 0, 4))
    texts = [text for text, _ in updates]
    assert is_prefix_chain(texts) and texts[0] == "the " and len(texts[-1]) == 4 + 120
    assert len(updates) >= 2
    assert all(record == gr.skip() for _, record in updates[:-1])
    record = updates[-1][1]
    model, vocab = model_of(ctx)
    expected = list(generate_with_probs(model, vocab, "the ", 120, 0.8, seed=4))
    assert record["text"] == texts[-1] and record["start"] == 4
    assert record["probs"] == [p for _, p in expected] and record["temperature"] == 0.8


def test_generate_refuses_with_a_toast_and_warns_about_unknown_prime_characters(ctx, tab):
    generate = wired(tab, tab.output, tab.record)
    with pytest.raises(gr.Error, match="Length must be"):
        list(generate("tiny", "the ", 0.8, 0, 0, 4))
    with pytest.warns(UserWarning, match="does not know 'é'"):
        updates = list(generate("tiny", "the café", 0.8, 10, 0, 4))
    assert updates[0][0] == "the cafe" and updates[-1][1]["start"] == len("the cafe")
    shutil.rmtree(ctx.settings.root / "tiny")
    with pytest.raises(gr.Error, match="No checkpoint chosen"):
        list(generate(None, "the ", 0.8, 10, 0, 4))                # no checkpoint at all (and no bundled one)


def test_generate_without_a_checkpoint_uses_the_latest_one(ctx, tab):
    generate = wired(tab, tab.output, tab.record)
    time.sleep(0.01)                                               # distinct file times: "latest" has an order
    make_checkpoint(ctx.settings.root / "newer", corpus_text(), seed=3)
    latest = [text for text, _ in generate("newer", "the ", 0.8, 60, 0, 4)][-1]
    assert latest != [text for text, _ in generate("tiny", "the ", 0.8, 60, 0, 4)][-1]
    for none in (None, ""):
        assert [text for text, _ in generate(none, "the ", 0.8, 60, 0, 4)][-1] == latest


def test_generate_takes_the_checkpoint_as_an_optional_api_parameter(tab):
    """gradio_client callers may leave the checkpoint out: its parameter has a default (None: the latest)."""
    params = inspect.signature(wired(tab, tab.output, tab.record)).parameters
    assert list(params) == list(generate_tab.GENERATE_INPUTS) and params["checkpoint"].default is None


def test_a_refused_generation_records_why_before_the_toast(tab):
    generate = wired(tab, tab.output, tab.record)
    updates = []
    with pytest.raises(gr.Error, match="at most 10,000 characters"):
        for update in generate("tiny", "a" * 10_001, 0.8, 10, 0, 4):
            updates.append(update)
    assert updates == [(gr.skip(), {"refused": "The prime must be text of at most 10,000 characters."})]
    assert generate_tab.after_generation(updates[0][1]) == (gr.skip(),) * 3


def test_a_refused_generation_leaves_the_output_as_it_was_and_says_nothing_was_generated(tab):
    refused = {"refused": "The prime must be text of at most 10,000 characters."}
    output, confidence = wired(tab, tab.output, tab.confidence)("the text from before", refused)
    assert output == "the text from before" and "Generating" not in confidence
    assert confidence.startswith("<p><em>Nothing generated: The prime must be text of at most 10,000 characters.")
    assert generate_tab.refused_generation(None, refused)[0] == ""


def test_a_stopped_generation_keeps_what_stop_wrote(tab):
    """Gradio runs the failure listener after a cancelled event too: there is no refusal then."""
    assert generate_tab.refused_generation("the te", None) == ("the te", gr.skip())
    (refused,) = [f for f in tab.demo.fns.values() if f.fn is generate_tab.refused_generation]
    (generate,) = [f for f in tab.demo.fns.values() if f.api_name == "generate"]
    assert refused.trigger_after == generate._id and refused.trigger_only_on_failure     # only after a refusal


def test_the_temperature_and_the_views_explain_themselves(tab):
    info = tab.temperature.info
    assert "scores (logits) are divided by T before the softmax" in info and "0 = always the likeliest" in info
    assert "changes from the first pick that differs" in info and "keeps the start" not in info    # what it does
    assert len(info) < 240                                                   # three lines on a desktop, not nine
    for view in (tab.confidence, tab.compare_html, tab.dist_line):
        assert "charrnn-view" in view.elem_classes                       # drawn by webui/style.py in either theme


# --- confidence colouring after a generation, or after Stop -------------------------------
def test_confidence_matches_the_chart_at_the_same_temperature(ctx):
    record = record_of(ctx, temperature=0.7)
    confidence, reading, position = generate_tab.after_generation(record)
    assert confidence == confidence_html(record)
    assert reading == record["text"] and position["value"] == record["start"]
    assert position["maximum"] == len(record["text"])
    _, line = next_char(ctx, "tiny", reading, position["value"], 0.7)
    assert f"p = {record['probs'][0]:.3f} here" in line       # the first character's p, seen from the chart


def test_without_a_record_nothing_changes_after_a_generation(ctx):
    assert generate_tab.after_generation(None) == (gr.skip(),) * 3
    assert "greedily" in generate_tab.after_generation(record_of(ctx, temperature=0, length=20))[0]


def test_stop_says_why_there_are_no_colours_unless_the_generation_had_ended(ctx):
    assert "Stopped" in generate_tab.stopped_confidence(None)
    assert generate_tab.stopped_confidence(record_of(ctx, length=10)) == gr.skip()


# --- the checkpoint line --------------------------------------------------------------
def test_checkpoint_is_described_from_its_header(ctx):
    make_checkpoint(ctx.settings.root / "described", corpus_text(), step=1234)
    line = generate_tab.describe_checkpoint(ctx, "described")
    assert "tiny.txt" in line and "1,234 steps" in line and "validation loss 2.500" in line
    assert "parameters" in line


def test_a_missing_or_broken_checkpoint_is_described_as_a_warning(ctx):
    (ctx.settings.root / "broken").mkdir(parents=True)
    (ctx.settings.root / "broken" / RunDir.WEIGHTS).write_bytes(b"not a safetensors file")
    broken = generate_tab.describe_checkpoint(ctx, "broken")
    assert broken.startswith("⚠️") and "not a readable safetensors file" in broken
    assert generate_tab.describe_checkpoint(ctx, "../etc").startswith("⚠️")
    assert "invalid run name" in generate_tab.describe_checkpoint(ctx, "../etc")
    assert "no such checkpoint" in generate_tab.describe_checkpoint(ctx, "nope")
    assert "No checkpoint yet" in generate_tab.describe_checkpoint(ctx, None)


def test_the_picker_is_wired_to_describe_checkpoint(ctx, tab):
    assert wired(tab, tab.checkpoint_md)("tiny") == generate_tab.describe_checkpoint(ctx, "tiny")


# --- temperatures side by side ----------------------------------------------------------
def test_side_by_side_shows_every_temperature_and_refuses_with_a_toast(ctx, tab):
    compare = wired(tab, tab.compare_html)
    markup = compare("tiny", "the ", 5, 0)
    assert markup == compare_temperatures(ctx, "tiny", "the ", 5)
    assert list(columns(markup)) == [f"{t:g}" for t in SIDE_TEMPERATURES]
    assert compare("tiny", "the ", 5, 3) == compare_temperatures(ctx, "tiny", "the ", 5, top_k=3)   # the Top-k box
    with pytest.raises(gr.Error, match="Seed must be"):
        compare("tiny", "the ", -3, 0)
    with pytest.raises(gr.Error, match="No checkpoint chosen"):
        compare(None, "the ", 1, 0)


# --- take your model with you: download, add back, delete ------------------------------------
def api_fn(tab, name: str):
    fns = [f.fn for f in tab.demo.fns.values() if f.api_name == name]
    assert len(fns) == 1, name
    return fns[0]


def test_list_checkpoints_is_an_endpoint_with_each_checkpoints_summary(ctx, tab):
    listed = api_fn(tab, "list_checkpoints")()
    assert [(c["key"], c["default"], c["steps"], c["val_loss"]) for c in listed] == [("tiny", True, 10, 2.5)]


def test_download_gives_the_zip_and_the_model_file_of_the_chosen_or_latest_run(ctx, tab):
    download = api_fn(tab, "download_run")
    for key in ("tiny", None):
        archive, model = download(key)
        assert archive.endswith("/tiny.zip") and model.endswith("/tiny.safetensors")
        assert "tiny/model.safetensors" in zipfile.ZipFile(archive).namelist()
    with pytest.raises(gr.Error, match="invalid run name"):
        download("../x")


def test_a_downloaded_model_is_deleted_then_added_back_through_the_tab(ctx, tab):
    before = [text for text, _ in wired(tab, tab.output, tab.record)("tiny", "the ", 0.8, 60, 0, 4)][-1]
    _, model = api_fn(tab, "download_run")("tiny")
    button, pending, message = generate_tab.ask_to_delete(ctx, "tiny", None, None)
    assert button["visible"] and button["value"] == "Yes, delete tiny" and pending == "tiny" and "**tiny**" in message
    assert (ctx.settings.root / "tiny").is_dir()                   # asking deletes nothing
    assert "Deleted **tiny**" in api_fn(tab, "delete_run")(None, pending)
    assert not (ctx.settings.root / "tiny").exists()
    assert "Added **tiny**" in api_fn(tab, "add_model")(None, model, "")
    assert [text for text, _ in wired(tab, tab.output, tab.record)("tiny", "the ", 0.8, 60, 0, 4)][-1] == before
    with pytest.raises(gr.Error, match="is not a .safetensors file"):
        api_fn(tab, "add_model")(None, __file__, "")


def test_delete_asks_for_a_chosen_run(ctx):
    button, pending, message = generate_tab.ask_to_delete(ctx, None, None, None)
    assert not button["visible"] and pending == "" and "No run chosen" in message
    hostile = generate_tab.ask_to_delete(ctx, "<b>", None, None)[2]
    assert "invalid run name" in hostile and "&lt;b" in hostile and "<b>" not in hostile
    button, pending, message = generate_tab.ask_to_delete(ctx, BUNDLED_KEY, None, None)
    assert not button["visible"] and pending == "" and "bundled model cannot be deleted" in message


def owned_context(tmp_path, **fields):
    """A context whose run "mine" belongs to the browser key "key-a" (and "tiny" to nobody: the operator's)."""
    from webui.owners import record_owner
    ctx = tiny_context(tmp_path, **fields)
    make_checkpoint(ctx.settings.root / "mine", corpus_text())
    record_owner(ctx.settings.root / "mine", "key-a")
    return ctx


def test_delete_is_offered_only_where_it_can_work(tmp_path):
    ctx = owned_context(tmp_path)
    offered = lambda key, owner: generate_tab.deletable(ctx.settings, key, owner)    # noqa: E731
    assert offered("mine", "key-a") and offered("tiny", "key-a") and offered("tiny", None)   # its owner; no owner
    assert not offered("mine", "key-b") and not offered("mine", None)                # another visitor's run
    assert not offered(BUNDLED_KEY, "key-a") and not offered(None, "key-a") and not offered("gone", "key-a")
    assert not offered("../x", "key-a")
    locked = owned_context(tmp_path / "locked", password="sesame")
    assert generate_tab.deletable(locked.settings, "mine", "key-b")                  # the password controls every run
    assert not generate_tab.deletable(locked.settings, BUNDLED_KEY, "key-b")


def test_runs_not_offered_for_delete_are_counted_so_keys_cannot_be_tried_through_the_button(tmp_path):
    ctx = owned_context(tmp_path)
    counted = WrongKeys(most=3, window_s=3600.0)
    offered = lambda key, owner, who: generate_tab.deletable(ctx.settings, key, owner, counted, who)   # noqa: E731
    assert offered("mine", "key-a", "visitor-1")                                     # its owner: not counted
    assert [offered("mine", guess, "visitor-1") for guess in ("g1", "g2", "g3")] == [False] * 3
    assert not offered("mine", "key-a", "visitor-1")           # past the limit the right key shows nothing either
    assert offered("tiny", None, "visitor-1")                  # a run with no owner asks for no key
    assert offered("mine", "key-a", "visitor-2")                                     # others are not held back
    assert ctx.not_offered.most >= 100                         # the app's limit leaves room to browse others' runs


def test_the_picker_and_the_key_decide_whether_delete_is_shown(tmp_path):
    ctx = owned_context(tmp_path)
    with gr.Blocks() as demo:
        g = generate_tab.build(ctx)
        g.key = gr.BrowserState(None)
        generate_tab.wire(ctx, g)
    g.demo = demo
    assert g.delete_btn.visible is False                                             # nothing chosen yet
    offer = wired(g, g.delete_btn, g.confirm_delete_btn, g.pending_delete)
    shown, confirm, pending = offer("mine", "key-a")
    assert shown["visible"] and not confirm["visible"] and pending == ""            # a pending question is dropped
    assert not offer("mine", "key-b")[0]["visible"] and not offer(BUNDLED_KEY, "key-a")[0]["visible"]
    triggers = {(t[0], t[1]) for f in demo.fns.values() if f.fn is offer for t in f.targets}
    assert triggers == {(g.checkpoint._id, "change"), (g.key._id, "change")}


def test_delete_refused_at_the_first_click_says_why_in_plain_words(tmp_path):
    ctx = owned_context(tmp_path)
    button, pending, message = generate_tab.ask_to_delete(ctx, "mine", "key-b", None)
    assert not button["visible"] and pending == ""
    assert message.startswith("⚠️ Only the browser that started or added mine can delete it") and "**" not in message
    locked = owned_context(tmp_path / "locked", password="sesame")
    button, pending, message = generate_tab.ask_to_delete(locked, "mine", "key-b", "wrong")
    assert not button["visible"] and "need the password" in message and "**" not in message
    assert generate_tab.ask_to_delete(locked, "mine", "key-b", "sesame")[0]["visible"]


def test_delete_refuses_a_run_that_is_training_at_the_first_click(tmp_path):
    from app_fixtures import fake_trainer_running
    ctx = tiny_context(tmp_path)
    with fake_trainer_running(ctx.settings.root, "busy"):
        button, pending, message = generate_tab.ask_to_delete(ctx, "busy", None, None)
    assert not button["visible"] and pending == "" and "busy is training: press Stop" in message


def test_a_refused_confirmation_is_a_plain_line_not_an_error(tmp_path):
    ctx = owned_context(tmp_path)
    message, button, pending = generate_tab.confirm_delete(ctx, None, "mine", "key-b")   # e.g. the picker raced it
    assert message.startswith("⚠️ Only the browser that started or added mine can delete it") and "**" not in message
    assert "Nothing was deleted" in message and not button["visible"] and pending == ""
    assert (ctx.settings.root / "mine").is_dir()
    message, button, _ = generate_tab.confirm_delete(ctx, None, "mine", "key-a")
    assert "Deleted **mine**" in message and not button["visible"] and not (ctx.settings.root / "mine").exists()


def test_the_delete_api_refuses_with_an_error_and_is_not_the_pages_button(tmp_path):
    ctx = owned_context(tmp_path)
    with gr.Blocks() as demo:
        g = generate_tab.build(ctx)
        g.key = gr.BrowserState(None)
        generate_tab.wire(ctx, g)
    g.demo = demo
    delete = api_fn(g, "delete_run")
    assert list(inspect.signature(delete).parameters) == ["password", "run", "key", "request"]
    assert [name for name, *_ in gr.utils.get_function_params(delete)] == ["password", "run", "key"]   # the API's
    with pytest.raises(gr.Error, match="can delete it"):
        delete(None, "mine", "key-b")
    (api,) = [f for f in demo.fns.values() if f.api_name == "delete_run"]
    assert not api.targets                                       # called by API clients; the page's button is private
    assert "Deleted **mine**" in delete(run="mine", key="key-a")


# --- generation in the page: the record it sends back, and the copies behind it ------------------------------
def test_a_record_from_the_page_is_checked_before_the_chart_reads_it():
    import json

    from webui.generate.tab import after_browser_generation, browser_record
    good = {"text": "ab cd", "start": 2, "temperature": 0.8, "top_k": None, "n": 3}
    assert browser_record(json.dumps(good)) == {"text": "ab cd", "start": 2, "temperature": 0.8, "top_k": None}
    for bad in ({**good, "start": 9}, {**good, "start": -1}, {**good, "start": True}, {**good, "text": 5}, [1, 2]):
        assert browser_record(json.dumps(bad)) is None
    assert browser_record("{not json") is None and browser_record(None) is None
    reading, position, record = after_browser_generation(json.dumps(good))
    assert reading == "ab cd" and position["value"] == 2 and position["maximum"] == 5 and record["start"] == 2
    assert after_browser_generation("{not json") == (gr.skip(),) * 3


def test_the_page_is_handed_what_the_server_colours_with():
    views = page_views()
    assert len(views["colours"]) == len(views["inks"]) == 121
    for p in (0, 0.013, 0.5, 0.99, 1):                               # the page's hue rule picks the server's colour
        colour = views["colours"][round(120 * p)]
        assert colour == confidence_colour(p) and views["inks"][round(120 * p)] == ink_for(colour)
    assert views["legend"] == confidence_legend() and views["readable"]["\n"] == "⏎" and "Cc" in views["invisible"]
    assert views["generating"] == GENERATING and views["stopped"] == STOPPED


def test_the_text_a_page_sends_back_fits_the_request_cap_whatever_it_holds():
    from webui.generate.browser import RECORD_BYTES_PER_CHAR, RECORD_ROOM
    from webui.settings import Settings
    settings = Settings(root=".")
    chars = record_chars(settings)
    assert chars >= 1000 + settings.max_length                       # a 1,000-character prime end and the longest text
    import json
    worst = json.dumps({"data": [json.dumps({"text": "\x01" * chars, "start": 1000})]}, ensure_ascii=False)
    assert len(worst.encode()) <= chars * RECORD_BYTES_PER_CHAR + RECORD_ROOM <= settings.max_event_body


def test_every_complete_checkpoint_gets_a_copy_and_a_training_or_too_big_one_says_why(tmp_path):
    import json

    from app_fixtures import fake_trainer_running

    from webui.generate.browser import sync_copies
    from webui.settings import Settings
    make_checkpoint(tmp_path / "done", corpus_text())
    with fake_trainer_running(tmp_path, "busy") as proc:
        make_checkpoint(tmp_path / "busy", corpus_text(), seed=1)
        RunDir(tmp_path / "busy").write_status("running", pid=proc.pid)
        index = sync_copies(Settings(root=tmp_path), {})
    assert index["done"]["copy"] and (tmp_path / ".browser" / f"{index['done']['copy']}.bin").is_file()
    assert index["busy"]["copy"] is None and "training" in index["busy"]["why"]
    assert json.loads((tmp_path / ".browser" / "index.json").read_text()) == index
    small = sync_copies(Settings(root=tmp_path, max_browser_bytes=100), {})
    assert small["done"]["copy"] is None and "too big" in small["done"]["why"]
    assert not list((tmp_path / ".browser").glob("*.bin"))            # the unused copy is gone


def copies_client(tmp_path):
    """A client of the browser copies' route alone, over a checkpoints folder with the run "done" synced; and the
    index the sync wrote."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from webui.generate.browser import copies_route, sync_copies
    from webui.settings import Settings
    make_checkpoint(tmp_path / "done", corpus_text())
    settings = Settings(root=tmp_path)
    return TestClient(Starlette(routes=[copies_route(settings)])), sync_copies(settings, {}), settings


def test_the_copies_route_serves_the_index_fresh_and_each_copy_for_good(tmp_path):
    from webui.generate import webcopy
    client, index, settings = copies_client(tmp_path)
    listed = client.get("/charrnn/copies/index.json")
    assert listed.status_code == 200 and listed.json() == index and listed.headers["cache-control"] == "no-store"
    digest = index["done"]["copy"]
    floats = client.get(f"/charrnn/copies/{digest}.bin")
    assert floats.status_code == 200 and floats.content == (settings.browser_dir / f"{digest}.bin").read_bytes()
    assert floats.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get(f"/charrnn/copies/{digest}.json").json() == webcopy.read_copy(settings.browser_dir, digest)[0]
    head = client.head(f"/charrnn/copies/{digest}.bin")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(floats.content)


def test_the_copies_route_serves_nothing_else(tmp_path):
    client, index, settings = copies_client(tmp_path)
    folder, digest = settings.browser_dir, index["done"]["copy"]
    (folder / "notes.txt").write_text("private")
    (tmp_path / "outside.bin").write_text("private")
    (folder / ("0" * 16 + ".bin")).symlink_to(tmp_path / "outside.bin")          # a link out of the folder
    (folder / ("1" * 16 + ".json")).mkdir()                                       # not a file
    for name in ("notes.txt", "0" * 16 + ".bin", "1" * 16 + ".json", "2" * 16 + ".bin", f"{digest}.safetensors",
                 f"{digest.upper()}.bin", f"{digest}.bin.tmp", "..%2Fdone%2Fmodel.safetensors", ".%2E", "",
                 "..", "%2E%2E%2Foutside.bin"):
        reply = client.get(f"/charrnn/copies/{name}")
        assert reply.status_code == 404 and b"private" not in reply.content, name
    assert client.get("/charrnn/copies/../done/model.safetensors").status_code == 404
    assert client.post("/charrnn/copies/index.json").status_code == 405
