// A training run in the page, as charrnn's trainer runs one (charrnn/train.py fit): B streams of T characters with
// the state carried (session.js), a step's arithmetic (trainer.js: forward and backward, clipping, AdamW), the
// learning rate warmed up then decayed by progress (the time budget or the passes over the text, whichever is
// further along), validation on the held-out 10% every eval_every steps, the kept model (the best validation loss
// so far), and early stopping after `patience` checks without a better one. Stop is heard between two steps.
//   await CharrnnLoop.run(text, cfg, {post, stopped}) -> the end message (also posted)
//     cfg: what differs from CharrnnLoop.RECIPE, of {embed, hidden, layers, dropout, input_dropout, batch_size, seq_len, lr, warmup, decay, min_lr_ratio,
//           weight_decay, grad_clip, seconds, max_epochs, eval_every, eval_chars, patience, log_every, seed, name}
//     post(message): {type: "record", ...} as charrnn's metrics records (step, train_loss, lr, chars_per_s,
//       elapsed, progress; val_loss, best_step, best_val_loss on a check), {type: "model", step, vocab, tensors}
//       after each check (for the page to sample from), and at the end {type: "done", end, reason, header,
//       vocab, tensors}: the kept model as charrnn's header and tensors (weights.js makes its file).
//     stopped(): true once Stop was pressed.
// In a Worker (trainer.js, session.js and this file loaded): {type: "train", text, cfg} starts a run, {type: "stop"}
// ends it at the next step.
"use strict";
self.CharrnnLoop = (() => {
  const S = self.CharrnnSession, C = self.CharrnnTrain;
  // The page's recipe. hidden "auto": the largest of SIZES whose step, measured here at the start, trains at least
  // MIN_STEPS steps in the time budget (a slower computer gets a smaller model, not a half-trained big one). At 2
  // minutes on an 85 KB text the kept loss was 1.41 / 1.38 / 1.35 / 1.33 at hidden 128 / 192 / 256 / 384 on a
  // 2-vCPU EPYC (bench/RESULTS.md, "Training in the page").
  const SIZES = [384, 256, 128], MIN_STEPS = 600;
  const RECIPE = {embed: 32, hidden: "auto", layers: 1, dropout: 0.1, input_dropout: 0, batch_size: 16, seq_len: 32,
                  lr: 4e-3, warmup: 20, decay: "cosine", min_lr_ratio: 0.1, weight_decay: 0, grad_clip: 1,
                  seconds: 120, max_epochs: 20, eval_every: 50, eval_chars: 20000, patience: 5, log_every: 10, seed: 1};
  const pause = () => new Promise((resolve) => setTimeout(resolve, 0));     // let a Stop message in

  function zeroRows(state, restarted, L, B, H) {
    for (let b = 0; b < B; b++) {
      if (!restarted[b]) continue;
      for (let l = 0; l < L; l++) {
        const at = (l * B + b) * H;
        state.h.fill(0, at, at + H);
        state.c.fill(0, at, at + H);
      }
    }
  }

  // Which matrix products train faster here, measured on the run's first batch (forward and backward, twice
  // each, the faster of the two tries): WebAssembly SIMD where the browser has it, else JavaScript.
  function fastestKernels(model, batch, B, T, now) {
    const rates = {};
    let best = C.kernels;
    for (const kernels of [C.kernels, C.wasmKernels ? C.wasmKernels() : null]) {
      if (!kernels) continue;
      let fastest = Infinity;
      for (let i = 0; i < 2; i++) {
        const t0 = now();
        C.lossAndGrads(model, batch.x, batch.y, B, T, null, {kernels, train: false});
        fastest = Math.min(fastest, now() - t0);
      }
      rates[kernels.name] = Math.round(B * T / Math.max(fastest / 1000, 1e-9));
      if (rates[kernels.name] > (rates[best.name] ?? 0)) best = kernels;
    }
    return {kernels: best, rates};
  }

  // The model this run trains: cfg.hidden, or for "auto" the largest of SIZES that trains MIN_STEPS steps in the
  // budget at the rate measured here (the kernels measured at the first size, the faster of them kept).
  function fitted(cfg, vocabSize, batch, now) {
    const sizes = cfg.hidden === "auto" ? SIZES : [Number(cfg.hidden)], tried = {};
    let measured = null;
    for (const hidden of sizes) {
      const config = {vocab_size: vocabSize, embed: cfg.embed, hidden, layers: cfg.layers, dropout: cfg.dropout ?? 0,
                      input_dropout: cfg.input_dropout ?? 0, cell: "lstm"};
      const model = C.initModel(config, cfg.seed ?? 1);
      measured = measured ? timedWith(measured.kernels, model, batch, cfg, now) : fastestKernels(model, batch,
                                                                                              cfg.batch_size,
                                                                                              cfg.seq_len, now);
      const rate = measured.rates[measured.kernels.name];
      const steps = cfg.seconds ? Math.floor(rate * cfg.seconds / (cfg.batch_size * cfg.seq_len)) : Infinity;
      tried[hidden] = {chars_per_s: rate, steps_in_budget: steps};
      if (steps >= MIN_STEPS || hidden === sizes[sizes.length - 1]) {
        return {config, model, measured, sizing: {hidden, auto: sizes.length > 1, min_steps: MIN_STEPS, tried}};
      }
    }
  }

  function timedWith(kernels, model, batch, cfg, now) {
    let fastest = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = now();
      C.lossAndGrads(model, batch.x, batch.y, cfg.batch_size, cfg.seq_len, null, {kernels, train: false});
      fastest = Math.min(fastest, now() - t0);
    }
    return {kernels, rates: {[kernels.name]: Math.round(cfg.batch_size * cfg.seq_len / Math.max(fastest / 1000, 1e-9))}};
  }

  function validate(model, val, cfg, kernels = C.kernels) {
    const layout = S.evalLayout(val, cfg.seq_len, cfg.batch_size, cfg.eval_chars);
    if (!layout) return NaN;
    const {batch: B, length} = layout;
    let total = 0, count = 0, state = null;
    for (let t = 0; t < length; t += cfg.seq_len) {
      const T = Math.min(cfg.seq_len, length - t), x = new Int32Array(B * T), y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        x.set(layout.x.subarray(b * length + t, b * length + t + T), b * T);
        y.set(layout.y.subarray(b * length + t, b * length + t + T), b * T);
      }
      const out = C.lossAndGrads(model, x, y, B, T, state, {train: false, backward: false, kernels});
      total += out.loss * B * T;
      count += B * T;
      state = out.state;
    }
    return total / Math.max(count, 1);
  }

  const copy = (tensors) => Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, {shape: t.shape,
                                                                                            data: t.data.slice()}]));

  async function run(text, cfg, {post, stopped = () => false, now = () => performance.now()}) {
    cfg = {...RECIPE, ...cfg};
    const started = now(), seconds = () => (now() - started) / 1000;       // the sizing below counts in the budget
    const corpus = S.corpus(text);
    const streams = new S.Streams(corpus.train, cfg.batch_size, cfg.seq_len, cfg.seed ?? 1);
    const {batch_size: B, seq_len: T} = cfg;
    const {config, model, measured, sizing} = fitted(cfg, corpus.vocab.length, streams.next(), now);
    const kernels = measured.kernels;
    const opt = new C.AdamW(model.params, {lr: cfg.lr, weightDecay: cfg.weight_decay ?? 0});
    const {hidden: H, layers: L} = config;
    let step = 0, charsSeen = 0, state = null, best = {loss: Infinity, step: null, tensors: null}, waited = 0;
    let sum = 0, summed = 0, lastVal = null, end = "finished", reason = "";
    const progress = () => Math.max(cfg.seconds ? seconds() / cfg.seconds : 0,
                                    cfg.max_epochs ? charsSeen / (cfg.max_epochs * corpus.train.length) : 0);
    const check = () => {
      lastVal = validate(model, corpus.val, cfg, kernels);
      if (lastVal < best.loss) {
        best = {loss: lastVal, step, tensors: copy(C.toTensors(model))};
        waited = 0;
      } else {
        waited += 1;
      }
      post({type: "model", step, vocab: corpus.vocab, tensors: C.toTensors(model)});
      return {val_loss: lastVal, val_bpc: lastVal / Math.LN2, best_step: best.step, best_val_loss: best.loss};
    };
    let posted = 0;                      // the step of the last record posted
    while (progress() < 1) {
      const lr = cfg.lr * S.lrFactor(progress(), step, cfg);
      const batch = streams.next();
      if (state) zeroRows(state, batch.restarted, L, B, H);
      const out = C.lossAndGrads(model, batch.x, batch.y, B, T, state, {kernels});
      if (!Number.isFinite(out.loss)) {
        end = "failed";
        reason = `the loss became ${out.loss} at step ${step + 1}; try a lower learning rate`;
        break;
      }
      state = out.state;
      if (cfg.grad_clip > 0) C.clipGradNorm(out.grads, cfg.grad_clip);
      opt.step(out.grads, lr);
      step += 1;
      charsSeen += B * T;
      sum += out.loss;
      summed += 1;
      if (stopped()) { end = "stopped"; reason = "Stop was pressed"; break; }
      if (progress() >= 1) break;                  // the last step's record comes with the final check, below
      const evalNow = cfg.eval_every && step % cfg.eval_every === 0;
      if (step % (cfg.log_every || 10) === 0 || evalNow) {
        const elapsed = seconds();
        post({type: "record", step, train_loss: sum / summed, lr, chars_per_s: charsSeen / elapsed, elapsed,
              progress: Math.min(progress(), 1), chars_seen: charsSeen, ...(evalNow ? check() : {}),
              ...(posted ? {} : {kernels: {chose: kernels.name, chars_per_s: measured.rates}, sizing})});
        posted = step;
        sum = summed = 0;
        if (evalNow && cfg.patience && waited >= cfg.patience) {
          end = "finished";
          reason = `validation stopped improving at step ${best.step.toLocaleString("en")}`;
          break;
        }
      }
      await pause();
    }
    if (end !== "failed" && step && posted !== step) {          // the last steps are checked too
      const elapsed = seconds();
      post({type: "record", step, train_loss: summed ? sum / summed : null, lr: null, elapsed,
            chars_per_s: charsSeen / Math.max(elapsed, 1e-9), progress: Math.min(progress(), 1),
            chars_seen: charsSeen, ...check(), end,
            ...(posted ? {} : {kernels: {chose: kernels.name, chars_per_s: measured.rates}, sizing})});
    }
    const elapsed = seconds();
    const header = {model_config: config, vocab: corpus.vocab.join(""), step: best.step ?? step,
                    run: cfg.name ?? "in-page",
                    data: {name: cfg.data_name ?? "pasted text", chars: Array.from(text).length}, elapsed,
                    chars_seen: charsSeen, best_step: best.step, best_val_loss: best.loss, val_loss: lastVal,
                    params: Object.values(model.params).reduce((n, a) => n + a.length, 0), saved: Date.now() / 1000};
    const done = {type: "done", end, reason, header, vocab: corpus.vocab,
                  tensors: best.tensors ?? C.toTensors(model)};
    post(done);
    return done;
  }

  if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
    let stop = false;
    self.onmessage = async (e) => {
      const msg = e.data;
      if (msg.type === "stop") { stop = true; return; }
      if (msg.type !== "train") return;
      stop = false;
      try {
        await run(msg.text, msg.cfg, {post: (m) => postMessage(m), stopped: () => stop});
      } catch (err) {
        postMessage({type: "done", end: "failed", reason: String(err && err.message || err)});
      }
    };
  }
  return {run, validate, RECIPE, SIZES, MIN_STEPS};
})();
