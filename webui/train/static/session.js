// The data side of a training run in the page, as charrnn's trainer does it (charrnn/data.py, charrnn/train.py):
// the vocabulary (the text's characters sorted by code point, as Python sorts them), the split (the last 10% held
// out for validation), B streams of T characters read on through the training part so the state can be carried
// (a stream that would run off the end restarts at a random place, its state zeroed), the learning-rate schedule
// (linear warm-up, then cosine or linear decay by progress) and the validation layout (the held-out ids laid out
// as B parallel streams, read T at a time with the state carried).
//   CharrnnSession.corpus(text, valFraction) -> {vocab, stoi, train: Int32Array, val: Int32Array}
//   CharrnnSession.lrFactor(progress, step, {warmup, decay, min_lr_ratio}) -> multiplier of the learning rate
//   new CharrnnSession.Streams(train, B, T, seed).next() -> {x, y: Int32Array (B*T, row-major), restarted: bool[B]}
//   CharrnnSession.evalLayout(ids, T, B, maxChars) -> {batch, length, x, y: Int32Array (batch*length)} | null
"use strict";
self.CharrnnSession = (() => {
  const byCodePoint = (a, b) => a.codePointAt(0) - b.codePointAt(0);

  function corpus(text, valFraction = 0.1) {
    const chars = Array.from(text);                       // by code point, as Python counts a text's characters
    const vocab = [...new Set(chars)].sort(byCodePoint);
    const stoi = new Map(vocab.map((ch, i) => [ch, i]));
    const ids = Int32Array.from(chars, (ch) => stoi.get(ch));
    const nVal = Math.floor(ids.length * valFraction);
    return {vocab, stoi, train: ids.subarray(0, ids.length - nVal), val: ids.subarray(ids.length - nVal)};
  }

  function lrFactor(progress, step, cfg) {
    if (step < cfg.warmup) return (step + 1) / cfg.warmup;
    progress = Math.min(Math.max(progress, 0), 1);
    if (cfg.decay === "none") return 1;
    const shape = cfg.decay === "cosine" ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
    const floor = cfg.min_lr_ratio ?? 0;
    return floor + (1 - floor) * shape;
  }

  // where streams restart: trainer.js's seeded generator (the page's data order is its own: only the arithmetic of a
  // step is torch's)
  const random = (seed) => self.CharrnnTrain.random(seed);

  class Streams {
    constructor(train, batch, seqLen, seed = 1) {
      if (train.length < seqLen + 1) {
        throw new Error(`the training part has ${train.length} characters; ${seqLen + 1} are needed`);
      }
      this.train = train; this.B = batch; this.T = seqLen; this.rand = random(seed);
      this.lastStart = train.length - seqLen - 1;
      this.positions = new Array(batch).fill(this.lastStart + 1);     // every stream starts somewhere new
    }
    next() {
      const {B, T, train} = this, x = new Int32Array(B * T), y = new Int32Array(B * T), restarted = [];
      for (let b = 0; b < B; b++) {
        restarted.push(this.positions[b] > this.lastStart);
        if (restarted[b]) this.positions[b] = Math.floor(this.rand() * (this.lastStart + 1));
        const p = this.positions[b];
        x.set(train.subarray(p, p + T), b * T);
        y.set(train.subarray(p + 1, p + T + 1), b * T);
        this.positions[b] = p + T;
      }
      return {x, y, restarted};
    }
  }

  function evalLayout(ids, seqLen, batch, maxChars = 0) {
    const n = maxChars ? Math.min(ids.length - 1, maxChars) : ids.length - 1;
    const B = Math.max(1, Math.min(batch, Math.floor(n / Math.max(seqLen, 1))));
    const length = Math.floor(n / B);
    if (length === 0) return null;
    const x = new Int32Array(B * length), y = new Int32Array(B * length);
    x.set(ids.subarray(0, B * length));
    y.set(ids.subarray(1, B * length + 1));
    return {batch: B, length, x, y};
  }

  return {corpus, lrFactor, Streams, evalLayout};
})();
