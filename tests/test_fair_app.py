"""One visitor cannot lock the others out: the launched app with webui.fair's front door before Gradio's routes."""
from __future__ import annotations

import socket
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from app_fixtures import launched, wait_for
from gradio_client import Client

from webui.models import BUNDLED_KEY

pytestmark = pytest.mark.slow

# Every request comes from this machine. uvicorn believes X-Forwarded-For from 127.0.0.1 (its FORWARDED_ALLOW_IPS),
# so a header sent from there names the visitor, as from the Spaces proxy; 127.0.0.2 is a client nothing trusts,
# and 127.0.0.3 a proxy the app is told to trust (CHARRNN_TRUSTED_PROXIES).
STRANGER, PROXY = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("checkpoints"), max_pending=2, trusted_proxies=(PROXY,)) as served:
        yield served


def dependency(url: str, api_name: str) -> dict:
    dependencies = httpx.get(url + "config").raise_for_status().json()["dependencies"]
    return next(d for d in dependencies if d.get("api_name") == api_name)


def join(url: str, data: list, api_name: str = "generate", visitor: str = "198.51.100.1",
         event: dict | None = None) -> httpx.Response:
    """A bare POST to the queue, as a script flooding the Space would send it (results never read); ``event``: the
    function's dependency, if already read. Inputs past ``data`` are None."""
    event = event or dependency(url, api_name)
    body = {"data": data + [None] * (len(event["inputs"]) - len(data)), "fn_index": event["id"],
            "session_hash": uuid.uuid4().hex, "event_data": None, "trigger_id": None}
    return httpx.post(url + "gradio_api/queue/join", json=body, headers={"x-forwarded-for": visitor}, timeout=30)


def api_call(url: str, api_name: str, data: list, forwarded: str | None = None, source: str | None = None) -> int:
    """A direct call of a function outside the queue (/gradio_api/api/NAME), from address ``source``; its status."""
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=120) as client:
        return client.post(url + f"gradio_api/api/{api_name}", json={"data": data}, headers=headers).status_code


@contextmanager
def held_controls(served):
    """The Train tab's ``controls`` (run at once, outside the queue) held in flight, as a slow function holds its
    requests: it asks the trainer supervisor, made to wait here. Yields the calls that reached it."""
    gate, reached, jobs = threading.Event(), [], served.ctx.jobs

    def waiting():
        reached.append(True)
        gate.wait(120)

    jobs.active = waiting
    try:
        yield reached
    finally:
        gate.set()
        del jobs.active


def flood(pool: ThreadPoolExecutor, served, reached: list, forwarded, source: str | None = None) -> list[Future]:
    """20 calls of the held ``controls`` at once; returns when all but the ones let through are answered."""
    calls = [pool.submit(api_call, served.url, "controls", [None], forwarded(i), source) for i in range(20)]
    wait_for(lambda: sum(c.done() for c in calls) + len(reached) == 20, what="the flood answered or held")
    return calls


def answered(calls: list[Future]) -> list[int]:
    return sorted(c.result() for c in calls if c.done())


def sent_whole(url: str, path: str, declared: int | None, sent: int) -> tuple[int, bool]:
    """POST ``sent`` bytes of a body of ``declared`` bytes (None: chunked, never ended) and read the answer: its
    status, and whether the server waited for the rest of the body (it never comes)."""
    host, port = url.split("//")[1].strip("/").split(":")
    length = f"Content-Length: {declared}" if declared else "Transfer-Encoding: chunked"
    head = f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
    body = b"x" * sent if declared else b"".join(b"4000\r\n" + b"x" * 0x4000 + b"\r\n" for _ in range(sent // 0x4000))
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head.encode() + body)
        try:
            status_line = sock.recv(4096).split(b"\r\n")[0]
        except TimeoutError:
            return 0, True
    return int(status_line.split()[1]), False


def test_a_flooding_visitor_gets_busy_at_once_and_another_visitor_is_served(served):
    long, event = [BUNDLED_KEY, "ROMEO:", 0.8, 5000, 0, 1], dependency(served.url, "generate")
    with ThreadPoolExecutor(12) as pool:                     # all at once, as a flood arrives
        replies = list(pool.map(lambda _: join(served.url, long, event=event), range(12)))
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


@pytest.mark.parametrize("path, status", [
    ("gradio_api/api/generate", 413), ("gradio_api/run/predict", 413), ("gradio_api/call/generate", 413),
    ("gradio_api/queue/join", 413), ("gradio_api/reset", 413), ("gradio_api/cancel", 413),
    ("gradio_api/upload", 413), ("gradio_api/component_server", 404), ("gradio_api/stream/e1", 404),
    ("gradio_api/vibe-edit", 404), ("gradio_api/undo-vibe-edit", 404), ("login", 404)])
def test_a_100_mb_body_is_refused_before_it_is_sent_whole(served, path, status):
    assert sent_whole(served.url, path, declared=100 << 20, sent=64 << 10) == (status, False)


def test_a_chunked_body_is_refused_once_it_passes_its_cap(served):
    # no declared length: the door reads 64 KiB and a byte, of a body that would go on for ever
    assert sent_whole(served.url, "gradio_api/reset", declared=None, sent=256 << 10) == (413, False)
    assert sent_whole(served.url, "gradio_api/call/generate", declared=None, sent=256 << 10) == (413, False)


def test_calls_through_the_api_routes_count_toward_the_visitor_and_another_visitor_is_served(served):
    with ThreadPoolExecutor(20) as pool, held_controls(served) as reached:
        calls = flood(pool, served, reached, lambda i: "198.51.100.20")
        assert len(reached) == 2 and answered(calls) == [429] * 18          # two held, the rest told to wait
        assert api_call(served.url, "read_prime", ["ROMEO:"], "203.0.113.21") == 200
        assert join(served.url, [BUNDLED_KEY, "JULIET:", 0.8, 20, 0, 1], visitor="203.0.113.21").status_code == 200
        client = Client(served.url, verbose=False, analytics_enabled=False)
        try:
            assert client.predict(prime="ROMEO:", length=20, seed=2, api_name="/generate").startswith("ROMEO:")
        finally:
            client.close()
    assert answered(calls) == [200] * 2 + [429] * 18


def test_a_client_that_sends_its_own_forwarded_for_is_counted_as_its_socket_peer(served):
    with ThreadPoolExecutor(20) as pool, held_controls(served) as reached:
        calls = flood(pool, served, reached, lambda i: f"198.51.100.{100 + i}", source=STRANGER)
        assert len(reached) == 2 and answered(calls) == [429] * 18          # twenty "visitors", one peer


def test_through_a_trusted_proxy_the_right_most_untrusted_hop_is_the_visitor(served):
    with ThreadPoolExecutor(20) as pool, held_controls(served) as reached:
        calls = flood(pool, served, reached, lambda i: f"6.6.6.{i}, 198.51.100.30", source=PROXY)
        assert len(reached) == 2 and answered(calls) == [429] * 18          # what the client wrote is not believed
        assert api_call(served.url, "read_prime", ["ROMEO:"], "198.51.100.31", source=PROXY) == 200


def test_the_app_has_no_component_whose_server_functions_need_a_closed_route(served):
    config = httpx.get(served.url + "config").raise_for_status().json()
    assert not [c for c in config["components"] if c.get("props", {}).get("server_fns")]    # /component_server


def test_the_browser_copies_come_from_a_route_that_names_no_server_path(served):
    settings = served.ctx.settings
    page = httpx.get(served.url).raise_for_status().text
    assert str(settings.root) not in page and str(settings.browser_dir) not in page and "charrnn/copies/" in page
    listed = httpx.get(served.url + "charrnn/copies/index.json", headers={"x-forwarded-for": "198.51.100.40"})
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    digest = listed.json()[BUNDLED_KEY]["copy"]
    floats = httpx.get(served.url + f"charrnn/copies/{digest}.bin")
    assert floats.status_code == 200 and "immutable" in floats.headers["cache-control"]
    assert floats.content == (settings.browser_dir / f"{digest}.bin").read_bytes()
    assert httpx.get(served.url + f"gradio_api/file={settings.browser_dir / f'{digest}.bin'}").status_code in (403, 404)
    assert httpx.post(served.url + "charrnn/copies/index.json").status_code == 405      # the front door: GET only
