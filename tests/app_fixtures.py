"""Helpers for the app tests: a tiny corpus and checkpoint, app settings and contexts, a fake trainer, a launched
app, waiting, and killing trainers.

Importing this module imports neither gradio nor webui: the helpers that need webui import it when called, and only
``launched`` (and ``wired``, handed a built tab) touch gradio. So the tests of gradio-free modules use them too.
"""
from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.schema import trainer_alive
from charrnn.runs.store import RunDir
from charrnn.vocab import Vocab

PHRASES = ("the cat sat on the mat", "a dog ran to the sun", "we sing of the sea", "you and me")

# A tiny model the trainer runs at hundreds of steps a second: metrics and samples arrive at once.
TINY_TRAINING = dict(preset="quick", hidden=32, layers=1, seq_len=32, batch_size=8, lr=0.01, iterations=0, minutes=2.0)


def corpus_text(lines: int = 300) -> str:
    """A few thousand characters of repeated phrases: quick to learn, long enough for any small seq_len."""
    return "\n".join(f"{PHRASES[i % 4]} {i % 9}" for i in range(lines)) + "\n"


def make_checkpoint(directory: Path, text: str, step: int = 10, seed: int = 0, **meta) -> Path:
    """A small untrained checkpoint of ``text``'s vocabulary, written as the trainer would (``meta``: header fields)."""
    vocab = Vocab.from_text(text)
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=16))
    directory.mkdir(parents=True, exist_ok=True)
    header = {"run": directory.name, "step": step, "elapsed": 1.0, "best_val_loss": 2.5, "val_loss": 2.5,
            "params": model.num_params(), "data": {"name": "tiny.txt", "chars": len(text), "path": ""},
            "train_config": {"iterations": step, "minutes": 0.0}, **meta}
    RunDir(directory).keep(model, vocab, header)
    return directory / RunDir.WEIGHTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 90.0, what: str = "condition", interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds.

    The timeout only bounds a hung test; no assertion depends on how fast anything ran.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def kill_trainers(root: Path, slot=None) -> None:
    """SIGKILL the process group of every trainer recorded under ``root`` (and the supervisor ``slot``'s child)."""
    pids = set()
    if slot is not None and slot.proc is not None:
        pids.add(slot.proc.pid)
    for d in Path(root).glob("*"):
        pid = RunDir(d).status().get("pid") if d.is_dir() else None
        if is_charrnn_process(pid):
            pids.add(pid)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)   # trainers run in their own session: group id = pid
        except (ProcessLookupError, PermissionError):
            pass
    if slot is not None and slot.proc is not None:
        slot.proc.wait(timeout=30)


def is_charrnn_process(pid) -> bool:
    """A live trainer, as ``trainer_alive`` tells one (charrnn as an argument, not anywhere in a path); where /proc
    cannot tell, not one: a recorded pid may be this test run's own."""
    return isinstance(pid, int) and Path(f"/proc/{pid}/cmdline").is_file() and trainer_alive(pid)


@contextmanager
def fake_trainer_running(root: Path, run: str = "busy"):
    """A sleeping process that looks like a trainer (charrnn on its command line, in its own session), and a run
    ``run`` under ``root`` whose status names it as running; yields the process, killed on leaving."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "charrnn", "train"],
                            start_new_session=True)
    try:
        (Path(root) / run).mkdir(parents=True)
        RunDir(Path(root) / run).write_status("running", pid=proc.pid, iterations=100, minutes=0)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def status_of(root: Path, run: str) -> str:
    return RunDir(Path(root) / run).status().get("state")


def last_step(root: Path, run: str) -> int:
    records = RunDir(Path(root) / run).records()
    return records[-1]["step"] if records else -1


def is_prefix_chain(texts: list[str]) -> bool:
    return all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))


# --- the app's settings and contexts (webui imported when called) ---------------------------
def app_settings(tmp_path: Path, corpus: bool = False, **fields):
    """``webui.settings.Settings`` of an app in ``tmp_path``: checkpoints in ckpts/, the bundled run at
    bundled/shakespeare (absent), bundled corpora in data/ (``corpus``: one, tiny.txt, holding ``corpus_text()``)."""
    from webui.settings import Settings

    data = tmp_path / "data"
    if corpus:
        data.mkdir(parents=True)
        (data / "tiny.txt").write_text(corpus_text(), encoding="utf-8")
    return Settings(root=tmp_path / "ckpts", bundled=tmp_path / "bundled" / "shakespeare", data_dir=data, **fields)


def tiny_context(tmp_path: Path, **fields):
    """An ``AppContext`` on ``app_settings(tmp_path, **fields)`` with one small checkpoint, the run "tiny"."""
    from webui.context import AppContext

    ctx = AppContext(app_settings(tmp_path, **fields))
    make_checkpoint(ctx.settings.root / "tiny", corpus_text())
    return ctx


@contextmanager
def app_contexts():
    """Yields a maker of ``AppContext``s on given settings; the trainers of each are killed on leaving."""
    from webui.context import AppContext

    made = []
    try:
        yield lambda settings: made.append(AppContext(settings)) or made[-1]
    finally:
        for ctx in made:
            kill_trainers(ctx.settings.root, ctx.jobs)


def model_of(ctx, key: str = "tiny"):
    """The (model, vocab) the context's cache holds for the picker value ``key``."""
    from webui.models import resolve_checkpoint

    model, vocab, _ = ctx.models.get(resolve_checkpoint(ctx.settings, key))
    return model, vocab


def wired(tab, *outputs):
    """The handler a tab's ``wire`` attached to an event that writes exactly ``outputs`` (``tab.demo``: the Blocks
    the tab was built and wired in)."""
    fns = [f.fn for f in tab.demo.fns.values() if f.fn is not None and list(f.outputs) == list(outputs)]
    assert fns, "no handler writes those outputs"
    return fns[0]


# --- a launched app ------------------------------------------------------------------------
@dataclass
class Served:
    """A launched app: its URL, and the context its handlers share (settings, job supervisor, caches)."""

    url: str
    ctx: object            # webui.context.AppContext

    @property
    def settings(self):
        return self.ctx.settings

    @property
    def root(self) -> Path:
        return self.ctx.settings.root


@contextmanager
def launched(root: Path, **settings):
    """``create_demo(Settings(root=root, **settings))`` served as app.py serves it (queue, upload cap) on a free
    localhost port; yields a ``Served``. Trainers it started are killed afterwards.

    webui is imported here, not at the top, so tests of gradio-free modules can use the other helpers."""
    from webui.context import AppContext
    from webui.demo import create_demo, launch
    from webui.settings import Settings

    # every test client comes from 127.0.0.1: one visitor, who may start as many runs as the tests do
    ctx = AppContext(Settings(root=root, **{"visitor_runs": 1000, **settings}))
    demo = create_demo(ctx.settings, ctx)
    port = free_port()
    launch(demo, ctx, prevent_thread_lock=True, server_port=port, quiet=True)
    try:
        yield Served(f"http://127.0.0.1:{port}/", ctx)
    finally:
        kill_trainers(ctx.settings.root, ctx.jobs)
        demo.close()


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
