"""One visitor cannot lock the others out: the launched app with webui.fair in front of Gradio's queue."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from app_fixtures import launched
from gradio_client import Client

from webui.models import BUNDLED_KEY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("checkpoints"), max_pending=2) as served:
        yield served


def fn_index(url: str, api_name: str) -> int:
    dependencies = httpx.get(url + "config").raise_for_status().json()["dependencies"]
    return next(d["id"] for d in dependencies if d.get("api_name") == api_name)


def join(url: str, data: list, api_name: str = "generate", visitor: str = "198.51.100.1",
         index: int | None = None) -> httpx.Response:
    """A bare POST to the queue, as a script flooding the Space would send it (results never read)."""
    body = {"data": data, "fn_index": fn_index(url, api_name) if index is None else index,
            "session_hash": uuid.uuid4().hex,
            "event_data": None, "trigger_id": None}
    return httpx.post(url + "gradio_api/queue/join", json=body, headers={"x-forwarded-for": visitor}, timeout=30)


def test_a_flooding_visitor_gets_busy_at_once_and_another_visitor_is_served(served):
    long, index = [BUNDLED_KEY, "ROMEO:", 0.8, 5000, 0, 1], fn_index(served.url, "generate")
    with ThreadPoolExecutor(12) as pool:                     # all at once, as a flood arrives
        replies = list(pool.map(lambda _: join(served.url, long, index=index), range(12)))
    assert [r.status_code for r in replies].count(200) <= 2
    busy = [r for r in replies if r.status_code == 429]
    assert len(busy) >= 10 and "try again in" in busy[0].json()["detail"]
    assert join(served.url, [BUNDLED_KEY, "JULIET:", 0.8, 20, 0, 1], visitor="203.0.113.5").status_code == 200
    client = Client(served.url, verbose=False, analytics_enabled=False)              # the page's own API works
    try:
        assert client.predict(prime="ROMEO:", length=20, seed=1, api_name="/generate").startswith("ROMEO:")
    finally:
        client.close()


def test_a_huge_prime_is_refused_before_it_is_read_and_a_pasted_corpus_is_not(served):
    refused = join(served.url, [BUNDLED_KEY, "x" * 200_000, 0.8, 10, 0, 1], visitor="192.0.2.9")
    assert refused.status_code == 413 and "at most" in refused.json()["detail"]
    pasted = [None, "paste", None, None, "a fine long text\n" * 10_000, "quick", 32, 1, 32, 8, 0.01, 5, 0, None, None]
    assert join(served.url, pasted, api_name="start_training", visitor="192.0.2.10").status_code == 200
