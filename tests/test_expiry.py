"""webui.expiry: a visitor's run left untouched for a day expires, and expired runs are removed, least recently
touched first, when the runs' cap is reached (D5: a folder filled to its cap no longer locks everyone out of Start
and add-model). The operator's runs (no owner.json) never expire, nor does anything while a password is set."""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from app_fixtures import app_contexts, app_settings, corpus_text, make_checkpoint

from charrnn.runs.jobs import Job
from webui import owners
from webui.errors import UserError
from webui.expiry import expired_runs, make_room
from webui.quotas import folder_bytes
from webui.train import actions
from webui.transfer import add_model

DAY = 86400.0


def aged(directory: Path, when: float) -> None:
    """Make every file of the run (and its folder) last touched at ``when``."""
    for path in [*directory.iterdir(), directory]:
        os.utime(path, (when, when))


def visitor_run(root: Path, name: str, when: float, visitor: str = "192.0.2.1") -> Path:
    make_checkpoint(root / name, corpus_text())
    owners.record_owner(root / name, f"key-of-{name}", visitor)
    aged(root / name, when)
    return root / name


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    """An app whose runs folder holds the operator's run 'op' (5 days old), visitors' runs 'older' (4 days), 'old'
    (3 days) and 'fresh' (a minute); nothing is trained."""
    with app_contexts() as make:
        ctx = make(app_settings(tmp_path, corpus=True))
        monkeypatch.setattr(ctx.jobs, "spawn", lambda run: Job(run.name, 4242))
        root, now = ctx.settings.root, time.time()
        make_checkpoint(root / "op", corpus_text())
        aged(root / "op", now - 5 * DAY)
        visitor_run(root, "older", now - 4 * DAY)
        visitor_run(root, "old", now - 3 * DAY, visitor="198.51.100.7")
        visitor_run(root, "fresh", now - 60)
        yield ctx


def full(ctx):
    """``ctx`` with its runs' cap at what they take now: anything new needs room."""
    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings,
                                                                 max_checkpoints_bytes=folder_bytes(ctx.settings.root)))


def runs(ctx) -> list[str]:
    return sorted(p.name for p in ctx.settings.root.iterdir() if not p.name.startswith("."))     # not the secret


def test_an_expired_visitor_run_is_removed_oldest_first_when_the_cap_is_reached(ctx, tmp_path):
    model, now = make_checkpoint(tmp_path / "file", corpus_text()), time.time()
    assert "Added **new1**" in add_model(full(ctx), None, str(model), "new1", "key-b", visitor="203.0.113.5", now=now)
    assert runs(ctx) == ["fresh", "new1", "old", "op"]                       # the least recently touched went
    assert "Added **new2**" in add_model(full(ctx), None, str(model), "new2", "key-b", visitor="203.0.113.5", now=now)
    assert runs(ctx) == ["fresh", "new1", "new2", "op"]
    with pytest.raises(UserError, match="with this model they would pass this server's .*: delete a run"):
        add_model(full(ctx), None, str(model), "new3", "key-b", visitor="203.0.113.5", now=now)
    assert runs(ctx) == ["fresh", "new1", "new2", "op"]                      # the operator's never expires


def test_a_start_makes_room_the_same_way(ctx):
    from test_actions import TINY_VALUES
    over = dataclasses.replace(full(ctx), settings=dataclasses.replace(
        full(ctx).settings, max_checkpoints_bytes=folder_bytes(ctx.settings.root) - 1))
    message = actions.start_training(over, None, "paste", None, None, corpus_text(), "quick", TINY_VALUES, "mine",
                                     visitor="203.0.113.5", now=time.time())
    assert "Started run **mine**" in message and "older" not in runs(ctx) and "old" in runs(ctx)


def test_expired_runs_stay_while_there_is_room(ctx):
    assert make_room(ctx, 1000, time.time()) == []
    assert runs(ctx) == ["fresh", "old", "older", "op"]


def test_runs_expire_a_day_after_they_were_last_touched(ctx):
    now = time.time()
    assert [p.name for p in expired_runs(ctx.settings, now)] == ["older", "old"]
    assert [p.name for p in expired_runs(ctx.settings, now - 2.5 * DAY)] == ["older"]
    aged(ctx.settings.root / "older", now)                                   # trained again: no longer expired
    assert [p.name for p in expired_runs(ctx.settings, now)] == ["old"]


def test_with_a_password_set_nothing_expires(ctx):
    guarded = dataclasses.replace(ctx.settings, password="pw")
    assert expired_runs(guarded, time.time()) == []
