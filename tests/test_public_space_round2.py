"""A public Space, second round (issue 26): refusals logged as one line, plain-text messages for toasts and API callers,
no server paths in the page, salted visitor digests, wrong keys rate-limited, pasted text bounded per visitor, and
GPU bursts counted toward the visitor's runs."""
import logging

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from gradio.routes import App

from webui.errors import UserError
from webui.glue import handler, message_of


# --- refusals: one log line, plain text ----------------------------------------------------------------------------
def served(**handlers) -> TestClient:
    """An app with one API route per handler (a text in, a text out), called as an API caller calls it."""
    with gr.Blocks() as demo:
        box, out = gr.Textbox(), gr.Textbox()
        for name, fn in handlers.items():
            gr.Button().click(fn, box, out, api_name=name)
    return TestClient(App.create_app(demo))


def refuse(name):
    raise UserError(f"Only the browser that started **{name}** can stop it; see `--help`.")


def bug(name):
    raise RuntimeError("an unexpected failure")


def test_a_refusal_is_logged_as_one_line_without_a_traceback(caplog, capsys):
    with caplog.at_level(logging.INFO), served(refuse=handler(refuse)) as client:
        reply = client.post("/gradio_api/run/refuse", json={"data": ["tiny"]})
    assert reply.status_code == 500 and "tiny" in reply.json()["error"]
    refused = [r for r in caplog.records if r.name == "webui.refused"]
    assert len(refused) == 1 and refused[0].exc_info is None
    assert refused[0].getMessage() == "refused refuse: Only the browser that started tiny can stop it; see --help."
    assert "Traceback" not in capsys.readouterr().err


def test_a_bug_still_logs_its_traceback(caplog, capsys):
    with caplog.at_level(logging.INFO), served(bug=handler(bug)) as client:
        assert client.post("/gradio_api/run/bug", json={"data": ["x"]}).status_code == 500
    assert not [r for r in caplog.records if r.name == "webui.refused"]
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: an unexpected failure" in err


def test_a_refusal_raised_as_an_error_further_in_is_logged_as_one_line_too(caplog, capsys):
    def kept_in_place(name):                    # as the Train tab's controls do: the message kept, then raised
        raise gr.Error(f"⚠️ Run **{name}** is busy.")

    with caplog.at_level(logging.INFO), served(control=handler(kept_in_place)) as client:
        reply = client.post("/gradio_api/run/control", json={"data": ["tiny"]})
    assert reply.json()["error"] == "⚠️ Run tiny is busy."
    assert [r.getMessage() for r in caplog.records if r.name == "webui.refused"] == \
        ["refused kept_in_place: ⚠️ Run tiny is busy."]
    assert "Traceback" not in capsys.readouterr().err


def test_an_api_caller_gets_a_refusal_in_plain_text_without_markdown():
    with served(refuse=handler(refuse)) as client:
        error = client.post("/gradio_api/run/refuse", json={"data": ["tiny"]}).json()["error"]
    assert error == "Only the browser that started tiny can stop it; see --help."


def test_every_refusal_is_worded_without_markdown_or_server_paths():
    from charrnn.runs.jobs import JobError
    assert message_of(UserError("Run **a** needs `b`.")) == "Run a needs b."
    assert message_of(JobError("Cannot write /srv/app/checkpoints/run/model.safetensors")) == \
        "Cannot write run/model.safetensors"
    assert message_of(UserError("Disk full in /srv/app/checkpoints")) == "Disk full in app/checkpoints"


def test_a_refused_whole_number_is_logged_as_one_line(caplog):
    from webui.glue import WholeNumber
    with gr.Blocks():
        box = WholeNumber(1, precision=0, label="Hidden size")
    with caplog.at_level(logging.INFO), pytest.raises(gr.Error) as refused:
        box.preprocess("abc")
    assert refused.value.print_exception is False
    assert [r.getMessage() for r in caplog.records if r.name == "webui.refused"] == \
        ["refused Hidden size: Hidden size must be a whole number, got 'abc'."]


def test_the_owner_refusal_names_the_run_in_plain_words(tmp_path):
    from webui.owners import check_owner, record_owner
    from webui.settings import Settings
    settings = Settings(root=tmp_path)
    (tmp_path / "mine").mkdir()
    record_owner(tmp_path / "mine", "my-key")
    with pytest.raises(UserError) as refused:
        check_owner(settings, tmp_path / "mine", "not-my-key", "stop")
    assert str(refused.value).startswith("Only the browser that started or added mine can stop it.")
    assert "**" not in str(refused.value)


# --- the visitor's digest, salted with the deployment's secret ------------------------------------------------------
def test_a_visitors_digest_is_keyed_by_a_secret_made_once_for_the_deployment(tmp_path):
    import hashlib
    import stat

    from webui import owners
    first = owners.visitor_digest(tmp_path, "192.0.2.1")
    secret = tmp_path / owners.SECRET
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    made = secret.read_text()
    assert owners.visitor_digest(tmp_path, "192.0.2.1") == first and secret.read_text() == made     # made once
    assert owners.visitor_digest(tmp_path, "192.0.2.2") != first
    assert owners.visitor_digest(tmp_path / "elsewhere", "192.0.2.1") != first        # another deployment's
    unsalted = {hashlib.sha256(f"{prefix}192.0.2.1".encode()).hexdigest() for prefix in ("", "visitor:")}
    assert first not in unsalted                      # hashing every IPv4 address no longer finds it


def test_threads_making_the_secret_at_once_all_use_the_same_one(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from webui import owners
    with ThreadPoolExecutor(8) as pool:
        digests = set(pool.map(lambda _: owners.visitor_digest(tmp_path, "192.0.2.1"), range(32)))
    assert len(digests) == 1


def test_a_damaged_secret_is_refused_naming_the_file_not_silently_replaced(tmp_path):
    from webui import owners
    (tmp_path / owners.SECRET).write_text("not a secret")
    with pytest.raises(UserError, match=r"\.visitor-secret in its checkpoints folder\) is damaged"):
        owners.visitor_digest(tmp_path, "192.0.2.1")
    assert (tmp_path / owners.SECRET).read_text() == "not a secret"


def test_an_owner_file_from_before_the_secret_keeps_its_key_and_counts_toward_nobodys_quota(tmp_path):
    import hashlib
    import json

    from webui import owners
    from webui.quotas import owned_runs
    from webui.settings import Settings
    settings = Settings(root=tmp_path)
    for name, key in (("old", "old-key"), ("old-keyless", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x")
        recorded = {"visitor_sha256": hashlib.sha256(b"visitor:192.0.2.1").hexdigest()}
        (tmp_path / name / owners.OWNER).write_text(json.dumps({**recorded, **({"key_sha256": owners.digest(key)}
                                                                              if key else {})}))
    assert owners.may_control(settings, tmp_path / "old", "old-key")
    assert not owners.may_control(settings, tmp_path / "old", "another-key")
    assert owners.may_control(settings, tmp_path / "old-keyless", "anyone")     # keyless: anyone's, as before
    assert owners.is_visitors(tmp_path / "old")                                 # still a visitor's: it expires
    assert owners.recorded_visitor(tmp_path / "old") is None
    assert owned_runs(tmp_path, "192.0.2.1") == []


# --- wrong keys: a few a minute per visitor --------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def owned_run(root, name="theirs", key="the-owners-key"):
    from webui.owners import record_owner
    (root / name).mkdir(parents=True)
    (root / name / "model.safetensors").write_bytes(b"x")
    record_owner(root / name, key)
    return root / name


def test_wrong_keys_past_a_few_a_minute_are_refused_with_the_wait_then_pass_again(tmp_path):
    from webui.owners import WrongKeys, check_owner
    from webui.settings import Settings
    settings, clock = Settings(root=tmp_path), Clock()
    wrong_keys, run = WrongKeys(most=5, window_s=60, clock=clock), owned_run(tmp_path)
    for guess in range(5):
        clock.now += 1
        with pytest.raises(UserError, match="Only the browser that started"):
            check_owner(settings, run, f"guess-{guess}", "delete", wrong_keys, "192.0.2.1")
    with pytest.raises(UserError, match=r"Too many wrong keys from your address: 5 in the last 60 s\. Wait 56 s"):
        check_owner(settings, run, "the-owners-key", "delete", wrong_keys, "192.0.2.1")    # right or wrong: refused
    check_owner(settings, run, "the-owners-key", "delete", wrong_keys, "198.51.100.7")    # another visitor: theirs
    clock.now += 56
    check_owner(settings, run, "the-owners-key", "delete", wrong_keys, "192.0.2.1")       # the oldest has left
    with pytest.raises(UserError, match="Only the browser that started"):
        check_owner(settings, run, "guess-5", "delete", wrong_keys, "192.0.2.1")
    with pytest.raises(UserError, match="Too many wrong keys"):
        check_owner(settings, run, "guess-6", "delete", wrong_keys, "192.0.2.1")


def test_runs_anyone_may_control_and_a_password_holder_count_no_wrong_keys(tmp_path):
    import dataclasses

    from webui.owners import WrongKeys, check_owner
    from webui.settings import Settings
    settings, wrong_keys = Settings(root=tmp_path), WrongKeys(most=1, clock=Clock())
    (tmp_path / "operators").mkdir()
    for _ in range(3):
        check_owner(settings, tmp_path / "operators", "any", "stop", wrong_keys, "192.0.2.1")
        check_owner(dataclasses.replace(settings, password="pw"), owned_run(tmp_path, f"r{_}"), "any", "stop",
                    wrong_keys, "192.0.2.1")
    assert wrong_keys.failures == {}


def test_resume_stop_and_delete_count_the_visitors_wrong_keys(tmp_path):
    from app_fixtures import tiny_context

    from webui.owners import WrongKeys
    from webui.train.actions import resume_training, stop_training
    from webui.transfer import delete_run
    ctx = tiny_context(tmp_path)
    ctx.wrong_keys = WrongKeys(most=3, window_s=60, clock=Clock())
    owned_run(ctx.settings.root)
    with pytest.raises(UserError, match="can resume it"):
        resume_training(ctx, None, "theirs", None, None, key="guess-1", visitor="192.0.2.1")
    with pytest.raises(UserError, match="can delete it"):
        delete_run(ctx, None, "theirs", "guess-2", visitor="192.0.2.1")
    ctx.jobs.stop = lambda check: (check("theirs"), None)        # as the supervisor asks, with its run training
    with pytest.raises(UserError, match="can stop it"):
        stop_training(ctx, None, "guess-3", visitor="192.0.2.1")
    with pytest.raises(UserError, match="Too many wrong keys"):
        delete_run(ctx, None, "theirs", "the-owners-key", visitor="192.0.2.1")
    assert (ctx.settings.root / "theirs").is_dir()


def generate_tab_of(ctx):
    """The Generate tab built and wired as the demo does (``g.demo``: its Blocks)."""
    from webui.generate import tab as generate_tab
    with gr.Blocks() as demo:
        g = generate_tab.build(ctx)
        g.key = gr.BrowserState(None)
        generate_tab.wire(ctx, g)
    g.demo = demo
    return g


def request_from(visitor):
    """What gradio hands a handler's gr.Request parameter: the server's request, whose scope the front door marked."""
    from types import SimpleNamespace

    from webui.fair import VISITOR
    return SimpleNamespace(request=SimpleNamespace(scope={VISITOR: visitor}))


def test_the_generate_tabs_delete_counts_the_visitors_wrong_keys(tmp_path):
    from app_fixtures import tiny_context, wired

    from webui.owners import WrongKeys
    ctx = tiny_context(tmp_path)
    ctx.wrong_keys = WrongKeys(most=3, window_s=60, clock=Clock())
    owned_run(ctx.settings.root)
    g = generate_tab_of(ctx)
    ask = wired(g, g.confirm_delete_btn, g.pending_delete, g.transfer_md)           # the Delete button
    confirm = wired(g, g.transfer_md, g.confirm_delete_btn, g.pending_delete)       # "Yes, delete it"
    stranger, owner = request_from("192.0.2.1"), request_from("198.51.100.7")
    assert "can delete it" in ask("theirs", "guess-1", None, stranger)[2]
    assert "can delete it" in ask("theirs", "guess-2", None, stranger)[2]
    assert "can delete it" in confirm(None, "theirs", "guess-3", stranger)[0]
    button, pending, message = ask("theirs", "the-owners-key", None, stranger)      # right or wrong: refused
    assert not button["visible"] and pending == "" and "Too many wrong keys from your address" in message
    message = confirm(None, "theirs", "the-owners-key", stranger)[0]
    assert "Too many wrong keys from your address" in message and "Nothing was deleted" in message
    assert (ctx.settings.root / "theirs").is_dir()
    assert ask("theirs", "the-owners-key", None, owner)[0]["visible"]               # another visitor: theirs
    assert "Deleted **theirs**" in confirm(None, "theirs", "the-owners-key", owner)[0]


def test_the_delete_api_counts_its_callers_wrong_keys(tmp_path):
    from app_fixtures import tiny_context

    from webui.owners import WrongKeys
    ctx = tiny_context(tmp_path)
    ctx.wrong_keys = WrongKeys(most=2, window_s=60, clock=Clock())
    owned_run(ctx.settings.root)
    with TestClient(App.create_app(generate_tab_of(ctx).demo)) as client:    # the visitor: the client's address
        delete = lambda key: client.post("/gradio_api/run/delete_run", json={"data": [None, "theirs", key]})  # noqa: E731
        for guess in ("guess-1", "guess-2"):
            assert "can delete it" in delete(guess).json()["error"]
        refused = delete("the-owners-key")
    assert refused.status_code == 500 and "Too many wrong keys from your address" in refused.json()["error"]
    assert (ctx.settings.root / "theirs").is_dir()


# --- pasted text held per visitor ------------------------------------------------------------------------------------
def text_door(inner, events=(), text_held=50_000):
    from test_fair import QUICK, TEXT

    from webui.fair import FrontDoor, Limits
    limits = Limits(most=8, room=100, small_body=1000, max_body=30_000, max_upload=20_000, text_held=text_held)
    return FrontDoor(inner, lambda: list(events), quick=lambda key: key == QUICK, takes_text=lambda key: key == TEXT,
                     limits=limits)


def test_a_visitor_whose_events_hold_their_share_of_pasted_text_waits_before_sending_more():
    from test_fair import TEXT, Inner, call, event
    inner, held = Inner(), [("192.0.2.1", TEXT, 25_000), ("192.0.2.1", TEXT, 0)]
    status, reply = call(text_door(inner, held), body=event(TEXT, "x" * 26_000))
    assert status == 429 and "already carry 24.4 KiB of pasted text" in reply["detail"] and inner.bodies == []
    assert "holds 48.8 KiB of one visitor's at once" in reply["detail"]
    assert call(text_door(inner, held), body=event(TEXT, "x" * 20_000))[0] == 200         # what is left of it
    assert call(text_door(inner, held), body=event(TEXT, "short"))[0] == 200              # a small body: always
    assert call(text_door(inner, held), body=event(TEXT, "x" * 26_000), client="198.51.100.7")[0] == 200


def test_a_pasted_text_past_what_is_left_is_never_read_whole():
    import asyncio

    from test_fair import TEXT, Inner, Request, event
    inner, held = Inner(), [("192.0.2.1", TEXT, 45_000)]
    request = Request(body=event(TEXT, "x" * 29_000), chunks=100)             # no declared length
    status, _ = asyncio.run(request.through(text_door(inner, held)))
    assert status == 429 and request.taken < 100 and inner.bodies == []


def test_pasted_texts_sent_together_count_toward_the_same_bound():
    import asyncio

    from test_fair import TEXT, Held, Request, event, together
    inner = Held()
    body = event(TEXT, "x" * 20_000)
    requests = [Request(body=body, headers=[("content-length", str(len(body)))]) for _ in range(3)]
    statuses = asyncio.run(together(text_door(inner), requests, inner))
    assert sorted(statuses) == [200, 200, 429]


def test_an_admitted_pasted_text_leaves_its_size_for_the_queue_to_report():
    from test_fair import TEXT, Inner, call, event

    from webui.fair import TEXT_BYTES
    inner, body = Inner(), event(TEXT, "x" * 5000)
    assert call(text_door(inner), body=body)[0] == 200 and inner.scopes[0][TEXT_BYTES] == len(body)
    assert call(text_door(inner), body=event(TEXT, "short"))[0] == 200 and TEXT_BYTES not in inner.scopes[1]


def test_the_queue_reports_each_events_pasted_text_to_the_front_door():
    from types import SimpleNamespace as NS

    from webui.demo import pending_events
    from webui.fair import TEXT_BYTES, VISITOR

    def queued(fn_id, scope):
        return NS(fn=NS(_id=fn_id), request=NS(scope={VISITOR: "192.0.2.1", **scope}))

    demo = NS(_queue=NS(event_queue_per_concurrency_id={"train": NS(queue=[queued(7, {TEXT_BYTES: 12_345})])},
                        active_jobs=[[queued(9, {})], None]))
    assert sorted(pending_events(demo)) == [("192.0.2.1", 7, 12_345), ("192.0.2.1", 9, 0)]


# --- GPU bursts: the visitor's run quotas, as on the CPU path --------------------------------------------------------
@pytest.fixture
def burst_ctx(tmp_path):
    import dataclasses

    from app_fixtures import app_settings

    from webui.context import AppContext
    settings = dataclasses.replace(app_settings(tmp_path, corpus=True, gpu_bursts=True), visitor_runs=1)
    return AppContext(settings)


def burst_start(ctx, run_name, visitor, key="mine"):
    """A burst's Start as the Train tab calls it, with a burst that trains nothing; its last view."""
    from app_fixtures import TINY_TRAINING

    from webui.train import burst
    form = {k: v for k, v in TINY_TRAINING.items() if k != "preset"}
    def no_training(*args):
        yield from ()

    views = burst.start_burst(ctx, burst.Bursts(), lambda run: {}, 1, train=no_training, password=None,
                              source="bundled", bundled_name="tiny.txt", upload=None, pasted=None,
                              preset=TINY_TRAINING["preset"], values=form, run_name=run_name, key=key,
                              visitor=visitor)
    return list(views)[-1]


def test_a_burst_start_counts_toward_the_visitors_runs_and_is_refused_past_them(burst_ctx):
    from webui.owners import recorded_visitor, visitor_digest
    from webui.quotas import owned_runs
    root = burst_ctx.settings.root
    assert "Started run **first**" in burst_start(burst_ctx, "first", "192.0.2.1")["message"]
    assert recorded_visitor(root / "first") == visitor_digest(root, "192.0.2.1")
    assert owned_runs(root, "192.0.2.1") == [root / "first"]
    with pytest.raises(UserError, match="You already have 1 runs on this server"):
        burst_start(burst_ctx, "second", "192.0.2.1")
    assert not (root / "second").exists()
    assert "Started run **theirs**" in burst_start(burst_ctx, "theirs", "198.51.100.7", key="theirs")["message"]


def test_the_pages_burst_start_and_resume_take_the_visitor_from_the_request(burst_ctx):
    from gradio.utils import get_function_params

    from webui.train import tab as train_tab
    with gr.Blocks() as demo:
        t = train_tab.build(burst_ctx)
        t.key = gr.BrowserState(None)
        train_tab.wire(burst_ctx, t)
    for name in ("start_training", "resume_training"):
        fn = next(f for f in demo.fns.values() if f.api_name == name).fn
        assert "request" in inspect_params(fn) and "request" not in [p[0] for p in get_function_params(fn)]


def inspect_params(fn) -> list[str]:
    import inspect
    return list(inspect.signature(fn).parameters)


# --- no server paths in the page -------------------------------------------------------------------------------------
def test_a_refusal_quoting_the_checkpoints_folder_shows_no_server_path(tmp_path):
    from charrnn.runs.jobs import JobError
    root = (tmp_path / "checkpoints").resolve()

    def full_disk(run):
        raise JobError(f"Run {run} cannot be resumed: [Errno 28] No space left on device: '{root}/{run}/latest'.")

    with pytest.raises(gr.Error) as refused:
        handler(full_disk)("mine")
    inline = handler(full_disk, inline=lambda m: f"⚠️ {m}")("mine")
    for shown in (refused.value.message, inline):
        assert str(root) not in shown and str(tmp_path) not in shown and "mine/latest" in shown


def rendered_failure(tmp_path):
    """A Train tab view of a run that failed on a full disk, its reason and log quoting the checkpoints folder."""
    from app_fixtures import app_settings, corpus_text, make_checkpoint

    from charrnn.runs.store import RunDir
    from webui.context import AppContext
    from webui.train import tab as train_tab
    ctx = AppContext(app_settings(tmp_path, corpus=True))
    root = ctx.settings.root
    make_checkpoint(root / "run1", corpus_text())
    RunDir(root / "run1").write_status("failed", step=3, reason=f"No space left on device: '{root}/run1/latest'")
    (root / "run1" / "train.log").write_text(f"OSError: [Errno 28] No space left on device: '{root}/run1/latest'\n")
    return ctx, repr(train_tab.training_view(ctx, "run1"))


def test_a_failed_runs_view_shows_no_server_path(tmp_path):
    ctx, view = rendered_failure(tmp_path)
    assert "No space left on device" in view and str(ctx.settings.root) not in view


def test_the_pages_head_names_no_server_path(tmp_path):
    from app_fixtures import app_settings

    from webui.generate import browser
    settings = app_settings(tmp_path)
    head = browser.head_script(settings)
    assert str(settings.root) not in head and str(settings.browser_dir) not in head and "file=" not in head
    assert '"folder": "charrnn/copies/"' in head
