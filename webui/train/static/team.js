// Training on more than one thread in the page: a batch's B streams shared out among a team of Web Workers (data
// parallel, as DistributedDataParallel shares a batch among processes). This thread is the team's first member and
// the others are helper Workers made from a script that loads trainer.js and this file. Each step the weights go out
// with the message (copied) and each member's gradients come back (transferred); nothing needs shared memory, so it
// works in a page that is not cross-origin isolated (the app's) as well as in one that is (the Static Space's).
//   await CharrnnTeam.start(size, url) -> a team of `size` (size - 1 helpers made from url, each answering once)
//   await team.lossAndGrads(model, x, y, B, T, state, {kernels, train, backward}) -> {loss, grads, state}
//     as CharrnnTrain.lossAndGrads on the whole batch: each member's loss and gradients are of its share's mean, so
//     the team's are their average weighted by each share's size (the same numbers to float32's rounding; with
//     dropout on, each member draws its own masks)
//   await team.streamLoss(model, x, y, B, length, T, kernels) -> {total, count}, as CharrnnTrain.streamLoss, each
//     member reading its share of the B streams
//   team.patience: ms a helper may take to answer before the team counts it stopped and fails (default 60 s)
//   team.close() ends the helpers.
//   CharrnnTeam.shares(B, size) -> [[b0, b1], ...]: which streams each member reads (at least one each)
"use strict";
self.CharrnnTeam = (() => {
  const C = self.CharrnnTrain;

  function shares(B, size) {
    const n = Math.max(1, Math.min(size, B)), base = Math.floor(B / n), out = [];
    for (let i = 0, b0 = 0; i < n; i++) {
      const b1 = b0 + base + (i < B % n ? 1 : 0);
      out.push([b0, b1]);
      b0 = b1;
    }
    return out;
  }

  // Every parameter in one Float32Array, in the order of C.shapes; and views of such an array by name
  function flat(params, dims) {
    let n = 0;
    for (const name of Object.keys(dims)) n += params[name].length;
    const out = new Float32Array(n);
    let at = 0;
    for (const name of Object.keys(dims)) { out.set(params[name], at); at += params[name].length; }
    return out;
  }
  function views(floats, dims) {
    const out = {};
    let at = 0;
    for (const [name, shape] of Object.entries(dims)) {
      const n = shape.reduce((a, b) => a * b, 1);
      out[name] = floats.subarray(at, at + n);
      at += n;
    }
    return out;
  }

  // streams b0..b1 of a state laid out as torch's (L, B, H), as (L, b1 - b0, H); and back into a whole one
  function stateShare(state, L, B, H, b0, b1) {
    const n = b1 - b0, h = new Float32Array(L * n * H), c = new Float32Array(L * n * H);
    for (let l = 0; l < L; l++) {
      h.set(state.h.subarray((l * B + b0) * H, (l * B + b1) * H), l * n * H);
      c.set(state.c.subarray((l * B + b0) * H, (l * B + b1) * H), l * n * H);
    }
    return {h, c};
  }
  function putState(whole, part, L, B, H, b0, b1) {
    const n = b1 - b0;
    for (let l = 0; l < L; l++) {
      whole.h.set(part.h.subarray(l * n * H, (l + 1) * n * H), (l * B + b0) * H);
      whole.c.set(part.c.subarray(l * n * H, (l + 1) * n * H), (l * B + b0) * H);
    }
  }

  class Team {
    constructor(workers) {
      this.workers = workers;
      this.size = workers.length + 1;
      this.waiting = new Map();
      this.asked = 0;
      this.broken = null;
      this.patience = 60000;
      for (const w of workers) {
        w.onmessage = (e) => this.answer(e.data);
        w.onerror = (e) => this.fail(new Error(`a training helper failed: ${e.message || "it could not start"}`));
      }
    }

    // A helper that has not answered in team.patience ms has stopped (a Worker the browser ended answers nothing):
    // the team fails, and its caller may go on alone.
    ask(i, msg, transfer = []) {
      if (this.broken) return Promise.reject(this.broken);
      const id = ++this.asked;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => this.fail(new Error(`a training helper did not answer in ${
          +(this.patience / 1000).toFixed(1)} s`)), this.patience);
        this.waiting.set(id, {resolve, reject, timer});
        this.workers[i].postMessage({...msg, id}, transfer);
      });
    }

    answer(msg) {
      const waiter = this.waiting.get(msg.id);
      if (!waiter) return;
      this.waiting.delete(msg.id);
      clearTimeout(waiter.timer);
      if (msg.error) waiter.reject(new Error(msg.error));
      else waiter.resolve(msg);
    }

    fail(err) {
      this.broken ??= err;
      for (const waiter of this.waiting.values()) { clearTimeout(waiter.timer); waiter.reject(err); }
      this.waiting.clear();
    }

    async lossAndGrads(model, x, y, B, T, state = null, options = {}) {
      const {config} = model, {hidden: H, layers: L} = config, parts = shares(B, this.size);
      const kernels = options.kernels ?? C.kernels, wantGrads = options.backward ?? true;
      const share = (b0, b1) => ({x: x.slice(b0 * T, b1 * T), y: y.slice(b0 * T, b1 * T), B: b1 - b0,
                                  state: state && stateShare(state, L, B, H, b0, b1)});
      const asks = parts.slice(1).map(([b0, b1], i) => {
        const params = flat(model.params, model.shapes);              // each helper's own copy, handed over
        return this.ask(i, {type: "team-step", config, params, kernels: kernels.name, T, train: options.train ?? true,
                            backward: wantGrads, seed: (options.seed ?? 1) + i + 1, ...share(b0, b1)},
                        [params.buffer]);
      });
      const [a0, a1] = parts[0], mine = share(a0, a1);
      const own = C.lossAndGrads(model, mine.x, mine.y, mine.B, T, mine.state, options);
      const theirs = await Promise.all(asks);
      const weights = parts.map(([b0, b1]) => (b1 - b0) / B);
      let loss = own.loss * weights[0];
      theirs.forEach((r, i) => { loss += r.loss * weights[i + 1]; });
      const after = {h: new Float32Array(L * B * H), c: new Float32Array(L * B * H)};
      putState(after, own.state, L, B, H, a0, a1);
      theirs.forEach((r, i) => putState(after, r.state, L, B, H, ...parts[i + 1]));
      if (!wantGrads) return {loss, grads: null, state: after, masks: null};
      const sent = theirs.map((r) => views(r.grads, model.shapes));
      for (const [name, g] of Object.entries(own.grads)) {            // own's become the team's, in place
        const w0 = weights[0];
        for (let j = 0; j < g.length; j++) g[j] *= w0;
        sent.forEach((v, i) => {
          const w = weights[i + 1], gi = v[name];
          for (let j = 0; j < g.length; j++) g[j] += w * gi[j];
        });
      }
      return {loss, grads: own.grads, state: after, masks: null};
    }

    async streamLoss(model, x, y, B, length, T, kernels = C.kernels) {
      const parts = shares(B, this.size);
      const asks = parts.slice(1).map(([b0, b1], i) => {
        const params = flat(model.params, model.shapes);
        return this.ask(i, {type: "team-loss", config: model.config, params, kernels: kernels.name, T, length,
                            B: b1 - b0, x: x.slice(b0 * length, b1 * length), y: y.slice(b0 * length, b1 * length)},
                        [params.buffer]);
      });
      const [a0, a1] = parts[0];
      const own = C.streamLoss(model, x.subarray(a0 * length, a1 * length), y.subarray(a0 * length, a1 * length),
                               a1 - a0, length, T, kernels);
      for (const r of await Promise.all(asks)) { own.total += r.total; own.count += r.count; }
      return own;
    }

    close() {
      for (const w of this.workers) w.terminate();
      this.fail(new Error("the training team was closed"));
    }
  }

  async function start(size, url) {
    const workers = [];
    try {
      for (let i = 1; i < size; i++) workers.push(new Worker(url));
    } catch (err) {
      for (const w of workers) w.terminate();
      throw err;
    }
    const team = new Team(workers);
    try {
      await Promise.all(workers.map((w, i) => team.ask(i, {type: "team-hello"})));
    } catch (err) {
      team.close();
      throw err;
    }
    return team;
  }

  // A helper's side: one model's weights at a time, replaced by each message's; its own dropout draws and kernels
  function serve() {
    let rand = null;
    const kernelSets = {};
    const kernelsNamed = (name) => {
      if (!(name in kernelSets)) kernelSets[name] = name === "WebAssembly" ? C.wasmKernels() : C.kernels;
      return kernelSets[name] ?? C.kernels;
    };
    self.addEventListener("message", (e) => {
      const m = e.data;
      if (!m || typeof m.type !== "string" || !m.type.startsWith("team-")) return;
      try {
        if (m.type === "team-hello") { postMessage({id: m.id}); return; }
        const dims = C.shapes(m.config), kernels = kernelsNamed(m.kernels);
        rand ??= C.random(m.seed ?? 1);
        const model = {config: m.config, params: views(m.params, dims), shapes: dims, rand};
        if (m.type === "team-loss") {
          postMessage({id: m.id, ...C.streamLoss(model, m.x, m.y, m.B, m.length, m.T, kernels)});
          return;
        }
        const out = C.lossAndGrads(model, m.x, m.y, m.B, m.T, m.state, {kernels, train: m.train,
                                                                         backward: m.backward});
        const grads = out.grads ? flat(out.grads, dims) : null;
        postMessage({id: m.id, loss: out.loss, grads, state: out.state},
                    [...(grads ? [grads.buffer] : []), out.state.h.buffer, out.state.c.buffer]);
      } catch (err) {
        postMessage({id: m.id, error: String((err && err.message) || err)});
      }
    });
  }
  if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) serve();

  return {start, shares};
})();
