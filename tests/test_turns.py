"""webui.turns: the one trainer is shared fairly. A visitor whose run has just ended, while someone else asked for the
trainer during it, waits before starting or resuming again; with nobody else waiting they go on at once. Every time
is injected (``now``), none read from the clock."""
from __future__ import annotations

import dataclasses
import os

import pytest
from app_fixtures import app_contexts, app_settings, corpus_text, make_checkpoint

from charrnn.runs.jobs import Busy, Job
from charrnn.runs.store import RunDir
from webui import owners
from webui.errors import UserError
from webui.train import actions
from webui.turns import Turns, askers

A, B = "192.0.2.1", "198.51.100.7"
T = 1_000_000.0                     # when A's run began
ENDED = T + 1800                    # when it ended


def test_with_nobody_else_waiting_the_last_trainer_goes_on_at_once():
    turns = Turns(cooldown_s=600)
    turns.began(askers("key-a", A), "a", T)
    turns.check(askers("key-a", A), ENDED + 1, ENDED)


def test_someone_who_waited_during_the_run_goes_first_for_the_cooldown():
    turns, a, b = Turns(cooldown_s=600), askers("key-a", A), askers("key-b", B)
    turns.began(a, "a", T)
    turns.asked(b, T + 100)                                             # B found the trainer busy
    with pytest.raises(UserError, match="someone else has been waiting for the trainer: it is theirs first. Try "
                                        "again in 9 minutes"):
        turns.check(a, ENDED + 60, ENDED)
    turns.check(b, ENDED + 60, ENDED)                                   # B is not held back
    turns.check(a, ENDED + 600, ENDED)                                  # the cooldown has passed


def test_a_new_key_from_the_same_address_is_still_the_same_visitor():
    turns = Turns(cooldown_s=600)
    turns.began(askers("key-a", A), "a", T)
    turns.asked(askers("key-b", B), T + 100)
    with pytest.raises(UserError, match="Try again in"):
        turns.check(askers("another-key", A), ENDED + 60, ENDED)
    with pytest.raises(UserError, match="Try again in"):
        turns.check(askers("key-a"), ENDED + 60, ENDED)                 # the same key, its address unknown


def test_waits_from_before_the_latest_run_and_the_waiters_own_turn_no_longer_count():
    turns, a, b = Turns(cooldown_s=600), askers("key-a", A), askers("key-b", B)
    turns.asked(b, T - 50)                                              # before A's run began
    turns.began(a, "a", T)
    turns.check(a, ENDED + 60, ENDED)
    turns.asked(b, T + 100)
    turns.began(b, "b", ENDED + 10)                                     # B had their turn
    assert not turns.others_waiting(a)


# --- through Start and Resume ------------------------------------------------------------------------------------
@pytest.fixture
def ctx(tmp_path, monkeypatch):
    """An app with a resumable run 'mine' of visitor A (key 'key-a'); its trainer is never spawned."""
    with app_contexts() as make:
        ctx = make(app_settings(tmp_path, corpus=True))
        monkeypatch.setattr(ctx.jobs, "spawn", lambda run: Job(run.name, 4242))
        data = ctx.settings.data_dir / "tiny.txt"
        run = ctx.settings.root / "mine"
        make_checkpoint(run, corpus_text(), step=100, data={"name": "tiny.txt", "path": str(data)})
        RunDir(run).save_train_state(100, {})
        owners.record_owner(run, "key-a", A)
        yield ctx


def resume(ctx, now: float) -> str:
    return actions.resume_training(ctx, None, "mine", 100, 0, "key-a", visitor=A, now=now)


def start_b(ctx, now: float) -> str:
    from test_actions import TINY_VALUES
    return actions.start_training(ctx, None, "paste", None, None, corpus_text(), "quick", TINY_VALUES, "b-run",
                                  key="key-b", visitor=B, now=now)


def run_ends(ctx, when: float) -> None:
    """The run 'mine' writes its final status at ``when``."""
    run = RunDir(ctx.settings.root / "mine")
    run.write_final_status("finished", step=100, pid=4242)
    os.utime(run.status_file, (when, when))


def test_a_visitor_resuming_right_after_their_run_ended_waits_while_someone_else_is_waiting(ctx, monkeypatch):
    assert "Resumed **mine**" in resume(ctx, T)
    with monkeypatch.context() as busy:                                 # A's run trains: B is refused, and waits
        busy.setattr(ctx.jobs, "active", lambda: Job("mine", 4242))
        with pytest.raises(Busy):
            start_b(ctx, T + 100)
    run_ends(ctx, ENDED)
    with pytest.raises(UserError, match="it is theirs first. Try again in 9 minutes"):
        resume(ctx, ENDED + 60)
    assert "Started run **b-run**" in start_b(ctx, ENDED + 120)          # B's turn


def test_a_visitor_resuming_right_after_their_run_ended_goes_on_when_nobody_else_waits(ctx):
    assert "Resumed **mine**" in resume(ctx, T)
    run_ends(ctx, ENDED)
    assert "Resumed **mine**" in resume(ctx, ENDED + 1)


def test_after_the_cooldown_or_with_a_password_nobody_waits(ctx):
    assert "Resumed **mine**" in resume(ctx, T)
    ctx.turns.asked(askers("key-b", B), T + 100)
    run_ends(ctx, ENDED)
    assert "Resumed **mine**" in resume(ctx, ENDED + 600)
    ctx.turns.asked(askers("key-b", B), ENDED + 700)
    run_ends(ctx, ENDED + 2000)
    guarded = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, password="pw"))
    assert "Resumed **mine**" in actions.resume_training(guarded, "pw", "mine", 100, 0, "key-a", visitor=A,
                                                         now=ENDED + 2001)
