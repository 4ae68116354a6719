"""webui.quotas: what one visitor may take of a public server. D4: one address's uploads (and files fetched) are
counted per minute and as kept, at the front door, before anything is read or sent; D5: one address's runs (and
their bytes) are bounded, so another visitor can still add a model and start a run. Clocks are injected."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from app_fixtures import app_contexts, app_settings, corpus_text, make_checkpoint
from test_fair import Inner, Request

from charrnn.runs.jobs import Job
from charrnn.runs.weights import read_json
from webui import owners
from webui.errors import UserError
from webui.fair import FrontDoor, Limits
from webui.quotas import ByteMeter, check_owned, owned_runs
from webui.train import actions
from webui.transfer import add_model

UPLOAD, FILE = "/gradio_api/upload", "/gradio_api/file=/tmp/gradio/abc/tiny.zip"
A, B = "192.0.2.1", "198.51.100.7"


class Clock:
    """Monotonic seconds the test sets."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def quota_door(clock, inner=None, **quotas):
    limits = Limits(most=3, room=100, small_body=1000, max_body=50_000, max_upload=20_000, **quotas)
    return FrontDoor(inner or Inner(), lambda: [], quick=lambda key: False, takes_text=lambda key: False,
                     limits=limits, clock=clock)


def send(app, path=UPLOAD, body=b"", client=A, method="POST", declared=True) -> Request:
    headers = [("content-length", str(len(body)))] if declared else []
    request = Request(path, body, method=method, client=client, headers=headers)
    asyncio.run(app(request.scope, request.receive, request.send))
    return request


def status(request: Request) -> int:
    return request.out[0]["status"]


def detail(request: Request) -> str:
    import json
    return json.loads(request.out[1]["body"])["detail"]


# --- the meter -------------------------------------------------------------------------------------------------
def test_the_meter_counts_a_visitors_bytes_in_a_window_and_says_when_more_fit():
    clock = Clock()
    meter = ByteMeter(keep_s=3600, clock=clock)
    meter.add(A, 40)
    clock.now += 30
    meter.add(A, 50)
    meter.add(B, 70)
    assert (meter.since(A, 60), meter.since(B, 60)) == (90, 70)
    assert meter.wait_s(A, 60, allowed=100, size=10) == 0.0                 # 100 fits
    assert meter.wait_s(A, 60, allowed=100, size=20) == 30.0                # once the first 40 leave the minute
    assert meter.wait_s(A, 60, allowed=100, size=101) == float("inf")       # never
    clock.now += 31
    assert meter.since(A, 60) == 50 and meter.since(A, 3600) == 90


def test_the_meter_forgets_visitors_whose_bytes_left_its_window():
    clock = Clock()
    meter = ByteMeter(keep_s=120, clock=clock)
    for i in range(50):
        meter.add(f"203.0.113.{i}", 10)
    clock.now += 200
    meter.add(A, 1)
    assert list(meter.moved) == [A]


# --- D4: uploads and files at the front door -------------------------------------------------------------------
def test_one_visitors_uploads_are_refused_past_a_minutes_quota_while_another_visitor_uploads():
    clock, inner = Clock(), Inner()
    door = quota_door(clock, inner, upload_per_minute=10_000, upload_kept=1_000_000)
    assert [status(send(door, body=b"x" * 4000)) for _ in range(2)] == [200, 200]
    refused = send(door, body=b"x" * 4000)
    assert status(refused) == 429 and refused.taken == 0                     # refused before its body is read
    assert "You have uploaded 7.8 KiB in the last minute" in detail(refused)
    assert "Try again in 60 s." in detail(refused) and dict(refused.out[0]["headers"])[b"retry-after"] == b"60"
    assert status(send(door, body=b"x" * 4000, client=B)) == 200             # another visitor is not held up
    clock.now += 61
    assert status(send(door, body=b"x" * 4000)) == 200                       # the minute has passed
    assert len(inner.bodies) == 4


def test_an_upload_with_no_declared_length_is_counted_as_read_and_never_reaches_the_app_past_the_quota():
    clock, inner = Clock(), Inner()
    door = quota_door(clock, inner, upload_per_minute=10_000)
    assert status(send(door, body=b"x" * 6000, declared=False)) == 200
    assert status(send(door, body=b"x" * 6000, declared=False)) == 429
    assert len(inner.bodies) == 1


def test_a_visitors_uploads_kept_by_the_server_are_bounded_over_the_hours_they_are_kept():
    clock = Clock()
    door = quota_door(clock, upload_per_minute=10_000, upload_kept=20_000, upload_kept_s=7200)
    for _ in range(5):
        assert status(send(door, body=b"x" * 4000)) == 200
        clock.now += 61
    refused = send(door, body=b"x" * 4000)
    assert status(refused) == 429
    assert detail(refused) == ("Your uploads kept on this server come to 19.5 KiB (an upload is kept up to 2 hours); "
                               "it keeps 19.5 KiB of one visitor's, this upload included. Try again in 115 minutes.")
    clock.now += 7200
    assert status(send(door, body=b"x" * 4000)) == 200


def test_an_upload_bigger_than_the_quota_itself_is_refused_for_good():
    refused = send(quota_door(Clock(), upload_per_minute=1000), body=b"x" * 4000)
    assert status(refused) == 413 and "Send a smaller file" in detail(refused)


@pytest.mark.parametrize("path", [FILE, "/charrnn/copies/0123456789abcdef.bin"], ids=["download", "browser-copy"])
def test_files_sent_to_a_visitor_are_counted_and_refused_past_a_minutes_quota(path):
    class Big(Inner):
        async def __call__(self, scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"z" * 6000})

    clock = Clock()
    door = quota_door(clock, Big(), download_per_minute=10_000)
    assert [status(send(door, path, method="GET")) for _ in range(2)] == [200, 200]
    refused = send(door, path, method="GET")
    assert status(refused) == 429 and "You have fetched 11.7 KiB of files in the last minute" in detail(refused)
    assert status(send(door, path, method="GET", client=B)) == 200
    clock.now += 61
    assert status(send(door, path, method="GET")) == 200


def test_without_quotas_the_front_door_counts_nothing():
    door = quota_door(Clock())
    assert all(status(send(door, body=b"x" * 15_000)) == 200 for _ in range(10))


# --- D5: runs owned ----------------------------------------------------------------------------------------------
@pytest.fixture
def ctx(tmp_path, monkeypatch):
    """An app with a bundled corpus and room for 3 runs per visitor; its trainer is never spawned."""
    with app_contexts() as make:
        ctx = make(app_settings(tmp_path, corpus=True, visitor_runs=3))
        monkeypatch.setattr(ctx.jobs, "spawn", lambda run: Job(run.name, 4242))
        yield ctx


def start(ctx, name: str, visitor: str, key=None) -> str:
    from test_actions import TINY_VALUES
    return actions.start_training(ctx, None, "paste", None, None, corpus_text(), "quick", TINY_VALUES, name,
                                  key=key, visitor=visitor)


def test_one_visitors_many_models_are_refused_past_their_quota_while_another_can_still_add_and_start(ctx, tmp_path):
    model = make_checkpoint(tmp_path / "file", corpus_text())
    for i in range(3):
        assert f"Added **a{i}**" in add_model(ctx, None, str(model), f"a{i}", "key-a", visitor=A)
    for name in ("a3", "a4"):
        with pytest.raises(UserError, match="You already have 3 runs on this server, the most one visitor may "
                                            "keep. Delete one you no longer need"):
            add_model(ctx, None, str(model), name, f"key-{name}", visitor=A)      # a new key changes nothing
    with pytest.raises(UserError, match="You already have 3 runs"):
        start(ctx, "a-run", visitor=A)
    assert not (ctx.settings.root / "a3").exists() and not (ctx.settings.root / "a-run").exists()
    assert "Added **b0**" in add_model(ctx, None, str(model), "b0", "key-b", visitor=B)
    assert "Started run **b-run**" in start(ctx, "b-run", visitor=B, key="key-b")
    assert len(owned_runs(ctx.settings.root, A)) == 3 and len(owned_runs(ctx.settings.root, B)) == 2


def test_a_run_records_its_visitors_digest_not_the_address(ctx, tmp_path):
    model = make_checkpoint(tmp_path / "file", corpus_text())
    add_model(ctx, None, str(model), "mine", "key-a", visitor=A)
    recorded = read_json(ctx.settings.root / "mine" / owners.OWNER)
    salted = owners.visitor_digest(ctx.settings.root, A)
    assert recorded == {"key_sha256": owners.digest("key-a"), "visitor_hmac": salted}
    assert A not in (ctx.settings.root / "mine" / owners.OWNER).read_text()


def test_a_visitors_runs_are_bounded_in_bytes_too(ctx, tmp_path):
    model = make_checkpoint(tmp_path / "file", corpus_text())
    size = model.stat().st_size
    tight = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, visitor_run_bytes=int(1.5 * size)))
    add_model(tight, None, str(model), "one", visitor=A)
    with pytest.raises(UserError, match=r"Your runs on this server take .*; with this one they would pass the .* one "
                                        "visitor may keep"):
        add_model(tight, None, str(model), "two", visitor=A)


def test_a_run_made_without_a_key_counts_for_its_visitor_and_stays_anyones_to_control(ctx, tmp_path):
    model = make_checkpoint(tmp_path / "file", corpus_text())
    add_model(ctx, None, str(model), "keyless", visitor=A)
    assert owned_runs(ctx.settings.root, A) == [ctx.settings.root / "keyless"]
    assert owners.owner_digest(ctx.settings.root / "keyless") is None
    assert owners.may_control(ctx.settings, ctx.settings.root / "keyless", "anyone")


def test_with_a_password_or_an_unknown_visitor_no_run_quota_applies(tmp_path):
    settings = app_settings(tmp_path, visitor_runs=0)
    check_owned(settings, None)
    check_owned(dataclasses.replace(settings, password="pw"), A)
    with pytest.raises(UserError, match="You already have 0 runs"):
        check_owned(settings, A)
