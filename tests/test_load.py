"""Many strangers at once: concurrent generation against a launched app while a run trains.

Twenty clients each ask for 500 characters at the same moment, spread over more checkpoints than the
model cache holds, while a training run goes on and four open pages poll as browsers do. Nothing
here measures speed: every wait is bounded only so that a hung server fails the test.
"""
from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from app_fixtures import TINY_TRAINING, corpus_text, last_step, launched, make_checkpoint, status_of, wait_for
from gradio_client import Client

from charrnn.runs.store import RunDir
from webui.models import BUNDLED_KEY

pytestmark = pytest.mark.slow

CLIENTS = 20
LENGTH = 500
SMALL_RUNS = [f"small-{i}" for i in range(5)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    for seed, name in enumerate(SMALL_RUNS):
        make_checkpoint(root / name, corpus_text(), seed=seed)
    with launched(root) as served:
        yield served


def start_args(run: str) -> list:
    t = TINY_TRAINING
    return [None, "paste", None, None, corpus_text(), t["preset"], t["hidden"], t["layers"], t["seq_len"],
            t["batch_size"], t["lr"], t["iterations"], t["minutes"], run]


def generate_as_a_stranger(url: str, key: str, seed: int, start: threading.Barrier) -> str:
    """One visitor with a client of their own, asking at the same moment as the others (each from an address of
    its own, as the Space's proxy reports it: webui.fair limits what one address may have pending)."""
    client = Client(url, verbose=False, analytics_enabled=False, headers={"x-forwarded-for": f"198.51.100.{seed}"})
    try:
        start.wait(timeout=120)
        return client.predict(key, "the ", 0.8, LENGTH, 0, seed, api_name="/generate")
    finally:
        client.close()


def poll_event(url: str) -> dict:
    """The hidden poll a page runs when it opens, found in the served config as the browser finds it: the page's
    load event, whose outputs are the ones the timer's tick refreshes (the training view and checkpoint lists)."""
    dependencies = httpx.get(url + "config", timeout=60).json()["dependencies"]
    on_tick = [d for d in dependencies if any(event == "tick" for _, event in d["targets"])]
    on_load = [d for d in dependencies if any(event == "load" for _, event in d["targets"])
               and len(d["outputs"]) > 1]                       # the other load event sets the browser's key
    assert len(on_load) == 1 and len(on_tick) == 1, "one poll when a page opens, one on the timer"
    load, tick = on_load[0], on_tick[0]
    assert (load["inputs"], load["outputs"]) == (tick["inputs"], tick["outputs"]) and len(load["outputs"]) >= 10
    assert load["api_visibility"] == "private"                                     # not offered in the API
    return load


def poll_as_a_page(url: str, poll: dict, polls: int, page: int) -> list[bool]:
    """An open page's timer: the hidden poll endpoint called by fn_index, as the browser calls it."""
    session, results, visitor = uuid.uuid4().hex, [], {"x-forwarded-for": f"203.0.113.{page}"}
    for _ in range(polls):
        body = {"data": [None] * len(poll["inputs"]), "fn_index": poll["id"], "session_hash": session,
                "event_data": None, "trigger_id": None}
        assert httpx.post(url + "gradio_api/queue/join", json=body, headers=visitor).status_code == 200
        with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=120) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    results.append(message["success"])
                    break
    return results


def test_twenty_concurrent_generations_complete_while_a_run_trains_and_the_cache_stays_bounded(served):
    url, root, cache = served.url, served.root, served.ctx.models.lru
    poll = poll_event(url)
    client = Client(url, verbose=False, analytics_enabled=False)
    try:
        assert "Started run **busy**" in client.predict(*start_args("busy"), api_name="/start_training")
    finally:
        client.close()
    wait_for(lambda: (root / "busy" / RunDir.WEIGHTS).is_file(), what="the training run's first checkpoint")
    keys = [BUNDLED_KEY, "busy", *SMALL_RUNS]                  # more checkpoints than the cache holds
    assert len(keys) > cache.size
    step_before = last_step(root, "busy")

    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(max_workers=CLIENTS + 4) as pool:
        pages = [pool.submit(poll_as_a_page, url, poll, 3, page) for page in range(4)]
        texts = [pool.submit(generate_as_a_stranger, url, keys[i % len(keys)], i + 1, start) for i in range(CLIENTS)]
        texts = [t.result(timeout=600) for t in texts]
        polls = [p.result(timeout=600) for p in pages]

    assert all(text.startswith("the ") and len(text) == 4 + LENGTH for text in texts)
    assert all(all(results) and len(results) == 3 for results in polls)
    wait_for(lambda: last_step(root, "busy") > step_before, what="training to go on")
    assert status_of(root, "busy") == "running"
    cached = [path for path, _mtime in cache.items]
    assert cached and len(cached) <= cache.size and len(set(cached)) == len(cached)   # one entry per file, bounded
