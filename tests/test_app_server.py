"""The launched app over HTTP with gradio_client: streaming generation, a training run's life, the one-job lock;
and app.py as the thin entry point that exposes the module-level ``demo``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from app_fixtures import TINY_TRAINING, corpus_text, is_prefix_chain, last_step, launched, status_of, wait_for
from gradio_client import Client
from gradio_client.exceptions import AppError

from charrnn.runs.store import PROJECT_DIR, RunDir, read_header
from webui.models import BUNDLED_KEY
from webui.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app served with an empty checkpoints folder of its own (the bundled model stays offered)."""
    root = tmp_path_factory.mktemp("checkpoints")
    bundled = Settings(root=root).bundled / RunDir.WEIGHTS
    if not bundled.is_file():
        pytest.fail(f"the bundled checkpoint {bundled} is missing; the app must open ready")
    with launched(root) as served:
        yield served


@pytest.fixture(scope="module")
def client(served):
    client = Client(served.url, verbose=False, analytics_enabled=False)
    yield client
    client.close()


def start_args(run: str) -> list:
    t = TINY_TRAINING
    return [None, "paste", None, None, corpus_text(), t["preset"], t["hidden"], t["layers"], t["seq_len"],
            t["batch_size"], t["lr"], t["iterations"], t["minutes"], run]


def test_generation_streams_from_the_bundled_checkpoint(client):
    job = client.submit(BUNDLED_KEY, "ROMEO:", 0.8, 400, 0, 3, api_name="/generate")
    final = job.result(timeout=120)
    updates = job.outputs()
    assert len(updates) >= 2 and is_prefix_chain(updates)          # the prime first, then by time, then the end
    assert updates[0] == "ROMEO:" and final == updates[-1] and len(final) == len("ROMEO:") + 400


def test_bad_requests_come_back_as_clear_errors(client):
    with pytest.raises(AppError, match="Top-k must be"):
        client.predict(BUNDLED_KEY, "x", 0.8, 10, -1, 0, api_name="/generate")
    with pytest.raises(AppError, match="Temperature must be a number from 0 to 2"):
        client.predict(BUNDLED_KEY, "x", -1.0, 10, 0, 0, api_name="/generate")
    with pytest.raises(AppError, match="out of range; allowed 1 to 4096"):
        client.predict(*start_args("bad")[:6], 0, *start_args("bad")[7:], api_name="/start_training")


def test_a_run_is_started_followed_refused_twice_stopped_resumed_and_generated_from(served, client):
    root = served.root
    assert "Started run **tiny**" in client.predict(*start_args("tiny"), api_name="/start_training")
    wait_for(lambda: last_step(root, "tiny") > 0, what="the first metrics")

    with pytest.raises(AppError, match="A training run is in progress: tiny"):
        client.predict(*start_args("second"), api_name="/start_training")
    assert not (root / "second").exists()

    assert "Stopping **tiny**" in client.predict(None, api_name="/stop_training")
    wait_for(lambda: status_of(root, "tiny") == "stopped", what="the run to stop")
    wait_for(lambda: served.ctx.jobs.proc.poll() is not None, what="the trainer to exit")
    stopped_at = read_header(root / "tiny")["step"]
    assert stopped_at == last_step(root, "tiny") > 0                 # the final checkpoint is the last step

    text = client.predict("tiny", "the ", 0.5, 60, 0, 1, api_name="/generate")
    assert text.startswith("the ") and len(text) == 4 + 60

    assert "Resumed **tiny**" in client.predict(None, "tiny", 20, 0, api_name="/resume_training")
    wait_for(lambda: status_of(root, "tiny") == "finished", what="the resumed run to finish")
    assert read_header(root / "tiny")["step"] == stopped_at + 20


def test_fields_an_api_caller_omits_take_the_named_presets_values(served, client):
    from charrnn.config import PRESETS

    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/start_training"]
    params = {p["parameter_name"]: p for p in endpoint["parameters"]}
    assert params["hidden"]["parameter_default"] is None and params["start_from"]["parameter_default"] is None
    assert params["source"]["parameter_default"] == "bundled"                       # the page's own default stays
    message = client.predict(source="paste", pasted=corpus_text(), preset="quick", iterations=3, minutes=0,
                             run_name="omitted", api_name="/start_training")
    assert "Started run **omitted**" in message
    config = RunDir(served.root / "omitted").read_config()
    model, train = PRESETS["quick"]
    assert {k: config["model_config"][k] for k in model} == model            # not the page form's (auto's) values
    assert {k: config["train_config"][k] for k in train if k not in ("iterations", "minutes")} == \
        {k: v for k, v in train.items() if k not in ("iterations", "minutes")}
    assert config.get("init", "none") == "none"                              # a fixed preset starts from zero
    wait_for(lambda: status_of(served.root, "omitted") == "finished", what="the run to finish")
    wait_for(lambda: served.ctx.jobs.proc.poll() is not None, what="the trainer to exit")


IMPORT_APP = """
import gradio as gr
import app
assert isinstance(app.demo, gr.Blocks), type(app.demo)
print("demo: a gr.Blocks")
"""


def test_app_py_is_a_thin_entry_point_exposing_a_module_level_demo(tmp_path):
    """Spaces and gradio's reload mode import app.py and look for ``demo``; importing it must not serve it."""
    entry = PROJECT_DIR / "app.py"
    lines = entry.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 40, f"app.py has {len(lines)} lines; the app belongs in webui/"

    root = tmp_path / "checkpoints"
    root.mkdir()
    env = {**os.environ, "CHARRNN_CHECKPOINTS": str(root), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("CHARRNN_TRAIN_PASSWORD", None)
    # a fresh interpreter in the project folder, as `python app.py` and Spaces run it; timeout bounds a hang only
    done = subprocess.run([sys.executable, "-c", IMPORT_APP], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "demo: a gr.Blocks" in done.stdout
    assert list(root.iterdir()) == []                   # importing wrote nothing into the checkpoints folder


def test_the_launched_queue_polls_gently_when_idle(tmp_path):
    """Gradio's queue looks for events every 1 ms by default: 5-6% of a core taken from the trainer on an idle
    2-vCPU Space. As launched, it looks every QUEUE_IDLE_POLL_S and still serves a request."""
    from app_fixtures import free_port

    from webui.context import AppContext
    from webui.demo import QUEUE_IDLE_POLL_S, QUEUE_PROGRESS_POLL_S, create_demo, launch

    ctx = AppContext(Settings(root=tmp_path))
    demo = create_demo(ctx.settings, ctx)
    port = free_port()
    launch(demo, ctx, prevent_thread_lock=True, server_port=port, quiet=True)
    try:
        assert demo._queue.sleep_when_free >= QUEUE_IDLE_POLL_S > 0.001
        assert demo._queue.progress_update_sleep_when_free >= QUEUE_PROGRESS_POLL_S > 0.01
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        text = client.predict(BUNDLED_KEY, "ROMEO:", 0.8, 40, 0, 1, api_name="/generate")
        client.close()
        assert isinstance(text, str) and text.startswith("ROMEO:") and len(text) > len("ROMEO:")
    finally:
        demo.close()
