"""The arithmetic of a training step in the page (webui/train/static/trainer.js) against charrnn's CharRNN in torch,
in Chromium: the loss and every parameter's gradient (LSTM of 1 and 2 layers, sizes no multiple of 4) with the
JavaScript and the WebAssembly SIMD matrix products, a state carried from one batch into the next, dropout masks
applied as nn.Dropout applies them, clip_grad_norm_ and two steps of AdamW and Adam (with either set of products),
the script in a Web Worker, and a new model with torch's names, shapes and initial ranges. The WebAssembly products
keep a step's weights in their memory: a weight changed between two steps is read anew."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from browser_fixtures import script_page

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.store import PROJECT_DIR

SCRIPT = PROJECT_DIR / "webui" / "train" / "static" / "trainer.js"
V, E, H, B, T = 27, 8, 13, 3, 7
LOSS_REL, GRAD_REL, WEIGHT_REL = 1e-5, 1e-4, 1e-5
PAGE_HELPERS = """
  self.typed = (tensors) => Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, {shape: t.shape,
                                                                              data: Float32Array.from(t.data)}]));
  self.lists = (arrays) => Object.fromEntries(Object.entries(arrays).map(([k, a]) => [k, Array.from(a)]));
  self.KERNELS = {js: CharrnnTrain.kernels, wasm: CharrnnTrain.wasmKernels()};
"""
# Runs the batches one after another, each from the state the last one ended in (the first from zeros).
STEPS = """([config, tensors, batches, options, [B, T], kernel = "js"]) => {
  options = {...options, kernels: KERNELS[kernel]};
  const model = CharrnnTrain.fromTensors(config, typed(tensors), 5);
  let state = null;
  return batches.map(([x, y]) => {
    const r = CharrnnTrain.lossAndGrads(model, Int32Array.from(x), Int32Array.from(y), B, T, state, options);
    state = r.state;
    const list = (m) => m && Array.from(m);
    const masks = {input: list(r.masks.input), between: r.masks.between.map(list), output: list(r.masks.output)};
    return {loss: r.loss, grads: r.grads && lists(r.grads), h: Array.from(state.h), c: Array.from(state.c), masks};
  });
}"""
# Clips and steps the optimizer after each batch; returns the norms before clipping and the weights after each step.
TRAIN = """([config, tensors, batches, clip, opts, [B, T], kernel = "js"]) => {
  const model = CharrnnTrain.fromTensors(config, typed(tensors));
  const optimizer = new CharrnnTrain.AdamW(model.params, opts);
  let state = null;
  return batches.map(([x, y]) => {
    const r = CharrnnTrain.lossAndGrads(model, Int32Array.from(x), Int32Array.from(y), B, T, state,
                                        {kernels: KERNELS[kernel]});
    state = r.state;
    const norm = CharrnnTrain.clipGradNorm(r.grads, clip);
    optimizer.step(r.grads);
    return {norm, weights: lists(model.params)};
  });
}"""


@pytest.fixture(scope="module")
def page():
    yield from script_page(SCRIPT, PAGE_HELPERS)


def small_model(layers: int, seed: int = 0, **config) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=V, embed=E, hidden=H, layers=layers, **config))


def exported(model: CharRNN) -> dict:
    return {k: {"shape": list(v.shape), "data": v.flatten().tolist()} for k, v in model.state_dict().items()}


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, V, (B, T), generator=gen), torch.randint(0, V, (B, T), generator=gen)) for _ in range(n)]


def as_lists(pairs) -> list:
    return [[x.flatten().tolist(), y.flatten().tolist()] for x, y in pairs]


def rel(got, want: torch.Tensor) -> float:
    """||got - want|| / ||want||: the error of a whole tensor, relative to its size."""
    got = torch.tensor(got, dtype=torch.float64).reshape(want.shape)
    want = want.double()
    return ((got - want).norm() / max(want.norm().item(), 1e-8)).item()


def torch_steps(model: CharRNN, pairs) -> list[dict]:
    """Loss, gradients and final state of each batch, each batch starting from the last one's detached state."""
    out, state = [], None
    for x, y in pairs:
        model.zero_grad(set_to_none=True)
        _, loss, state = model(x, y, state)
        loss.backward()
        state = tuple(t.detach() for t in state)
        out.append({"loss": loss.item(), "grads": {k: p.grad.clone() for k, p in model.named_parameters()},
                    "h": state[0], "c": state[1]})
    return out


def assert_same_step(got: dict, want: dict) -> None:
    assert got["loss"] == pytest.approx(want["loss"], rel=LOSS_REL)
    assert set(got["grads"]) == set(want["grads"])
    errors = {name: rel(got["grads"][name], g) for name, g in want["grads"].items()}
    assert max(errors.values()) < GRAD_REL, errors


@pytest.mark.parametrize("kernel", ["js", "wasm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_the_loss_and_every_gradient_are_torchs(page, layers, kernel):
    model = small_model(layers)
    pairs = batches(1)
    got = page.evaluate(STEPS, [model.config.to_dict(), exported(model), as_lists(pairs), {}, [B, T], kernel])
    assert_same_step(got[0], torch_steps(model, pairs)[0])


@pytest.mark.parametrize("kernel", ["js", "wasm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_a_state_carried_into_the_next_batch_gives_torchs_loss_and_gradients(page, layers, kernel):
    model = small_model(layers, seed=2)
    pairs = batches(2, seed=3)
    got = page.evaluate(STEPS, [model.config.to_dict(), exported(model), as_lists(pairs), {}, [B, T], kernel])
    want = torch_steps(model, pairs)
    for key in ("h", "c"):                             # the state the first batch hands on: torch's (L, B, H)
        assert rel(got[0][key], want[0][key]) < GRAD_REL
    fresh = torch_steps(model, pairs[1:])[0]           # the second batch from zeros: a state dropped would pass
    assert abs(fresh["loss"] - want[1]["loss"]) > 20 * LOSS_REL * want[1]["loss"]
    assert_same_step(got[1], want[1])


@pytest.mark.parametrize("kernel", ["js", "wasm"])
@pytest.mark.parametrize("optimizer", ["adamw", "adam"])
def test_two_clipped_optimizer_steps_leave_torchs_weights(page, optimizer, kernel):
    model = small_model(2, seed=4)
    with torch.no_grad():
        model.head.weight.mul_(20.0)                   # a sharp head: gradients far over the clip
    pairs, clip, lr, decay = batches(2, seed=5), 1.0, 3e-3, 0.01
    tensors = exported(model)
    kind = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    opt = kind(model.parameters(), lr=lr, weight_decay=decay, fused=True)          # as charrnn.train.Trainer
    want, state = [], None
    for x, y in pairs:
        opt.zero_grad(set_to_none=True)
        _, loss, state = model(x, y, state)
        state = tuple(t.detach() for t in state)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item()
        opt.step()
        want.append({"norm": norm, "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}})
    got = page.evaluate(TRAIN, [model.config.to_dict(), tensors, as_lists(pairs), clip,
                                {"lr": lr, "weightDecay": decay, "decoupled": optimizer == "adamw"}, [B, T], kernel])
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        assert w["norm"] > 2 * clip                       # clipping happened, and halved the gradients or more
        assert g["norm"] == pytest.approx(w["norm"], rel=GRAD_REL)
        errors = {name: rel(g["weights"][name], value) for name, value in w["weights"].items()}
        assert max(errors.values()) < WEIGHT_REL, (step, errors)


def masked_reference(model: CharRNN, x, y, masks: dict) -> dict:
    """CharRNN's loss and gradients with the dropout masks given (as nn.Dropout's: 0 or 1 / (1 - p)), layer by layer."""
    params = {k: p.detach().clone().requires_grad_() for k, p in model.named_parameters()}
    mask = lambda m, f: torch.tensor(m, dtype=torch.float32).reshape(B, T, f)   # noqa: E731
    h = params["embed.weight"][x] * mask(masks["input"], E)                      # (B, T, E)
    for layer in range(model.config.layers):
        if layer:
            h = h * mask(masks["between"][layer - 1], H)
        cell = nn.LSTM(h.size(-1), H, batch_first=True)
        weights = {f"{n}_l0": params[f"rnn.{n}_l{layer}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        h, _ = torch.func.functional_call(cell, weights, (h,))                  # (B, T, H)
    logits = F.linear(h * mask(masks["output"], H), params["head.weight"], params["head.bias"])
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    return {"loss": loss.item(), "grads": {k: p.grad for k, p in params.items()}}


def test_dropout_masks_drop_and_scale_as_nn_dropout_and_reach_every_gradient(page):
    model = small_model(2, seed=6, dropout=0.3, input_dropout=0.2)
    pairs = batches(1, seed=7)
    got = page.evaluate(STEPS, [model.config.to_dict(), exported(model), as_lists(pairs), {}, [B, T]])[0]
    masks = got["masks"]
    for numbers, p in ((masks["input"], 0.2), (masks["between"][0], 0.3), (masks["output"], 0.3)):
        assert set(numbers) == {0.0, torch.tensor(1 / (1 - p), dtype=torch.float32).item()}     # dropped, or scaled
        assert abs(numbers.count(0.0) / len(numbers) - p) < 0.12
    assert_same_step(got, masked_reference(model, *pairs[0], masks))


def test_outside_training_nothing_is_dropped(page):
    model = small_model(2, seed=8, dropout=0.5, input_dropout=0.5).eval()
    pairs = batches(1, seed=9)
    got = page.evaluate(STEPS, [model.config.to_dict(), exported(model), as_lists(pairs),
                                {"train": False, "backward": False}, [B, T]])[0]
    with torch.no_grad():
        _, loss, (h, c) = model(*pairs[0])
    assert got["masks"] == {"input": None, "between": [None], "output": None} and got["grads"] is None
    assert got["loss"] == pytest.approx(loss.item(), rel=LOSS_REL)
    assert rel(got["h"], h) < GRAD_REL and rel(got["c"], c) < GRAD_REL


def test_a_new_model_has_torchs_names_shapes_and_initial_ranges(page):
    config = ModelConfig(vocab_size=V, embed=40, hidden=H, layers=2)
    got = page.evaluate("""(config) => Object.entries(CharrnnTrain.toTensors(CharrnnTrain.initModel(config, 7)))
                                          .map(([name, t]) => [name, t.shape, Array.from(t.data)])""", config.to_dict())
    want = CharRNN(config).state_dict()
    assert [(name, shape) for name, shape, _ in got] == [(k, list(v.shape)) for k, v in want.items()]
    bound = 1 / math.sqrt(H)
    for name, _, data in got:
        values = torch.tensor(data)
        if name == "embed.weight":                        # N(0, 1), as nn.Embedding
            assert abs(values.mean().item()) < 0.15 and values.std().item() == pytest.approx(1.0, rel=0.1)
        else:                                             # U(-1/sqrt(H), 1/sqrt(H)), as nn.LSTM and nn.Linear
            assert values.abs().max().item() <= bound
            assert values.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.25), name


def test_the_script_runs_in_a_web_worker_as_in_the_page(page):
    model = small_model(1, seed=10)
    pairs = as_lists(batches(1, seed=11))
    args = [model.config.to_dict(), exported(model), pairs[0], [B, T], SCRIPT.read_text(encoding="utf-8")]
    got = page.evaluate("""([config, tensors, [x, y], [B, T], source]) => new Promise((resolve, reject) => {
      const url = (text) => URL.createObjectURL(new Blob([text], {type: "text/javascript"}));
      const worker = new Worker(url(`importScripts("${url(source)}");
        onmessage = ({data: [config, tensors, x, y, B, T]}) => {
          const model = CharrnnTrain.fromTensors(config, tensors);
          postMessage(CharrnnTrain.lossAndGrads(model, Int32Array.from(x), Int32Array.from(y), B, T).loss);
        };`));
      worker.onmessage = ({data}) => { worker.terminate(); resolve(data); };
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage([config, tensors, x, y, B, T]);
    })""", args)
    with torch.no_grad():
        want = model(*(torch.tensor(v).reshape(B, T) for v in pairs[0]))[1].item()
    assert got == pytest.approx(want, rel=LOSS_REL)


@pytest.mark.parametrize("kernel", ["js", "wasm"])
@pytest.mark.parametrize("n, k, m", [(21, 13, 52), (3, 8, 27), (5, 1, 6), (9, 130, 300), (260, 5, 11)])
def test_each_kernel_adds_the_three_matrix_products(page, kernel, n, k, m):
    gen = torch.Generator().manual_seed(n)
    shapes = ((n, k), (m, k), (n, m), (n, m), (n, k), (m, k))
    X, W, Y, dY, dX, dW = (torch.randn(*shape, generator=gen) for shape in shapes)
    got = page.evaluate("""([kernel, [X, W, Y, dY, dX, dW], [n, k, m]]) => {
      const K = KERNELS[kernel], f = (a) => Float32Array.from(a);
      const y = f(Y), dx = f(dX), dw = f(dW);
      K.xWt(f(X), f(W), y, n, k, m); K.dyW(f(dY), f(W), dx, n, m, k); K.dyTx(f(dY), f(X), dw, n, m, k);
      return {name: K.name, y: Array.from(y), dX: Array.from(dx), dW: Array.from(dw)};
    }""", [kernel, [t.flatten().tolist() for t in (X, W, Y, dY, dX, dW)], [n, k, m]])
    assert got["name"] == {"js": "JavaScript", "wasm": "WebAssembly"}[kernel]          # Chromium has WebAssembly SIMD
    X, W, Y, dY, dX, dW = (t.double() for t in (X, W, Y, dY, dX, dW))
    assert rel(got["y"], Y + X @ W.T) < 1e-6
    assert rel(got["dX"], dX + dY @ W) < 1e-6
    assert rel(got["dW"], dW + dY.T @ X) < 1e-6


def test_weights_changed_in_place_between_two_steps_are_read_anew(page):
    model = small_model(2, seed=12)
    pairs = batches(2, seed=13)
    got = page.evaluate("""([config, tensors, [[x1, y1], [x2, y2]], [B, T]]) => {
      const model = CharrnnTrain.fromTensors(config, typed(tensors)), kernels = KERNELS.wasm;
      CharrnnTrain.lossAndGrads(model, Int32Array.from(x1), Int32Array.from(y1), B, T, null, {kernels});
      for (const w of Object.values(model.params)) for (let i = 0; i < w.length; i++) w[i] *= 1.5;
      const r = CharrnnTrain.lossAndGrads(model, Int32Array.from(x2), Int32Array.from(y2), B, T, null, {kernels});
      return {loss: r.loss, grads: lists(r.grads)};
    }""", [model.config.to_dict(), exported(model), as_lists(pairs), [B, T]])
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    assert_same_step(got, torch_steps(model, pairs[1:])[0])


def test_a_steps_products_keep_each_weight_and_end_when_the_next_steps_begin(page):
    gen = torch.Generator().manual_seed(14)
    n, k, m = 6, 10, 9
    X, W, dY = torch.randn(n, k, generator=gen), torch.randn(m, k, generator=gen), torch.randn(n, m, generator=gen)
    got = page.evaluate("""([X, W, dY, [n, k, m]]) => {
      const wasm = KERNELS.wasm, w = Float32Array.from(W), f = (a) => Float32Array.from(a);
      const run = (K) => {                      // each product twice with the same weight: the second finds it kept
        const y = new Float32Array(n * m), dx = new Float32Array(n * k);
        for (let i = 0; i < 2; i++) { K.xWt(f(X), w, y, n, k, m); K.dyW(f(dY), w, dx, n, m, k); }
        return [Array.from(y), Array.from(dx)];
      };
      const first = wasm.forStep(), before = run(first);
      w.fill(0);                                 // the next step reads the weight anew
      const after = run(wasm.forStep());
      let ended = null;
      try { first.xWt(f(X), w, new Float32Array(n * m), n, k, m); } catch (e) { ended = e.message; }
      return {before, after, ended};
    }""", [X.flatten().tolist(), W.flatten().tolist(), dY.flatten().tolist(), [n, k, m]])
    X, W, dY = X.double(), W.double(), dY.double()
    assert rel(got["before"][0], 2 * X @ W.T) < 1e-6 and rel(got["before"][1], 2 * dY @ W) < 1e-6
    assert got["after"] == [[0.0] * (n * m), [0.0] * (n * k)]
    assert "ended" in got["ended"]
