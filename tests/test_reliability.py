"""Reliability and security of the app as a stranger meets it: bad input, faults, hostile requests.

Most cases go through a launched app the way a public Space is reached (gradio_client, or raw HTTP
where a client would refuse to send the value): ``create_demo(Settings(root=...))`` served by
``webui.demo.launch`` with the launch settings of ``app.py``'s ``__main__``. A case that needs other
settings (a password, a lower corpus cap, an unwritable folder) launches its own app with them. A few
drive the handlers in-process where the launched app cannot show the case (an app restart: a second
``AppContext`` over the same folder; a reused pid). Every refusal must reach the client as the app's own
message: Gradio answers an unexpected exception with a generic text, which these tests treat as a failure.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
import torch
from app_fixtures import (
    TINY_TRAINING,
    corpus_text,
    kill_trainers,
    last_step,
    launched,
    make_checkpoint,
    status_of,
    wait_for,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from safetensors.torch import load_file, save_file

from charrnn.data import min_corpus_chars
from charrnn.runs.jobs import JobError, Supervisor, resumable_runs
from charrnn.runs.runner import build_corpus
from charrnn.runs.store import PROJECT_DIR, RunDir, read_header
from charrnn.runs.weights import CheckpointError
from webui.context import AppContext
from webui.demo import checkpoint_updates, poll
from webui.models import BUNDLED_KEY, list_checkpoints
from webui.settings import Settings, settings_from_env
from webui.train import actions
from webui.train.forms import FORM_FIELDS, build_configs, read_corpus

pytestmark = pytest.mark.slow

GENERIC = "has not enabled verbose error reporting"  # Gradio's text for an exception the app let through
START_FIELDS = ("password", "source", "bundled_name", "upload", "pasted", "preset", "hidden", "layers", "seq_len",
                "batch_size", "lr", "iterations", "minutes", "run_name", "key", "patience",
                "start_from")
GENERATE_FIELDS = ("checkpoint", "prime", "temperature", "length", "top_k", "seed", "key")
BUNDLED = Settings(root=PROJECT_DIR).bundled          # the pretrained run shipped with the app
APP_PY = PROJECT_DIR / "app.py"                       # a server file no request may read
TINY_PRESET = TINY_TRAINING["preset"]
TINY_VALUES = {k: TINY_TRAINING[k] for k in FORM_FIELDS}


class PlantedPickle:
    """Unpickling this creates ``marker``: proof that a loader executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- the launched app -------------------------------------------------------------------
@contextmanager
def client_of(url: str):
    client = Client(url, verbose=False, analytics_enabled=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app over a fresh checkpoints folder, two levels below a folder of this module's own (see ESCAPES)."""
    if not (BUNDLED / RunDir.WEIGHTS).is_file():
        pytest.fail(f"the bundled checkpoint {BUNDLED / RunDir.WEIGHTS} is missing")
    root = tmp_path_factory.mktemp("reliability") / "served" / "checkpoints"
    root.mkdir(parents=True)
    with launched(root) as served:
        yield served


@pytest.fixture(scope="module")
def url(served):
    return served.url


@pytest.fixture(scope="module")
def client(url):
    with client_of(url) as client:
        yield client


@pytest.fixture
def root(served):
    """The served checkpoints folder; trainers a test started are killed after it."""
    yield served.root
    kill_trainers(served.root, served.ctx.jobs)


def start_args(run: str, **changes) -> list:
    values = dict(password=None, source="paste", bundled_name=None, upload=None, pasted=corpus_text(),
                  **TINY_TRAINING, run_name=run, key=None, patience=None, start_from=None)
    return [{**values, **changes}[k] for k in START_FIELDS]


def generate_args(**changes) -> list:
    values = dict(checkpoint=BUNDLED_KEY, prime="ROMEO:", temperature=0.8, length=40, top_k=0, seed=1, key=None)
    return [{**values, **changes}[k] for k in GENERATE_FIELDS]


def refusal(call) -> str:
    """The message of the AppError ``call`` raises; fails if it succeeds or if the message is Gradio's generic one."""
    with pytest.raises(AppError) as info:
        call()
    message = str(info.value)
    assert GENERIC not in message, "an unexpected exception reached the client instead of a message"
    return message


def still_serving(client) -> None:
    text = client.predict(*generate_args(length=20), api_name="/generate")
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 20


def fn_index(url: str, api_name: str) -> int:
    """The event id of endpoint ``api_name``, from the config the server gives a browser."""
    dependencies = httpx.get(url + "config").raise_for_status().json()["dependencies"]
    return next(d["id"] for d in dependencies if d.get("api_name") == api_name)


def queue_call(url: str, api_name: str, data: list, timeout: float = 120) -> tuple[list[str], dict]:
    """Call an endpoint as the browser does (join the queue, read the event stream): (warnings, final message).

    JSON is written by hand so that NaN and Infinity, which clients refuse to send, reach the server.
    """
    session = uuid.uuid4().hex
    body = json.dumps({"data": data, "fn_index": fn_index(url, api_name), "session_hash": session,
                       "event_data": None, "trigger_id": None})
    joined = httpx.post(url + "gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
    assert joined.status_code == 200, joined.text
    logs = []
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "log":
                logs.append(message["log"])
            if message.get("msg") == "process_completed":
                return logs, message
    raise AssertionError("the event stream ended without a result")


def raw_refusal(url: str, api_name: str, data: list) -> str:
    _, done = queue_call(url, api_name, data)
    assert done["success"] is False, "the request was accepted"
    error = done["output"].get("error")
    assert error, "an unexpected exception reached the client instead of a message"
    return error


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@contextmanager
def nothing_written(root: Path):
    """Fail if the block adds, removes or renames anything in the checkpoints folder."""
    before = tree(root)
    yield
    assert tree(root) == before


# --- bad input: the corpus ------------------------------------------------------------------
def test_empty_corpus_is_refused_before_training(client, root, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with nothing_written(root):
        assert "Paste some text" in refusal(lambda: client.predict(*start_args("e1", pasted=""),
                                                                   api_name="/start_training"))
        assert "empty.txt is empty" in refusal(lambda: client.predict(
            *start_args("e2", source="upload", upload=handle_file(str(empty))), api_name="/start_training"))


def test_corpus_shorter_than_one_training_portion_is_refused_saying_the_minimum(client, root):
    need = min_corpus_chars(TINY_TRAINING["seq_len"], 0.1)
    with nothing_written(root):
        message = refusal(lambda: client.predict(*start_args("short", pasted="x" * (need - 1)),
                                                 api_name="/start_training"))
    assert f"at least {need:,} are needed" in message


@pytest.mark.parametrize("content, reason", [
    (b"PK\x03\x04\x00\x00binary zip" * 50, "looks binary"),
    ("café crème ".encode("latin-1") * 50, "not valid UTF-8"),
], ids=["binary", "latin-1"])
def test_binary_or_non_utf8_upload_is_refused_saying_why_and_writes_nothing(client, root, tmp_path, content, reason):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with nothing_written(root):
        message = refusal(lambda: client.predict(*start_args("up", source="upload", upload=handle_file(str(path))),
                                                 api_name="/start_training"))
    assert "notes.txt" in message and reason in message


def test_upload_over_the_corpus_cap_is_refused_naming_the_limit(tmp_path):
    # the server's upload cap equals the corpus cap, so serve an app with a lower corpus cap to reach its check
    root = tmp_path / "checkpoints"
    root.mkdir()
    path = tmp_path / "big.txt"
    path.write_text(corpus_text() * (2_500_000 // len(corpus_text())), encoding="utf-8")
    with launched(root, max_corpus_bytes=2_000_000) as capped, client_of(capped.url) as client:
        assert capped.settings.max_upload == Settings(root=root).max_upload        # the server's cap is unchanged
        with nothing_written(root):
            message = refusal(lambda: client.predict(
                *start_args("big", source="upload", upload=handle_file(str(path))), api_name="/start_training"))
        assert capped.ctx.jobs.proc is None
    assert "big.txt is 2.4 MiB; the limit for uploads is 1.9 MiB" in message      # binary units, as Gradio shows


def test_pasted_text_over_10_mb_is_refused_naming_the_limit(client, root):
    with nothing_written(root):
        message = refusal(lambda: client.predict(*start_args("huge", pasted="abcdefghij\n" * 1_000_000),
                                                 api_name="/start_training"))
    assert "The pasted text is 10.5 MiB; the limit is 10.0 MiB" in message


def test_pasted_text_of_millions_of_characters_within_the_limit_is_accepted(tmp_path):
    settings = Settings(root=tmp_path)
    text = corpus_text(100_000)                                # about 2.2 million characters
    choice = read_corpus(settings, "paste", None, None, text)
    model_cfg, train_cfg = build_configs(settings, TINY_PRESET, 1, TINY_VALUES)
    corpus = build_corpus(choice.text, train_cfg)
    assert len(text) > 2_000_000 and len(corpus.train) + len(corpus.val) == len(text)


# --- bad input: generation ------------------------------------------------------------------
def test_prime_with_characters_the_vocabulary_lacks_is_named_and_folded(url):
    logs, done = queue_call(url, "generate", generate_args(prime="ROMEO: café€ ☃", length=30))
    assert done["success"], done
    text = done["output"]["data"][0]
    assert any("'é'" in log and "'€'" in log and "'☃'" in log for log in logs), logs
    assert text.startswith("ROMEO: cafeEUR") and "é" not in text and "€" not in text


@pytest.mark.parametrize("prime", ["", None])
def test_empty_prime_generates_from_the_default_start(client, prime):
    text = client.predict(*generate_args(prime=prime, length=50), api_name="/generate")
    assert len(text) == 50


def bundled_vocab_size() -> int:
    weights = BUNDLED / RunDir.WEIGHTS
    return len(read_header(weights)["vocab"]) if weights.is_file() else 0


BUNDLED_VOCAB = bundled_vocab_size()
# Either the slider's own bound (checked by Gradio, which does not name the field) or the app's message.
SLIDER_BOUND = r"Value \S+ is (less than minimum|greater than maximum) value "
TEMPERATURE_RANGE = SLIDER_BOUND + r"[02]\.|Temperature must be a number from 0 to 2"
LENGTH_RANGE = SLIDER_BOUND + r"(1|5000)\.|Length must be a whole number from 1"


@pytest.mark.parametrize("changes, message", [
    (dict(temperature=-0.5), TEMPERATURE_RANGE),
    (dict(temperature=1e308), TEMPERATURE_RANGE),
    (dict(top_k=-1), "Top-k must be a whole number from 0"),
    (dict(top_k=BUNDLED_VOCAB + 1), f"Top-k must be from 1 to {BUNDLED_VOCAB}"),
    (dict(length=0), LENGTH_RANGE),
    (dict(length=-5), LENGTH_RANGE),
    (dict(length=10**9), LENGTH_RANGE),
    (dict(length=2.5), "Length must be a whole number from 1 to 5,000"),
    (dict(seed=-1), "Seed must be a whole number"),
    (dict(prime="x" * 10_001), "at most 10,000 characters"),
], ids=lambda v: str(v)[:30])
def test_out_of_range_generation_values_are_refused_and_the_server_keeps_serving(client, changes, message):
    assert re.search(message, refusal(lambda: client.predict(*generate_args(**changes), api_name="/generate")))
    still_serving(client)


@pytest.mark.parametrize("changes, message", [
    (dict(temperature=float("nan")), TEMPERATURE_RANGE),
    (dict(temperature=float("inf")), TEMPERATURE_RANGE),
    (dict(temperature=float("-inf")), TEMPERATURE_RANGE),
    (dict(length=float("nan")), LENGTH_RANGE),
    (dict(length=float("inf")), LENGTH_RANGE),
], ids=["temperature NaN", "temperature inf", "temperature -inf", "length NaN", "length inf"])
def test_non_finite_generation_values_are_refused_with_a_message(url, client, changes, message):
    assert re.search(message, raw_refusal(url, "generate", generate_args(**changes)))
    still_serving(client)


@pytest.mark.parametrize("changes, message", [
    (dict(temperature="hot"), "Temperature"),
    (dict(temperature=None), "Temperature"),
    (dict(length="ten"), "Length"),
    (dict(length=None), "Length"),
    (dict(top_k="abc"), "Top-k"),
    (dict(top_k=float("nan")), "Top-k"),
    (dict(top_k=float("inf")), "Top-k"),
    (dict(seed=float("nan")), "Seed"),
], ids=lambda v: repr(v)[:30])
def test_generation_values_of_the_wrong_type_are_refused_naming_the_field(url, client, changes, message):
    assert re.search(message, raw_refusal(url, "generate", generate_args(**changes)), re.IGNORECASE)
    still_serving(client)


def test_top_k_zero_means_off_and_top_k_of_the_whole_vocabulary_is_accepted(client):
    for top_k in (0, BUNDLED_VOCAB):
        assert len(client.predict(*generate_args(top_k=top_k, prime=""), api_name="/generate")) == 40


# --- bad input: hyperparameters -----------------------------------------------------------------
@pytest.mark.parametrize("changes, message", [
    (dict(hidden=0), "hidden=0 is out of range; allowed 1 to 4096"),
    (dict(layers=100), "layers=100 is out of range; allowed 1 to 8"),
    (dict(lr=0), "lr=0 is out of range; allowed greater than 0 up to 1"),
    (dict(lr=-0.01), "lr=-0.01 is out of range"),
    (dict(batch_size=0), "batch_size=0 is out of range; allowed 1 to 4096"),
    (dict(seq_len=0), "seq_len=0 is out of range; allowed 1 to 4096"),
    (dict(iterations=-5), "iterations=-5 is out of range"),
    (dict(minutes=-1), "minutes=-1 is out of range"),
    (dict(iterations=0, minutes=0), "iterations > 0, minutes > 0"),
], ids=lambda v: str(v)[:30])
def test_out_of_range_hyperparameters_are_refused_with_the_allowed_range(client, served, root, changes, message):
    before = served.ctx.jobs.proc
    with nothing_written(root):
        assert message in refusal(lambda: client.predict(*start_args("hp", **changes), api_name="/start_training"))
    assert served.ctx.jobs.proc is before


@pytest.mark.parametrize("changes, message", [
    (dict(hidden="abc"), "hidden"),
    (dict(layers="two"), "layers"),
    (dict(hidden=float("nan")), "hidden"),
    (dict(iterations=float("inf")), "iterations"),
], ids=lambda v: repr(v)[:30])
def test_hyperparameters_of_the_wrong_type_are_refused_naming_the_field(url, root, changes, message):
    with nothing_written(root):
        assert re.search(message, raw_refusal(url, "start_training", start_args("hp", **changes)), re.IGNORECASE)


# --- checkpoints ------------------------------------------------------------------------------
def damage(path: Path, kind: str) -> None:
    """Spoil a valid checkpoint file the way ``kind`` says."""
    raw = path.read_bytes()
    with open(path, "rb") as f:                      # the header as written: 8-byte length, then JSON
        header = json.loads(f.read(8 + int.from_bytes(raw[:8], "little"))[8:])["__metadata__"]
    tensors = load_file(str(path))
    if kind == "truncated":
        path.write_bytes(raw[:len(raw) // 2])
    elif kind == "corrupt":
        path.write_bytes(bytes(range(256)) * 16)
    elif kind == "another format":
        save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    elif kind == "older format":
        old = {**json.loads(header["charrnn"]), "format": "charrnn/0"}
        save_file(tensors, str(path), metadata={"charrnn": json.dumps(old)})
    elif kind == "unexpected keys":
        save_file({**tensors, "extra.weight": torch.zeros(3)}, str(path), metadata=header)
    elif kind == "missing keys":
        save_file({k: v for k, v in tensors.items() if k != "head.bias"}, str(path), metadata=header)


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "another format", "older format", "unexpected keys",
                                  "missing keys"])
def test_bad_checkpoint_is_refused_naming_the_file_and_the_others_still_generate(client, served, root, kind):
    good = f"good-{kind.replace(' ', '-')}"
    bad = f"bad-{kind.replace(' ', '-')}"
    make_checkpoint(root / good, corpus_text())
    damage(make_checkpoint(root / bad, corpus_text()), kind)

    message = refusal(lambda: client.predict(*generate_args(checkpoint=bad, prime="the "), api_name="/generate"))
    assert f"{bad}/{RunDir.WEIGHTS}" in message
    keys = [r["key"] for r in list_checkpoints(served.settings)]
    assert good in keys and BUNDLED_KEY in keys
    if kind not in ("unexpected keys", "missing keys"):      # the picker reads headers only: a bad one is left out
        assert bad not in keys
        assert client.predict(bad, api_name="/describe_checkpoint").startswith("⚠️")
    text = client.predict(*generate_args(checkpoint=good, prime="the "), api_name="/generate")
    assert text.startswith("the ") and len(text) == 4 + 40


def test_checkpoint_with_odd_header_values_does_not_break_the_picker(client, served, root):
    """A header of the right format whose fields have the wrong types: one bad file must not take the page down."""
    make_checkpoint(root / "fine", corpus_text())
    path = make_checkpoint(root / "odd", corpus_text())
    header = read_header(path)
    save_file(load_file(str(path)), str(path), metadata={"charrnn": json.dumps({**header, "data": "corpus.txt",
                                                                                "step": "ten"})})
    view = poll(served.ctx, {}, "odd", None)                          # every visitor's timer runs this
    assert "fine" in [key for _, key in view["checkpoint"]["choices"]]
    line = client.predict("odd", api_name="/describe_checkpoint")
    assert isinstance(line, str) and line


# --- paths that could leave the checkpoints folder ------------------------------------------------
ESCAPES = ["../../etc/passwd", "/etc/passwd", "bundled/../x", "bundled/shakespeare/../../app", "a/b", "..", ".",
           ".hidden", "名前", "a" * 81, "<img src=x onerror=alert(1)>", "run name"]


def test_run_names_with_dots_slashes_or_odd_characters_are_refused_and_nothing_is_written(client, served, root):
    passwd = Path("/etc/passwd").read_bytes()
    before = served.ctx.jobs.proc
    with nothing_written(root.parent.parent):              # ../../x from the folder lands two levels up
        for name in ESCAPES:
            message = refusal(lambda name=name: client.predict(*start_args(name), api_name="/start_training"))
            assert "invalid run name" in message, name
    assert Path("/etc/passwd").read_bytes() == passwd and served.ctx.jobs.proc is before


@pytest.mark.parametrize("key", [*ESCAPES, "x\n", str(BUNDLED), str(BUNDLED / RunDir.WEIGHTS), "shakespeare", 123])
def test_checkpoint_argument_outside_the_checkpoints_folder_is_refused(client, root, key):
    message = refusal(lambda: client.predict(*generate_args(checkpoint=key), api_name="/generate"))
    assert "invalid run name" in message or "no such checkpoint" in message
    assert client.predict(key, api_name="/describe_checkpoint").startswith("⚠️")


def test_a_symlinked_run_pointing_outside_the_folder_is_refused(client, root, tmp_path):
    make_checkpoint(tmp_path / "elsewhere", corpus_text())
    (root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    try:
        assert "points outside" in refusal(lambda: client.predict(*generate_args(checkpoint="link"),
                                                                  api_name="/generate"))
    finally:
        (root / "link").unlink()


def test_resume_argument_outside_the_checkpoints_folder_is_refused(client, root):
    for run in ("../x", "/etc", "bundled/shakespeare", "shakespeare"):
        assert "No resumable run" in refusal(lambda run=run: client.predict(None, run, 10, 0,
                                                                            api_name="/resume_training"))


@pytest.mark.parametrize("target", ["/etc/passwd", str(APP_PY)])
def test_upload_argument_naming_a_server_file_is_not_read(url, root, target):
    fake_upload = {"path": target, "meta": {"_type": "gradio.FileData"}, "orig_name": "corpus.txt"}
    with nothing_written(root):
        _, done = queue_call(url, "start_training", start_args("steal", source="upload", upload=fake_upload))
    assert done["success"] is False


def test_user_text_in_messages_is_shown_as_text_not_markup(client, root):
    """Toasts and Markdown render HTML: text a visitor typed must come back escaped, like the app's other messages."""
    tag = "<img src=x onerror=alert(1)>"
    messages = [
        refusal(lambda: client.predict(*generate_args(checkpoint=tag), api_name="/generate")),
        client.predict(tag, api_name="/describe_checkpoint"),
        refusal(lambda: client.predict(*start_args(tag), api_name="/start_training")),
        refusal(lambda: client.predict(*start_args("lr-tag", lr=tag), api_name="/start_training")),
    ]
    assert all("<img" not in m and "&lt;img" in m for m in messages), messages


# --- faults ----------------------------------------------------------------------------------
def checkpoint_step(root: Path, run: str) -> int:
    try:
        return read_header(root / run)["step"]
    except CheckpointError:
        return 0


def test_sigkilled_trainer_leaves_the_app_serving_and_the_run_interrupted_generating_and_resumable(client, served,
                                                                                                  root):
    assert "Started run **killed**" in client.predict(*start_args("killed"), api_name="/start_training")
    saved = wait_for(lambda: checkpoint_step(root, "killed"), what="the first checkpoint")
    wait_for(lambda: last_step(root, "killed") > saved, what="steps past the checkpoint")
    os.killpg(served.ctx.jobs.proc.pid, signal.SIGKILL)
    served.ctx.jobs.proc.wait(timeout=30)

    status = poll(served.ctx, {}, None, None)["status_md"]
    assert status.startswith("**Interrupted**: killed")
    text = client.predict(*generate_args(checkpoint="killed", prime="the "), api_name="/generate")
    assert text.startswith("the ") and len(text) == 4 + 40
    assert "killed" in [r["name"] for r in resumable_runs(root)]

    saved = checkpoint_step(root, "killed")
    assert "Resumed **killed**" in client.predict(None, "killed", 20, 0, api_name="/resume_training")
    wait_for(lambda: status_of(root, "killed") == "finished", what="the resumed run to finish")
    assert checkpoint_step(root, "killed") == saved + 20
    steps = [r["step"] for r in RunDir(root / "killed").records()]
    assert steps == sorted(set(steps))                          # the killed run's extra records were dropped


def test_app_restarted_while_a_run_goes_shows_it_and_can_stop_and_resume_it(tmp_path):
    """A second AppContext (settings and job supervisor) over the same folder stands for the app after a restart."""
    data = tmp_path / "data"
    data.mkdir()
    first = AppContext(Settings(root=tmp_path / "ck", data_dir=data))
    make_checkpoint(first.settings.root / "past", corpus_text())
    restarted = None
    try:
        actions.start_training(first, None, "paste", None, None, corpus_text(), TINY_PRESET, TINY_VALUES, "going")
        wait_for(lambda: last_step(first.settings.root, "going") > 0, what="the first metrics")

        restarted = AppContext(Settings(root=first.settings.root, data_dir=data))
        root = restarted.settings.root
        view = poll(restarted, {}, None, None)
        assert view["status_md"].startswith("**Training** going")
        assert "past" in [key for _, key in view["checkpoint"]["choices"]]
        with pytest.raises(JobError, match="in progress: going"):
            actions.start_training(restarted, None, "paste", None, None, corpus_text(), TINY_PRESET, TINY_VALUES,
                                   "another")
        assert not (root / "another").exists()

        assert "Stopping **going**" in actions.stop_training(restarted, None)
        wait_for(lambda: status_of(root, "going") == "stopped", what="the run to stop")
        first.jobs.proc.wait(timeout=30)
        assert "going" in [r["name"] for r in resumable_runs(root)]
        stopped_at = checkpoint_step(root, "going")
        assert "Resumed **going**" in actions.resume_training(restarted, None, "going", 20, 0)
        wait_for(lambda: status_of(root, "going") == "finished", what="the resumed run to finish")
        assert checkpoint_step(root, "going") == stopped_at + 20
    finally:
        kill_trainers(first.settings.root, first.jobs)
        if restarted is not None:
            kill_trainers(restarted.settings.root, restarted.jobs)


def test_a_run_whose_trainer_pid_was_reused_is_shown_interrupted_and_offered_for_resume(tmp_path):
    """After a restart a dead trainer's pid can belong to another program: the run must not stay 'running'."""
    settings = Settings(root=tmp_path / "ck", data_dir=tmp_path)
    make_checkpoint(settings.root / "orphan", corpus_text(), step=10)
    torch.save({"step": 10}, settings.root / "orphan" / "train_state-10.pt")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        RunDir(settings.root / "orphan").write_status("running", pid=other.pid)
        assert Supervisor(settings.root).state("orphan")["state"] == "interrupted"
        assert Supervisor(settings.root).active() is None
        labels = [label for label, _ in checkpoint_updates(AppContext(settings), None, [])[0]["choices"]]
        assert "orphan" in labels                                   # not "orphan (training)"
        assert "orphan" in [r["name"] for r in resumable_runs(settings.root)]
    finally:
        other.kill()
        other.wait()


def test_unwritable_checkpoints_folder_refuses_start_and_the_bundled_model_still_generates(tmp_path):
    """The app configured (as from the environment) with a checkpoints folder it cannot create or write."""
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file where a folder should be")
    for folder in (blocker / "checkpoints", blocker):
        settings = settings_from_env({"CHARRNN_CHECKPOINTS": str(folder)})
        with launched(**asdict(settings)) as unwritable, client_of(unwritable.url) as client:
            assert unwritable.root == folder.resolve()
            assert "Cannot write to" in refusal(lambda client=client: client.predict(*start_args("nowhere"),
                                                                                     api_name="/start_training"))
            assert unwritable.ctx.jobs.proc is None
            view = poll(unwritable.ctx, {}, None, None)
            assert [key for _, key in view["checkpoint"]["choices"]] == [BUNDLED_KEY]
            still_serving(client)
    assert blocker.read_text() == "a regular file where a folder should be"
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_stop_with_nothing_running_says_so(client, served, root):
    before = served.ctx.jobs.proc
    with nothing_written(root):
        assert "No training run is in progress" in refusal(lambda: client.predict(None, api_name="/stop_training"))
    assert served.ctx.jobs.proc is before


def test_start_pressed_twice_at_once_starts_one_trainer(url, root):
    results = {}

    def press(name):
        c = Client(url, verbose=False, analytics_enabled=False)
        try:
            results[name] = c.predict(*start_args(name), api_name="/start_training")
        except AppError as e:
            results[name] = e
        finally:
            c.close()

    threads = [threading.Thread(target=press, args=(name,)) for name in ("twin-a", "twin-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    started = [name for name, r in results.items() if isinstance(r, str) and "Started run" in r]
    refused = [r for r in results.values() if isinstance(r, AppError)]
    assert len(started) == 1 and len(refused) == 1 and "A training run is in progress" in str(refused[0])
    assert [name for name in ("twin-a", "twin-b") if (root / name).exists()] == started


def test_stop_pressed_twice_stops_the_one_run_once(client, served, root):
    client.predict(*start_args("stop2"), api_name="/start_training")
    trainer = served.ctx.jobs.proc
    wait_for(lambda: last_step(root, "stop2") > 0, what="the first metrics")
    first = client.predict(None, api_name="/stop_training")
    try:
        second = client.predict(None, api_name="/stop_training")
    except AppError as e:                         # the trainer may already have ended
        second = str(e)
    assert "Stopping **stop2**" in first
    assert GENERIC not in second and ("stop2" in second or "No training run is in progress" in second)
    wait_for(lambda: status_of(root, "stop2") == "stopped", what="the run to stop")
    assert trainer.wait(timeout=30) == 0 and served.ctx.jobs.proc is trainer
    assert read_header(root / "stop2")["step"] == last_step(root, "stop2")


def test_with_no_password_only_the_caller_that_started_a_run_can_stop_or_delete_it(client, served, root):
    client.predict(*start_args("owned", key="starter-secret"), api_name="/start_training")
    wait_for(lambda: last_step(root, "owned") > 0, what="the first metrics")
    for key in ("someone-else", None):
        assert "Only the browser that started or added owned can stop it" in refusal(
            lambda key=key: client.predict(password=None, key=key, api_name="/stop_training"))
    assert status_of(root, "owned") == "running"
    assert "Stopping **owned**" in client.predict(password=None, key="starter-secret", api_name="/stop_training")
    wait_for(lambda: status_of(root, "owned") == "stopped", what="the run to stop")
    assert "can delete it" in refusal(lambda: client.predict(run="owned", key="someone-else", api_name="/delete_run"))
    assert (root / "owned").is_dir()
    wait_for(lambda: served.ctx.jobs.proc.poll() is not None, what="the trainer to exit")
    assert "Deleted **owned**" in client.predict(run="owned", key="starter-secret", api_name="/delete_run")


# --- security --------------------------------------------------------------------------------
def test_planted_pickle_checkpoint_is_refused_without_running_code(client, served, root, tmp_path):
    marker = tmp_path / "EXECUTED"
    (root / "planted").mkdir()
    torch.save({"weights": PlantedPickle(marker)}, root / "planted" / RunDir.WEIGHTS)
    (root / "pickled").mkdir()                                   # a folder holding only a pickle is no checkpoint
    torch.save({"weights": PlantedPickle(marker)}, root / "pickled" / "model.pt")
    for key in ("planted", "pickled"):
        refusal(lambda key=key: client.predict(*generate_args(checkpoint=key), api_name="/generate"))
        client.predict(key, api_name="/describe_checkpoint")
    poll(served.ctx, {}, "planted", None)
    assert not marker.exists()


def test_planted_pickle_optimizer_state_is_refused_on_resume_without_running_code(client, served, root, tmp_path):
    marker = tmp_path / "EXECUTED"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    path = make_checkpoint(root / "trap", corpus_text(), step=10)
    header = read_header(path)
    header["data"] = {"name": "corpus.txt", "chars": len(corpus_text()), "path": str(corpus)}
    save_file(load_file(str(path)), str(path), metadata={"charrnn": json.dumps(header)})
    torch.save({"optimizer": PlantedPickle(marker)}, root / "trap" / "train_state-10.pt")

    assert "Resumed **trap**" in client.predict(None, "trap", 20, 0, api_name="/resume_training")
    assert served.ctx.jobs.proc.wait(timeout=120) == 2
    assert not marker.exists()
    status = poll(served.ctx, {"run": "trap"}, None, None)["status_md"]
    assert "Failed" in status and "train_state-10.pt" in status


def test_gradio_serves_no_file_outside_what_the_app_intends(url, root):
    make_checkpoint(root / "served", corpus_text())
    (root / "served" / "corpus.txt").write_text("a stranger's pasted text", encoding="utf-8")
    targets = {
        f"gradio_api/file={APP_PY}": b"create_demo",
        f"gradio_api/file={BUNDLED / RunDir.WEIGHTS}": b"charrnn",
        f"gradio_api/file={root / 'served' / RunDir.WEIGHTS}": b"charrnn",
        f"gradio_api/file={root / 'served' / 'corpus.txt'}": b"stranger",
        "gradio_api/file=app.py": b"create_demo",
        "gradio_api/file=checkpoints/shakespeare/model.safetensors": b"charrnn",
        "gradio_api/file=/etc/passwd": b"root:",
        "gradio_api/file=%2Fetc%2Fpasswd": b"root:",
        "gradio_api/file=../../../../etc/passwd": b"root:",
        "file=/etc/passwd": b"root:",
        "file=app.py": b"create_demo",
    }
    for path, content in targets.items():
        response = httpx.get(url + path)
        assert response.status_code in (403, 404), path
        assert content not in response.content, path


def test_upload_over_max_file_size_is_rejected_by_the_server(url):
    response = httpx.post(url + "gradio_api/upload",
                          files={"files": ("big.txt", b"a" * (10 * 1024 * 1024 + 1), "text/plain")})
    assert response.status_code == 413
    small = httpx.post(url + "gradio_api/upload", files={"files": ("ok.txt", b"a" * 1000, "text/plain")})
    assert small.status_code == 200


def test_training_controls_need_the_password_and_generation_stays_open(tmp_path):
    assert settings_from_env({"CHARRNN_TRAIN_PASSWORD": "s3cret"}).password == "s3cret"
    assert settings_from_env({"CHARRNN_TRAIN_PASSWORD": ""}).password is None
    root = tmp_path / "checkpoints"
    root.mkdir()
    with launched(root, password="s3cret") as locked, client_of(locked.url) as client:
        for password in (None, "", "wrong", "s3cret "):
            for call in (lambda pw: client.predict(*start_args("locked", password=pw), api_name="/start_training"),
                         lambda pw: client.predict(pw, api_name="/stop_training"),
                         lambda pw: client.predict(pw, "locked", 10, 0, api_name="/resume_training")):
                with nothing_written(root):
                    assert "need the password" in refusal(lambda call=call, pw=password: call(pw))
        assert locked.ctx.jobs.proc is None
        still_serving(client)
        assert "No training run is in progress" in refusal(lambda: client.predict("s3cret",
                                                                                  api_name="/stop_training"))
