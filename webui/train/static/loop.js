// A training run in the page, as charrnn's trainer runs one (charrnn/train.py fit): B streams of T characters with
// the state carried (session.js), a step's arithmetic (trainer.js: forward and backward, clipping, AdamW), the
// learning rate warmed up then decayed by progress (the time budget or the passes over the text, whichever is
// further along), validation on the held-out 10% every eval_every steps, the kept model (the best validation loss
// so far), and early stopping after `patience` checks without a better one. Stop is heard between two steps.
// The kernels (JavaScript or WebAssembly) and the threads (this one, or a team of Workers sharing each batch:
// team.js) are the ones that train fastest here, measured on the first batch.
//   await CharrnnLoop.run(text, cfg, {post, stopped, helpers}) -> the end message (also posted)
//     cfg: what differs from CharrnnLoop.RECIPE, of {embed, hidden, layers, dropout, input_dropout, batch_size,
//           seq_len, lr, warmup, decay, min_lr_ratio, weight_decay, grad_clip, seconds, max_epochs, eval_every,
//           eval_chars, patience, log_every, seed, threads, name}
//     post(message): {type: "record", ...} as charrnn's metrics records (step, train_loss, lr, chars_per_s,
//       elapsed, progress; val_loss, best_step, best_val_loss on a check; the first also {kernels, threads,
//       sizing}: what was measured and chosen), {type: "model", step, vocab, tensors} after each check (for the
//       page to sample from), and at the end {type: "done", end, reason, header, vocab, tensors}: the kept model
//       as charrnn's header and tensors (weights.js makes its file).
//     stopped(): true once Stop was pressed.
//     helpers: the script URL a team's helper Workers are made from (in a Worker: its own; none: one thread).
// In a Worker (trainer.js, session.js, team.js and this file loaded): {type: "train", text, cfg} starts a run,
// {type: "stop"} ends it at the next step.
"use strict";
self.CharrnnLoop = (() => {
  const S = self.CharrnnSession, C = self.CharrnnTrain;
  // The page's recipe. hidden "auto": the largest of SIZES whose step, measured here at the start, trains at least
  // MIN_STEPS steps in the time budget (a slower computer gets a smaller model, not a half-trained big one). At 2
  // minutes on an 85 KB text the kept loss was 1.41 / 1.38 / 1.35 / 1.33 at hidden 128 / 192 / 256 / 384 on a
  // 2-vCPU EPYC (bench/RESULTS.md, "Training in the page").
  const SIZES = [384, 256, 128], MIN_STEPS = 600, TEAMS = [2, 4];
  const RECIPE = {embed: 32, hidden: "auto", layers: 1, dropout: 0.1, input_dropout: 0, batch_size: 16, seq_len: 32,
                  lr: 4e-3, warmup: 20, decay: "cosine", min_lr_ratio: 0.1, weight_decay: 0, grad_clip: 1,
                  seconds: 120, max_epochs: 20, eval_every: 50, eval_chars: 20000, patience: 5, log_every: 10, seed: 1,
                  threads: "auto"};
  // The script a team's helpers are made from: this Worker's own (it loads trainer.js, team.js and this file)
  const inWorker = () => typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope;
  const ownScript = () => (inWorker() ? self.location.href : null);
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

  // A step's loss and gradients on this thread or shared out among a team (team.js)
  const lossOf = (team, ...args) => (team ? team.lossAndGrads(...args) : C.lossAndGrads(...args));

  // Characters per second of a step (forward and backward) on the run's first batch, the fastest of `tries`. A
  // step's first few runs are slow (the browser compiles as it goes: ~2x for three runs, in Chromium), so the
  // fastest of four is what the run will see; plain JavaScript, ten times slower, is timed twice.
  async function timed(team, kernels, model, batch, cfg, now, tries = 4) {
    let fastest = Infinity;
    for (let i = 0; i < tries; i++) {
      const t0 = now();
      await lossOf(team, model, batch.x, batch.y, cfg.batch_size, cfg.seq_len, null, {kernels, train: false});
      fastest = Math.min(fastest, now() - t0);
    }
    return Math.round(cfg.batch_size * cfg.seq_len / Math.max(fastest / 1000, 1e-9));
  }

  // Which matrix products train faster here, measured on one thread: WebAssembly SIMD where the browser has it,
  // else JavaScript.
  async function fastestKernels(model, batch, cfg, now) {
    const rates = {};
    let best = C.kernels;
    for (const kernels of [C.kernels, C.wasmKernels ? C.wasmKernels() : null]) {
      if (!kernels) continue;
      rates[kernels.name] = await timed(null, kernels, model, batch, cfg, now, kernels === C.kernels ? 2 : 4);
      if (rates[kernels.name] > (rates[best.name] ?? 0)) best = kernels;
    }
    return {kernels: best, rates};
  }

  // How many threads train fastest here: this one alone, or a team (team.js) of 2 or 4 where the computer has the
  // cores, each timed on the first batch (as this thread was: after its first steps). A number in
  // cfg.threads takes that many without comparing. No helper script (a run on a page's own thread): one thread.
  async function fastestTeam(cfg, model, batch, kernels, alone, helpers, now) {
    const cores = (typeof navigator === "object" && navigator.hardwareConcurrency) || 1;
    const auto = cfg.threads === "auto" || cfg.threads == null;
    const sizes = auto ? TEAMS.filter((n) => n <= cores && n <= cfg.batch_size) : [Math.round(Number(cfg.threads))];
    const rates = {1: alone};
    let best = {team: null, threads: 1, rate: alone};
    if (!helpers) return {...best, rates};
    for (const size of sizes.filter((n) => n >= 2)) {
      let team, rate;
      try {
        team = await self.CharrnnTeam.start(size, helpers);
        await timed(team, kernels, model, batch, cfg, now, 2);               // the helpers' first steps
        rate = rates[size] = await timed(team, kernels, model, batch, cfg, now);
      } catch (err) {
        team?.close();
        break;                                         // no Workers here, or they fail: one thread
      }
      if (!auto || rate > best.rate) {
        best.team?.close();
        best = {team, threads: size, rate};
      } else {
        team.close();
      }
    }
    return {...best, rates};
  }

  // The model this run trains: cfg.hidden, or for "auto" the largest of SIZES that trains MIN_STEPS steps in the
  // budget at the rate measured here (kernels and threads measured at the first size, the fastest of them kept).
  async function fitted(cfg, vocabSize, batch, now, helpers) {
    const sizes = cfg.hidden === "auto" ? SIZES : [Number(cfg.hidden)], tried = {};
    let chosen = null;
    for (const hidden of sizes) {
      const config = {vocab_size: vocabSize, embed: cfg.embed, hidden, layers: cfg.layers, dropout: cfg.dropout ?? 0,
                      input_dropout: cfg.input_dropout ?? 0, cell: "lstm"};
      const model = C.initModel(config, cfg.seed ?? 1);
      let rate;
      if (!chosen) {
        const {kernels, rates} = await fastestKernels(model, batch, cfg, now);
        const team = await fastestTeam(cfg, model, batch, kernels, rates[kernels.name], helpers, now);
        chosen = {kernels, team: team.team, measured: {kernels: {chose: kernels.name, chars_per_s: rates},
                                                       threads: {chose: team.threads, chars_per_s: team.rates}}};
        rate = team.rate;
      } else {
        try {
          rate = await timed(chosen.team, chosen.kernels, model, batch, cfg, now);
        } catch (err) {                                // the team failed: one thread, timed again
          chosen.team?.close();
          chosen.team = null;
          chosen.measured.threads.chose = 1;
          rate = await timed(null, chosen.kernels, model, batch, cfg, now);
        }
      }
      const steps = cfg.seconds ? Math.floor(rate * cfg.seconds / (cfg.batch_size * cfg.seq_len)) : Infinity;
      tried[hidden] = {chars_per_s: rate, steps_in_budget: steps};
      if (steps >= MIN_STEPS || hidden === sizes[sizes.length - 1]) {
        return {config, model, ...chosen,
                sizing: {hidden, auto: sizes.length > 1, min_steps: MIN_STEPS, tried}};
      }
    }
  }

  // The loss on the held-out ids (charrnn's evaluate: B long streams, the state carried), on this thread or a team's
  async function validate(model, val, cfg, kernels = C.kernels, team = null) {
    const layout = S.evalLayout(val, cfg.seq_len, cfg.batch_size, cfg.eval_chars);
    if (!layout) return NaN;
    const {total, count} = await (team ?? C).streamLoss(model, layout.x, layout.y, layout.batch, layout.length,
                                                        cfg.seq_len, kernels);
    return total / Math.max(count, 1);
  }

  const copy = (tensors) => Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, {shape: t.shape,
                                                                                            data: t.data.slice()}]));

  async function run(text, cfg, {post, stopped = () => false, now = () => performance.now(), helpers = ownScript()}) {
    cfg = {...RECIPE, ...cfg};
    const started = now(), seconds = () => (now() - started) / 1000;       // the sizing below counts in the budget
    const corpus = S.corpus(text);
    const streams = new S.Streams(corpus.train, cfg.batch_size, cfg.seq_len, cfg.seed ?? 1);
    const {config, model, kernels, team, measured, sizing} = await fitted(cfg, corpus.vocab.length, streams.next(),
                                                                         now, helpers);
    try {
      return await train(text, cfg, corpus, streams, {config, model, kernels, team, measured, sizing},
                         {post, stopped, seconds});
    } finally {
      team?.close();
    }
  }

  async function train(text, cfg, corpus, streams, {config, model, kernels, team, measured, sizing},
                       {post, stopped, seconds}) {
    // A team that fails (a helper ended by the browser, or one that stopped answering) leaves this thread to go on
    // alone: the step or check it was on is done again here, and nothing trained so far is lost.
    let lost = null;
    const onTeam = async (work) => {
      if (team) {
        try {
          return await work(team);
        } catch (err) {
          lost = String((team.broken ?? err).message ?? err);   // an error of the arithmetic itself comes again here
          team.close();
          team = null;
        }
      }
      return work(null);
    };
    let told = false;                    // the record after a team failed says so, once
    const lostNow = () => (lost && !told ? (told = true, {team_lost: lost}) : {});
    const {batch_size: B, seq_len: T} = cfg;
    const opt = new C.AdamW(model.params, {lr: cfg.lr, weightDecay: cfg.weight_decay ?? 0});
    const {hidden: H, layers: L} = config;
    let step = 0, charsSeen = 0, state = null, best = {loss: Infinity, step: null, tensors: null}, waited = 0;
    let sum = 0, summed = 0, lastVal = null, end = "finished", reason = "";
    const progress = () => Math.max(cfg.seconds ? seconds() / cfg.seconds : 0,
                                    cfg.max_epochs ? charsSeen / (cfg.max_epochs * corpus.train.length) : 0);
    const check = async () => {
      lastVal = await onTeam((t) => validate(model, corpus.val, cfg, kernels, t));
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
      const out = await onTeam((t) => lossOf(t, model, batch.x, batch.y, B, T, state, {kernels, seed: cfg.seed ?? 1}));
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
              progress: Math.min(progress(), 1), chars_seen: charsSeen, ...(evalNow ? await check() : {}),
              ...(posted ? {} : {...measured, sizing}), ...lostNow()});
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
            chars_seen: charsSeen, ...await check(), end,
            ...(posted ? {} : {...measured, sizing}), ...lostNow()});
    }
    const elapsed = seconds();
    const header = {model_config: config, vocab: corpus.vocab.join(""), step: best.step ?? step,
                    run: cfg.name ?? "in-page",
                    data: {name: cfg.data_name ?? "pasted text", chars: Array.from(text).length}, elapsed,
                    chars_seen: charsSeen, best_step: best.step, best_val_loss: best.loss, val_loss: lastVal,
                    params: Object.values(model.params).reduce((n, a) => n + a.length, 0), saved: Date.now() / 1000,
                    threads: team ? measured.threads.chose : 1};
    const done = {type: "done", end, reason, header, vocab: corpus.vocab,
                  tensors: best.tensors ?? C.toTensors(model)};
    post(done);
    return done;
  }

  if (inWorker()) {
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
