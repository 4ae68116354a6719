"""The data side of training in the page (webui/train/static/session.js) against charrnn's trainer, in Chromium:
the same vocabulary and split (characters beyond the Basic Multilingual Plane included, sorted as Python sorts
them), the same learning-rate schedule, the same validation layout, and streams that read on T characters a step
and restart, zeroed, only where they would run off the end."""
from __future__ import annotations

import pytest
from browser_fixtures import script_page

from charrnn.config import TrainConfig
from charrnn.data import Corpus
from charrnn.runs.store import PROJECT_DIR
from charrnn.train import lr_factor

STATIC = PROJECT_DIR / "webui" / "train" / "static"
TEXT = "Über 猫 and 🐈 — the cat sat on the mat.\n\ufb01ne \U0001d49c\uffe5 tail " * 9


@pytest.fixture(scope="module")
def page():
    yield from script_page(STATIC / "trainer.js", STATIC / "session.js")         # its generator is trainer.js's


def test_the_vocabulary_and_split_are_the_trainers(page):
    corpus = Corpus.from_text(TEXT)
    got = page.evaluate("""(t) => { const c = CharrnnSession.corpus(t);
                                    return [c.vocab, Array.from(c.train), Array.from(c.val)]; }""", TEXT)
    assert got == [corpus.vocab.chars, corpus.train.tolist(), corpus.val.tolist()]


@pytest.mark.parametrize("decay, floor", [("cosine", 0.0), ("cosine", 0.1), ("linear", 0.0), ("none", 0.0)])
def test_the_learning_rate_schedule_is_the_trainers(page, decay, floor):
    cfg = TrainConfig(warmup=20, decay=decay, min_lr_ratio=floor)
    points = [(p, s) for s in (0, 5, 19, 20, 400) for p in (-0.1, 0.0, 0.25, 0.5, 0.99, 1.0, 1.7)]
    got = page.evaluate("""([pts, c]) => pts.map(([p, s]) => CharrnnSession.lrFactor(p, s, c))""",
                        [points, {"warmup": cfg.warmup, "decay": cfg.decay, "min_lr_ratio": cfg.min_lr_ratio}])
    assert got == pytest.approx([lr_factor(p, s, cfg) for p, s in points], rel=1e-12)


@pytest.mark.parametrize("seq_len, batch, max_chars", [(16, 4, 0), (7, 3, 50), (64, 64, 0), (500, 2, 0)])
def test_validation_reads_the_held_out_ids_as_the_trainer_lays_them_out(page, seq_len, batch, max_chars):
    ids = Corpus.from_text(TEXT).val
    n = len(ids) - 1 if not max_chars else min(len(ids) - 1, max_chars)
    ids_used = ids[:n + 1]
    b = max(1, min(batch, (len(ids_used) - 1) // max(seq_len, 1)))
    length = (len(ids_used) - 1) // b
    got = page.evaluate("""([ids, t, b, m]) => { const l = CharrnnSession.evalLayout(Int32Array.from(ids), t, b, m);
                                                return l && [l.batch, l.length, Array.from(l.x), Array.from(l.y)]; }""",
                        [ids.tolist(), seq_len, batch, max_chars])
    assert got == [b, length, ids_used[:b * length].tolist(), ids_used[1:b * length + 1].tolist()]


def test_streams_read_on_and_restart_only_off_the_end(page):
    train = list(range(100))                         # ids equal to positions: each row shows where it read
    steps = page.evaluate("""(ids) => { const s = new CharrnnSession.Streams(Int32Array.from(ids), 3, 10, 7);
                                        return Array.from({length: 12}, () => { const b = s.next();
                                          return [Array.from(b.x), Array.from(b.y), b.restarted]; }); }""", train)
    assert all(steps[0][2])                           # the first batch: every stream starts somewhere
    for step, (x, y, restarted) in enumerate(steps):
        for b in range(3):
            row, target = x[b * 10:(b + 1) * 10], y[b * 10:(b + 1) * 10]
            assert row == list(range(row[0], row[0] + 10)) and target == [i + 1 for i in row]
            assert 0 <= row[0] <= 100 - 11
            if step and not restarted[b]:
                assert row[0] == steps[step - 1][0][b * 10] + 10        # read on from where it stopped
            if step and restarted[b]:
                assert steps[step - 1][0][b * 10] + 10 > 100 - 11       # only where it would have run off
    assert any(r for _, _, rs in steps[1:] for r in rs)
