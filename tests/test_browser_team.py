"""Training on more than one thread in the page (webui/train/static/team.js): a batch's streams shared out among Web
Workers gives the loss, every gradient and the carried state of the whole batch on one thread (which
test_browser_trainer.py checks against torch), and the held-out loss too; a whole run in a Worker on two threads
keeps a model whose validation loss torch computes as the page did; a helper that cannot start leaves one thread."""
from __future__ import annotations

import base64

import pytest
from app_fixtures import corpus_text
from browser_fixtures import script_page

from charrnn.data import Corpus
from charrnn.runs.store import PROJECT_DIR, load_checkpoint
from charrnn.train import evaluate
from webui.train.browser import WORKER

STATIC = PROJECT_DIR / "webui" / "train" / "static"
SOURCE = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in WORKER)
HELPERS = "(s) => { self.HELPERS = URL.createObjectURL(new Blob([s], {type: 'text/javascript'})); }"
COMPARE = """async ([layers, size, wasm, carried]) => {
  const C = CharrnnTrain, V = 23, H = 12, B = 7, T = 5;
  const kernels = wasm ? C.wasmKernels() : C.kernels;
  const config = {vocab_size: V, embed: 6, hidden: H, layers, dropout: 0, input_dropout: 0, cell: "lstm"};
  const model = C.initModel(config, 4);
  const x = Int32Array.from({length: B * T}, (_, i) => (i * 7 + 3) % V);
  const y = Int32Array.from({length: B * T}, (_, i) => (i * 5 + 1) % V);
  let state = null;
  if (carried) {
    const n = layers * B * H;
    state = {h: Float32Array.from({length: n}, (_, i) => Math.sin(i) / 2),
             c: Float32Array.from({length: n}, (_, i) => Math.cos(i))};
  }
  const one = C.lossAndGrads(model, x, y, B, T, state, {train: false, kernels});
  const team = await CharrnnTeam.start(size, self.HELPERS);
  try {
    const many = await team.lossAndGrads(model, x, y, B, T, state, {train: false, kernels});
    const rel = (a, b) => {
      let scale = 0, worst = 0;
      for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]));
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      return worst / Math.max(scale, 1e-30);
    };
    const grads = Object.fromEntries(Object.keys(one.grads).map((k) => [k, rel(one.grads[k], many.grads[k])]));
    const lx = Int32Array.from({length: 3 * 11}, (_, i) => (i * 3) % V), ly = lx.map((v) => (v + 1) % V);
    const lossOne = C.streamLoss(model, lx, ly, 3, 11, 4, kernels);
    const lossMany = await team.streamLoss(model, lx, ly, 3, 11, 4, kernels);
    return {size: team.size, loss: [one.loss, many.loss], grads, state: [rel(one.state.h, many.state.h),
            rel(one.state.c, many.state.c)], stream: [lossOne, lossMany], shares: CharrnnTeam.shares(B, size)};
  } finally {
    team.close();
  }
}"""
IN_WORKER = """async ([source, text, cfg]) => {
  const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  const worker = new Worker(url), seen = [];
  const done = await new Promise((resolve) => {
    worker.onmessage = (e) => { seen.push(e.data); if (e.data.type === "done") resolve(e.data); };
    worker.postMessage({type: "train", text, cfg});
  });
  worker.terminate();
  const bytes = CharrnnWeights.safetensors(done.tensors, done.header);
  let s = ""; for (const b of bytes) s += String.fromCharCode(b);
  return {records: seen.filter((m) => m.type === "record"), end: done.end, reason: done.reason,
          header: done.header, file: btoa(s), cores: navigator.hardwareConcurrency};
}"""
CFG = dict(embed=8, hidden=16, layers=1, dropout=0.0, input_dropout=0.0, batch_size=6, seq_len=16, lr=0.01,
           warmup=5, decay="cosine", min_lr_ratio=0.1, weight_decay=0.0, grad_clip=1.0, seconds=0, max_epochs=2,
           eval_every=20, eval_chars=0, patience=0, log_every=5, seed=3, name="in-page")


@pytest.fixture(scope="module")
def page():
    for p in script_page(*(STATIC / name for name in (*WORKER, "weights.js"))):
        p.evaluate(HELPERS, SOURCE)
        yield p


@pytest.mark.parametrize("layers, size, wasm, carried", [(1, 2, True, False), (2, 2, True, True),
                                                          (1, 3, False, True), (2, 3, True, True)])
def test_a_team_computes_the_whole_batchs_loss_gradients_and_state(page, layers, size, wasm, carried):
    out = page.evaluate(COMPARE, [layers, size, wasm, carried])
    assert out["size"] == size
    assert out["shares"] == ([[0, 4], [4, 7]] if size == 2 else [[0, 3], [3, 5], [5, 7]])   # every stream, once
    assert out["loss"][1] == pytest.approx(out["loss"][0], rel=1e-6)
    names = {"embed.weight", "head.weight", "head.bias"} | {f"rnn.{w}_l{n}" for n in range(layers)
                                                            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    assert set(out["grads"]) == names
    for name, worst in out["grads"].items():
        assert worst < 1e-5, name                  # the same sums in another order, rounded to float32
    assert max(out["state"]) < 1e-6                # the state comes back to each stream's place
    one, many = out["stream"]
    assert many["count"] == one["count"] == 33 and many["total"] == pytest.approx(one["total"], rel=1e-6)


def test_shares_never_leave_a_member_without_a_stream(page):
    assert page.evaluate("CharrnnTeam.shares(2, 4)") == [[0, 1], [1, 2]]
    assert page.evaluate("CharrnnTeam.shares(9, 1)") == [[0, 9]]


def test_a_run_in_a_worker_on_two_threads_learns_and_keeps_the_model_it_checked(page, tmp_path):
    text = corpus_text(60)
    out = page.evaluate(IN_WORKER, [SOURCE, text, {**CFG, "threads": 2}])
    assert out["end"] == "finished", out["reason"]
    records = out["records"]
    threads = records[0]["threads"]
    assert threads["chose"] == 2 == out["header"]["threads"] and set(threads["chars_per_s"]) == {"1", "2"}
    checks = [r for r in records if "val_loss" in r]
    assert checks[-1]["val_loss"] < checks[0]["val_loss"] and records[-1]["train_loss"] < records[0]["train_loss"]
    best = min(checks, key=lambda r: r["val_loss"])
    path = tmp_path / "two-threads.safetensors"
    path.write_bytes(base64.b64decode(out["file"]))
    model, vocab, header = load_checkpoint(path)
    assert header["step"] == best["step"]
    corpus = Corpus.from_text(text, vocab)
    torch_val = evaluate(model, corpus.val, CFG["seq_len"], CFG["batch_size"], CFG["eval_chars"])
    assert torch_val == pytest.approx(best["val_loss"], rel=1e-5)      # the team's validation is charrnn's


def test_auto_threads_measures_each_team_the_computer_has_cores_for_and_keeps_the_fastest(page):
    out = page.evaluate(IN_WORKER, [SOURCE, corpus_text(30), {**CFG, "threads": "auto", "max_epochs": 0.5}])
    assert out["end"] == "finished", out["reason"]
    threads = out["records"][0]["threads"]
    rates = {int(n): r for n, r in threads["chars_per_s"].items()}
    assert set(rates) == {1} | {n for n in (2, 4) if n <= out["cores"] and n <= CFG["batch_size"]}
    assert threads["chose"] == max(rates, key=rates.get) == out["header"]["threads"]


def test_a_helper_that_cannot_start_leaves_the_run_on_one_thread(page):
    """A helper script that fails as it loads (a page that forbids Workers fails the same way) costs nothing but
    the second thread."""
    out = page.evaluate("""async ([text, cfg]) => {
      const bad = URL.createObjectURL(new Blob(["throw new Error('no helpers here')"], {type: "text/javascript"}));
      const seen = [];
      const done = await CharrnnLoop.run(text, cfg, {post: (m) => seen.push(m), helpers: bad});
      return {end: done.end, threads: seen.find((m) => m.type === "record").threads, header: done.header};
    }""", [corpus_text(30), {**CFG, "threads": 2, "max_epochs": 0.5}])
    assert out["end"] == "finished"
    assert out["threads"] == {"chose": 1, "chars_per_s": {"1": out["threads"]["chars_per_s"]["1"]}}
    assert out["header"]["threads"] == 1


def test_a_helper_that_stops_answering_fails_the_team_instead_of_hanging(page):
    out = page.evaluate("""async () => {
      const C = CharrnnTrain, B = 4, T = 3;
      const silent = URL.createObjectURL(new Blob([
        "self.onmessage = (e) => { if (e.data.type === 'team-hello') postMessage({id: e.data.id}); };"],
        {type: "text/javascript"}));
      const model = C.initModel({vocab_size: 5, embed: 2, hidden: 3, layers: 1, cell: "lstm"}, 1);
      const x = new Int32Array(B * T), team = await CharrnnTeam.start(2, silent);
      team.patience = 300;
      try {
        await team.lossAndGrads(model, x, x, B, T, null, {train: false});
        return "answered";
      } catch (err) {
        return err.message;
      } finally {
        team.close();
      }
    }""")
    assert out == "a training helper did not answer in 0.3 s"


def test_a_team_that_fails_mid_run_leaves_the_run_on_one_thread_with_nothing_lost(page):
    """The helper's ninth step fails (its first six are the measurement): the step is done again on the run's own
    thread, the run goes on to its end, its first record after says why, and the kept model is whole."""
    crash = ("let steps = 0; self.addEventListener('message', (e) => { if (e.data && e.data.type === 'team-step' "
             "&& ++steps > 8) { e.stopImmediatePropagation(); postMessage({id: e.data.id, error: 'simulated "
             "crash'}); } });\n")
    page.evaluate("(s) => { self.CRASHING = URL.createObjectURL(new Blob([s], {type: 'text/javascript'})); }",
                  crash + SOURCE)
    text = corpus_text(60)
    out = page.evaluate("""async ([text, cfg]) => {
      const seen = [];
      const done = await CharrnnLoop.run(text, cfg, {post: (m) => seen.push(m), helpers: self.CRASHING});
      const records = seen.filter((m) => m.type === "record");
      return {end: done.end, reason: done.reason, header: done.header, records};
    }""", [text, {**CFG, "threads": 2}])
    assert out["end"] == "finished", out["reason"]
    records = out["records"]
    assert records[0]["threads"]["chose"] == 2
    lost = [r for r in records if "team_lost" in r]
    assert len(lost) == 1 and lost[0]["team_lost"] == "simulated crash" and lost[0]["step"] <= 10
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps))
    assert records[-1]["chars_seen"] >= CFG["max_epochs"] * len(Corpus.from_text(text).train)     # ran to its end
    assert out["header"]["threads"] == 1 and out["header"]["best_step"] is not None
