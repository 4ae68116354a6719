// The arithmetic of one training step in the page, as charrnn's trainer does it in torch (charrnn/model.py,
// charrnn/train.py): CharRNN's LSTM (1 or more layers) forward and backward through time over a batch of B streams
// x T characters, starting from a carried (detached) state; cross-entropy averaged over the B*T predictions;
// clip_grad_norm_; and torch's AdamW (or Adam). Parameters are Float32Arrays named as torch's state_dict names them,
// so weights go from torch to the page and back as {name: {shape, data}} (weights.js writes them as charrnn's file).
// A classic script: `importScripts("trainer.js")` in a Web Worker or a <script> tag in a page; no network.
//   CharrnnTrain.initModel(config, seed) -> model {config, params: {name: Float32Array}, shapes: {name: dims}, rand}
//     config: charrnn's ModelConfig fields {vocab_size, embed, hidden, layers, dropout, input_dropout, cell: "lstm"};
//     the weights are drawn from torch's initial distributions (not torch's numbers) with a seeded generator.
//   CharrnnTrain.fromTensors(config, tensors, seed) -> model;  CharrnnTrain.toTensors(model) -> {name: {shape, data}}
//   CharrnnTrain.zeroState(config, B) -> {h, c: Float32Array (L*B*H, laid out as torch's (L, B, H))}
//   CharrnnTrain.lossAndGrads(model, x, y, B, T, state, options) -> {loss, grads: {name: Float32Array}, state, masks}
//     x, y: Int32Array (B*T, row-major as torch's (B, T)); state: null (zeros) or a state as above; the state
//     returned is the one after the batch, for the next batch (the gradient stops at its first character).
//     options: train (default true: dropout on); rand (a function giving [0, 1) that draws the dropout masks;
//     default model.rand, seeded by the seed the model was made with and going on from step to step); masks
//     ({input: B*T*E, between: [B*T*H for each layer above the first], output: B*T*H}, each row-major (B, T,
//     features), each number 0 or 1 / (1 - p): given masks are used instead of drawn ones; the result's masks are
//     the ones used, in the same layout, null where nothing was dropped); backward (default true; false gives the
//     loss and state only, for validation); kernels (default CharrnnTrain.kernels).
//   CharrnnTrain.streamLoss(model, x, y, B, length, T, kernels) -> {total, count}: the summed loss over B long
//     streams (B, length) read T at a time with the state carried (validation)
//   CharrnnTrain.clipGradNorm(grads, maxNorm) -> the total norm before clipping (grads scaled in place, as torch)
//   new CharrnnTrain.AdamW(params, {lr, betas, eps, weightDecay, decoupled}).step(grads, lr) (decoupled false: Adam)
//   CharrnnTrain.kernels: {name, xWt, dyW, dyTx}: the three matrix products every step is made of, in JavaScript;
//   CharrnnTrain.wasmKernels() -> the same in WebAssembly SIMD (float32 sums), or null where the browser lacks it;
//     its forStep() gives products that keep the weights they read for one step (lossAndGrads asks for them).
"use strict";
self.CharrnnTrain = (() => {
  // --- the three matrix products ---------------------------------------------------------------------------------
  // Row-major Float32Arrays; each adds its product into its output, summing in doubles and rounding once to float32.
  // Y (n, m) += X (n, k) . W (m, k)^T: a layer's forward
  function xWt(X, W, Y, n, k, m) {
    for (let r = 0; r < n; r++) {
      const xo = r * k, yo = r * m;
      for (let o = 0; o < m; o++) {
        const wo = o * k;
        let s = 0;
        for (let i = 0; i < k; i++) s += X[xo + i] * W[wo + i];
        Y[yo + o] += s;
      }
    }
  }

  // dX (n, k) += dY (n, m) . W (m, k): the gradient that flows back to a layer's input
  function dyW(dY, W, dX, n, m, k) {
    const acc = new Float64Array(k);
    for (let r = 0; r < n; r++) {
      acc.fill(0);
      for (let o = 0; o < m; o++) {
        const a = dY[r * m + o], wo = o * k;
        if (a === 0) continue;
        for (let i = 0; i < k; i++) acc[i] += a * W[wo + i];
      }
      for (let i = 0, xo = r * k; i < k; i++) dX[xo + i] += acc[i];
    }
  }

  // dW (m, k) += dY (n, m)^T . X (n, k): a weight's gradient, summed over every row of the batch
  function dyTx(dY, X, dW, n, m, k) {
    const acc = new Float64Array(m * k);
    for (let r = 0; r < n; r++) {
      const xo = r * k;
      for (let o = 0; o < m; o++) {
        const a = dY[r * m + o], ao = o * k;
        if (a === 0) continue;
        for (let i = 0; i < k; i++) acc[ao + i] += a * X[xo + i];
      }
    }
    for (let j = 0; j < m * k; j++) dW[j] += acc[j];
  }

  const JS_KERNELS = {name: "JavaScript", xWt, dyW, dyTx};

  // --- the same products in WebAssembly SIMD (f32x4) -------------------------------------------------------------
  // A module of one function, assembled here byte by byte as webui/generate/wasm.py assembles the generator's:
  //   gemm(A, aR, aC, B, bR, bS, C, cR, n, k, m): C[i, j] += sum_c A[i, c] B[c, j] for i < n, j < m
  // Addresses and strides are bytes into the imported memory: A[i, c] at A + i aR + c aC (so A may be a matrix or
  // its transpose); B packed in strips of 4 COLS columns, strip s's row c at B + s bS + c bR (pack() lays it out);
  // C's rows at C + i cR. n is a multiple of ROWS and m of 4 COLS (zero-padded); the sums are float32, four lanes
  // at a time. A tile of ROWS x 4 COLS outputs stays in registers while the sum runs: each number of A read feeds
  // 4 COLS outputs and each vector of B ROWS of them, where a plain dot product reads two numbers per product.
  // The tiles go down one strip (j outer), so the strip, contiguous, stays in the first-level cache while A streams
  // by; product() splits the sum into blocks of KC so that A's block stays in the second-level cache.
  const ROWS = 4, COLS = 2, KC = 128;
  const uleb = (n) => {
    const out = [];
    do { const b = n & 0x7F; n >>>= 7; out.push(n ? b | 0x80 : b); } while (n);
    return out;
  };
  const vec = (items) => [...uleb(items.length), ...items.flat()];
  const section = (kind, bytes) => [kind, ...uleb(bytes.length), ...bytes];
  const text = (s) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
  const I32 = 0x7F, V128 = 0x7B;
  const get = (i) => [0x20, i], set = (i) => [0x21, i], tee = (i) => [0x22, i];      // locals < 128: one byte
  const i32 = (n) => [0x41, n];                                                       // 0 <= n < 64: one byte
  const [add, mul, shl, ltU, loop, end, brIf0] = [[0x6A], [0x6C], [0x74], [0x49], [0x03, 0x40], [0x0B], [0x0D, 0]];
  const vLoad = (at) => [0xFD, 0x00, 4, ...uleb(at)], vStore = (at) => [0xFD, 0x0B, 4, ...uleb(at)];
  const splatLoad = [0xFD, 0x09, 2, 0], vAdd = [0xFD, 0xE4, 0x01], vMul = [0xFD, 0xE6, 0x01];
  const grow = (local, by) => [get(local), by, add, set(local)];                      // local += by (on the stack)
  const range = (n) => [...Array(n).keys()];

  function gemmFunction() {
    const [A, aR, aC, B, bR, bS, C, cR, n, k, m] = range(11);
    const named = ["ai", "aEnd", "bj", "cEnd", "cj", "ci", "pa", "pb", "pbEnd", "aStep", "cStep"];
    const L = Object.fromEntries(named.map((name, i) => [name, 11 + i]));
    const aRow = range(ROWS).map((r) => 11 + named.length + r), cRow = range(ROWS).map((r) => aRow[r] + ROWS);
    const firstV = cRow[ROWS - 1] + 1, acc = range(ROWS * COLS).map((i) => firstV + i);
    const b = range(COLS).map((v) => firstV + ROWS * COLS + v), s = b[COLS - 1] + 1;
    const at = (base, r, rows) => (r ? [get(base), get(rows[r]), add] : [get(base)]);   // base + r strides
    const tile = (r, v) => acc[r * COLS + v], each = (f) => range(ROWS).flatMap((r) => range(COLS).map((v) => f(r, v)));
    const code = [
      ...range(ROWS).map((r) => [get(aR), i32(r), mul, set(aRow[r]), get(cR), i32(r), mul, set(cRow[r])]),
      get(aR), i32(ROWS), mul, set(L.aStep), get(cR), i32(ROWS), mul, set(L.cStep),
      get(A), get(n), get(aR), mul, add, set(L.aEnd), get(C), get(m), i32(2), shl, add, set(L.cEnd),
      get(B), set(L.bj), get(C), set(L.cj),
      loop,                                                                    // each strip of 4 COLS columns
      get(A), set(L.ai), get(L.cj), set(L.ci),
      loop,                                                                    // each tile of ROWS rows
      ...each((r, v) => [...at(L.ci, r, cRow), vLoad(16 * v), set(tile(r, v))]),
      get(L.ai), set(L.pa), get(L.bj), tee(L.pb), get(k), get(bR), mul, add, set(L.pbEnd),
      loop,                                                                    // each c: a row of B, a column of A
      ...range(COLS).map((v) => [get(L.pb), vLoad(16 * v), set(b[v])]),
      ...range(ROWS).map((r) => [
        ...at(L.pa, r, aRow), splatLoad, set(s),
        ...range(COLS).map((v) => [get(tile(r, v)), get(s), get(b[v]), vMul, vAdd, set(tile(r, v))]),
      ]),
      grow(L.pa, get(aC)), get(L.pb), get(bR), add, tee(L.pb), get(L.pbEnd), ltU, brIf0, end,
      ...each((r, v) => [...at(L.ci, r, cRow), get(tile(r, v)), vStore(16 * v)]),
      grow(L.ci, get(L.cStep)), get(L.ai), get(L.aStep), add, tee(L.ai), get(L.aEnd), ltU, brIf0, end,
      grow(L.bj, get(bS)), get(L.cj), i32(16 * COLS), add, tee(L.cj), get(L.cEnd), ltU, brIf0, end,
    ];
    return {params: 11, locals: [[named.length + 2 * ROWS, I32], [ROWS * COLS + COLS + 1, V128]], code};
  }

  function kernelModule() {
    const fns = [gemmFunction()];
    const types = fns.map((f) => [0x60, ...vec(new Array(f.params).fill([I32])), 0]);
    const bodies = fns.map((f) => {
      const body = [...vec(f.locals), ...f.code.flat(3), ...end];
      return [...uleb(body.length), ...body];
    });
    return Uint8Array.from([
      0x00, 0x61, 0x73, 0x6D, 1, 0, 0, 0,
      ...section(1, vec(types)),
      ...section(2, vec([[...text("env"), ...text("memory"), 0x02, 0x00, 1]])),        // memory, at least 1 page
      ...section(3, vec([[0]])),
      ...section(7, vec([[...text("gemm"), 0x00, 0]])),
      ...section(10, vec(bodies)),
    ]);
  }

  // {name, xWt, dyW, dyTx} as the JavaScript ones, or null where this browser has no WebAssembly SIMD; and
  // forStep(): the same products for one step, which keep each weight they are given (the W of xWt and dyW) in
  // their memory from its first use on, so a weight must not change while they are in use (lossAndGrads makes one
  // for each call). Making another ends the last one.
  function wasmKernels() {
    const bytes = kernelModule();
    if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return null;
    const memory = new WebAssembly.Memory({initial: 1});
    const {gemm} = new WebAssembly.Instance(new WebAssembly.Module(bytes), {env: {memory}}).exports;
    let heap = new Float32Array(memory.buffer), kept = 0, generation = 0;   // kept: floats the step's weights hold
    const padRows = (n) => Math.ceil(n / ROWS) * ROWS, padCols = (n) => Math.ceil(n / (4 * COLS)) * 4 * COLS;
    function reserve(floats) {
      const pages = Math.ceil((floats * 4) / 65536) - memory.buffer.byteLength / 65536;
      if (pages > 0) memory.grow(pages);
      if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer);
    }
    // rows of cols floats from src into rows of `stride` floats at `at`, zero-padded to `padded` rows
    function put(src, rows, cols, stride, at, padded = rows) {
      if (cols === stride) {
        heap.set(src.subarray(0, rows * cols), at);
      } else {
        for (let r = 0; r < rows; r++) {
          heap.set(src.subarray(r * cols, (r + 1) * cols), at + r * stride);
          heap.fill(0, at + r * stride + cols, at + (r + 1) * stride);
        }
      }
      heap.fill(0, at + rows * stride, at + padded * stride);
    }
    function take(dst, rows, cols, stride, at) {
      if (cols === stride) dst.set(heap.subarray(at, at + rows * cols));
      else for (let r = 0; r < rows; r++) dst.set(heap.subarray(at + r * stride, at + r * stride + cols), r * cols);
    }
    // B (K, M) at `at` as gemm reads it: strips of W = 4 COLS columns, each K rows of W floats, zero-padded to
    // whole strips. B[c, j] is src[c M + j], or src[j K + c] when transposed (src then (M, K)).
    function pack(src, K, M, at, transposed) {
      const W = 4 * COLS;
      for (let j0 = 0; j0 < M; j0 += W) {
        const o = at + j0 * K, w = Math.min(W, M - j0);
        if (w < W) heap.fill(0, o, o + K * W);
        for (let j = 0; j < w; j++) {
          if (transposed) for (let c = 0, f = (j0 + j) * K; c < K; c++) heap[o + c * W + j] = src[f + c];
          else for (let c = 0, f = j0 + j; c < K; c++) heap[o + c * W + j] = src[f + c * M];
        }
      }
    }
    // Where W (rows, cols) lies in memory packed as B, transposed or not: placed now, or found where the step's
    // kernels keep it
    function weight(W, rows, cols, transposed, cache) {
      const key = transposed ? "t" : "w", found = cache && cache.get(W);
      if (found && found[key] !== undefined) return found[key];
      const [K, M] = transposed ? [cols, rows] : [rows, cols], at = kept, size = K * padCols(M);
      reserve(at + size);
      pack(W, K, M, at, transposed);
      if (cache) {
        kept += size;
        cache.set(W, {...found, [key]: at});
      }
      return at;
    }
    // C (offsets in floats) += A B, A[i, c] at a + i aR + c aC, B packed (K = k), in blocks of KC along the sum
    function product(a, aR, aC, b, c, cR, n, k, m) {
      const W = 4 * COLS;
      for (let c0 = 0; c0 < k; c0 += KC) {
        gemm(4 * (a + c0 * aC), 4 * aR, 4 * aC, 4 * (b + c0 * W), 4 * W, 4 * k * W, 4 * c, 4 * cR, n,
             Math.min(KC, k - c0), m);
      }
    }
    function kernelsWith(cache, live) {
      return {
        name: "WebAssembly",
        xWt(X, W, Y, n, k, m) {                  // Y += X W^T: A = X, B = W^T
          live();
          const m8 = padCols(m), n4 = padRows(n), w = weight(W, m, k, true, cache);
          const x = kept + (cache ? 0 : k * m8), y = x + n4 * k;
          reserve(y + n4 * m8);
          put(X, n, k, k, x, n4); put(Y, n, m, m8, y, n4);
          product(x, k, 1, w, y, m8, n4, k, m8);
          take(Y, n, m, m8, y);
        },
        dyW(dY, W, dX, n, m, k) {                // dX += dY W: A = dY, B = W
          live();
          const k8 = padCols(k), n4 = padRows(n), w = weight(W, m, k, false, cache);
          const d = kept + (cache ? 0 : m * k8), x = d + n4 * m;
          reserve(x + n4 * k8);
          put(dY, n, m, m, d, n4); put(dX, n, k, k8, x, n4);
          product(d, m, 1, w, x, k8, n4, m, k8);
          take(dX, n, k, k8, x);
        },
        dyTx(dY, X, dW, n, m, k) {               // dW += dY^T X: A = dY read by columns, B = X
          live();                                // dY's rows 16 floats longer: a column read 4 KB apart thrashes
          const k8 = padCols(k), m4 = padRows(m), dm = m4 + 16, d = kept, x = d + n * dm, w = x + n * k8;
          reserve(w + m4 * k8);
          put(dY, n, m, dm, d); pack(X, n, k, x, false); put(dW, m, k, k8, w, m4);
          product(d, 1, dm, x, w, k8, m4, n, k8);
          take(dW, m, k, k8, w);
        },
      };
    }
    const always = () => {};
    return {
      ...kernelsWith(null, always),
      forStep() {
        const mine = ++generation;
        kept = 0;
        return kernelsWith(new Map(), () => {
          if (generation !== mine) throw new Error("these step kernels ended when another step's were made");
        });
      },
    };
  }

  // --- the model -------------------------------------------------------------------------------------------------
  function checkConfig(config) {
    if ((config.cell ?? "lstm") !== "lstm") throw new Error(`cell ${config.cell}: the page trains an LSTM only`);
    for (const key of ["vocab_size", "embed", "hidden", "layers"]) {
      if (!(Number.isInteger(config[key]) && config[key] >= 1)) {
        throw new Error(`config.${key} must be a whole number >= 1, got ${config[key]}`);
      }
    }
  }

  // torch's state_dict names and shapes, in its order
  function shapes(config) {
    checkConfig(config);
    const {vocab_size: V, embed: E, hidden: H, layers: L} = config;
    const out = {"embed.weight": [V, E]};
    for (let l = 0; l < L; l++) {
      const inputs = l ? H : E;
      out[`rnn.weight_ih_l${l}`] = [4 * H, inputs];
      out[`rnn.weight_hh_l${l}`] = [4 * H, H];
      out[`rnn.bias_ih_l${l}`] = [4 * H];
      out[`rnn.bias_hh_l${l}`] = [4 * H];
    }
    out["head.weight"] = [V, H];
    out["head.bias"] = [V];
    return out;
  }

  const count = (shape) => shape.reduce((a, b) => a * b, 1);

  function fromTensors(config, tensors, seed = 1) {
    const dims = shapes(config), params = {};
    for (const [name, shape] of Object.entries(dims)) {
      const t = tensors[name];
      if (!t) throw new Error(`tensor ${name} is missing`);
      if (t.shape.join(",") !== shape.join(",") || t.data.length !== count(shape)) {
        throw new Error(`tensor ${name}: shape [${t.shape}] (${t.data.length} numbers); this model needs [${shape}]`);
      }
      params[name] = Float32Array.from(t.data);
    }
    return {config, params, shapes: dims, rand: random(seed)};
  }

  function toTensors(model) {
    return Object.fromEntries(Object.entries(model.params).map(
      ([name, data]) => [name, {shape: model.shapes[name], data: Float32Array.from(data)}]));
  }

  // mulberry32, a small seeded generator (dropout, initial weights; session.js's stream restarts): the page's random
  // numbers are its own (only the arithmetic of a step is torch's)
  function random(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // torch's initial distributions: the embedding N(0, 1); every LSTM number U(-1/sqrt(H), 1/sqrt(H)); the head's
  // weight and bias U(-1/sqrt(H), 1/sqrt(H)) (nn.Linear's kaiming_uniform with a = sqrt(5) comes to that bound)
  function initModel(config, seed = 1) {
    const rand = random(seed), params = {}, dims = shapes(config), bound = 1 / Math.sqrt(config.hidden);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    for (const [name, shape] of Object.entries(dims)) {
      const draw = name === "embed.weight" ? normal : () => (2 * rand() - 1) * bound;
      params[name] = Float32Array.from({length: count(shape)}, draw);
    }
    return {config, params, shapes: dims, rand};
  }

  function zeroState(config, B) {
    const n = config.layers * B * config.hidden;
    return {h: new Float32Array(n), c: new Float32Array(n)};
  }

  // --- dropout ---------------------------------------------------------------------------------------------------
  // A mask in the step's time-major rows (t * B + b), from a given row-major (B, T, F) one or drawn: each number
  // kept with probability 1 - p and scaled by 1 / (1 - p), as nn.Dropout. null: nothing is dropped.
  function timeMajorMask(given, p, B, T, F, rand, what) {
    if (given) {
      given = Float32Array.from(given);
      if (given.length !== B * T * F) throw new Error(`mask ${what}: ${given.length} numbers, ${B * T * F} needed`);
      const out = new Float32Array(B * T * F);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) out.set(given.subarray((b * T + t) * F, (b * T + t + 1) * F), (t * B + b) * F);
      }
      return out;
    }
    if (!(p > 0)) return null;
    const keep = 1 / (1 - p);
    return Float32Array.from({length: B * T * F}, () => (rand() < 1 - p ? keep : 0));
  }

  function batchFirst(rows, B, T, F) {
    const out = new Float32Array(B * T * F);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) out.set(rows.subarray((t * B + b) * F, (t * B + b + 1) * F), (b * T + t) * F);
    }
    return out;
  }

  const times = (a, mask) => (mask ? a.map((v, i) => v * mask[i]) : a);

  // --- one LSTM layer --------------------------------------------------------------------------------------------
  const sigmoid = (v) => 1 / (1 + Math.exp(-v));
  const tanh = (v) => 1 - 2 / (1 + Math.exp(2 * v));      // Math.tanh's, to doubles' rounding, in a quarter the time

  // X: (T*B, K) time-major. Returns the gates after their nonlinearities (T*B, 4H; i, f, g, o as torch orders them),
  // the hidden and cell states with the starting ones first ((T+1)*B, H), and tanh of each cell state (T*B, H).
  function lstmForward(kernels, p, l, X, K, B, T, H, h0, c0) {
    const Wih = p[`rnn.weight_ih_l${l}`], Whh = p[`rnn.weight_hh_l${l}`];
    const bih = p[`rnn.bias_ih_l${l}`], bhh = p[`rnn.bias_hh_l${l}`];
    const N = T * B, G4 = 4 * H, gates = new Float32Array(N * G4);
    for (let r = 0; r < N; r++) {
      for (let j = 0; j < G4; j++) gates[r * G4 + j] = bih[j] + bhh[j];
    }
    kernels.xWt(X, Wih, gates, N, K, G4);                         // every step's input at once
    const hs = new Float32Array((T + 1) * B * H), cs = new Float32Array((T + 1) * B * H);
    const tanhC = new Float32Array(N * H);
    hs.set(h0); cs.set(c0);
    for (let t = 0; t < T; t++) {
      const g = gates.subarray(t * B * G4, (t + 1) * B * G4);
      kernels.xWt(hs.subarray(t * B * H, (t + 1) * B * H), Whh, g, B, H, G4);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          const o4 = b * G4 + j, k = b * H + j, now = (t + 1) * B * H + k;
          const gi = sigmoid(g[o4]), gf = sigmoid(g[o4 + H]), gg = tanh(g[o4 + 2 * H]);
          const go = sigmoid(g[o4 + 3 * H]);
          g[o4] = gi; g[o4 + H] = gf; g[o4 + 2 * H] = gg; g[o4 + 3 * H] = go;
          cs[now] = gf * cs[t * B * H + k] + gi * gg;
          tanhC[t * B * H + k] = tanh(cs[now]);
          hs[now] = go * tanhC[t * B * H + k];
        }
      }
    }
    return {gates, hs, cs, tanhC};
  }

  // Back through time: dOut is the loss's gradient with respect to the layer's outputs (T*B, H). Adds the layer's
  // weight gradients into grads; returns the gradient with respect to its input X (T*B, K).
  function lstmBackward(kernels, p, grads, l, cache, X, K, B, T, H, dOut) {
    const {gates, cs, hs, tanhC} = cache, Whh = p[`rnn.weight_hh_l${l}`], G4 = 4 * H, N = T * B;
    const dGates = new Float32Array(N * G4), dhNext = new Float32Array(B * H), dcNext = new Float64Array(B * H);
    for (let t = T - 1; t >= 0; t--) {
      const g = gates.subarray(t * B * G4, (t + 1) * B * G4), dg = dGates.subarray(t * B * G4, (t + 1) * B * G4);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          const o4 = b * G4 + j, k = b * H + j, at = t * B * H + k;
          const gi = g[o4], gf = g[o4 + H], gg = g[o4 + 2 * H], go = g[o4 + 3 * H], tc = tanhC[at];
          const dh = dOut[at] + dhNext[k];
          const dc = dcNext[k] + dh * go * (1 - tc * tc);
          dg[o4] = dc * gg * gi * (1 - gi);
          dg[o4 + H] = dc * cs[at] * gf * (1 - gf);                 // cs[at]: the cell state before step t
          dg[o4 + 2 * H] = dc * gi * (1 - gg * gg);
          dg[o4 + 3 * H] = dh * tc * go * (1 - go);
          dcNext[k] = dc * gf;
        }
      }
      dhNext.fill(0);
      if (t > 0) kernels.dyW(dg, Whh, dhNext, B, G4, H);          // the carried state itself gets no gradient
    }
    kernels.dyTx(dGates, X, grads[`rnn.weight_ih_l${l}`], N, G4, K);
    kernels.dyTx(dGates, hs.subarray(0, N * H), grads[`rnn.weight_hh_l${l}`], N, G4, H);      // each previous h
    const bias = columnSums(dGates, N, G4);
    grads[`rnn.bias_ih_l${l}`].set(bias);
    grads[`rnn.bias_hh_l${l}`].set(bias);
    const dX = new Float32Array(N * K);
    kernels.dyW(dGates, p[`rnn.weight_ih_l${l}`], dX, N, G4, K);
    return dX;
  }

  function columnSums(A, n, m) {
    const acc = new Float64Array(m);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < m; j++) acc[j] += A[r * m + j];
    }
    return Float32Array.from(acc);
  }

  // --- the loss: softmax cross-entropy averaged over the N rows --------------------------------------------------
  // Returns the mean loss and, when wanted, its gradient with respect to the logits (N, V).
  function crossEntropy(logits, targets, N, V, wantGrad) {
    let total = 0;
    const dLogits = wantGrad ? new Float32Array(N * V) : null;
    for (let r = 0; r < N; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      let max = -Infinity, sum = 0;
      for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
      for (let v = 0; v < V; v++) sum += Math.exp(row[v] - max);
      const logSum = max + Math.log(sum);
      total += logSum - row[targets[r]];
      if (!wantGrad) continue;
      for (let v = 0; v < V; v++) dLogits[r * V + v] = Math.exp(row[v] - logSum) / N;
      dLogits[r * V + targets[r]] -= 1 / N;
    }
    return {loss: total / N, dLogits};
  }

  // --- one step's loss and gradients ------------------------------------------------------------------------------
  function checkBatch(model, x, y, B, T, state) {
    const {vocab_size: V, hidden: H, layers: L} = model.config;
    if (x.length !== B * T || y.length !== B * T) throw new Error(`x and y must hold B*T = ${B * T} ids`);
    for (const ids of [x, y]) {
      for (const id of ids) if (!(id >= 0 && id < V)) throw new Error(`id ${id} is outside the vocabulary (${V})`);
    }
    if (state && (state.h.length !== L * B * H || state.c.length !== L * B * H)) {
      throw new Error(`the state must hold layers*B*hidden = ${L * B * H} numbers in h and in c`);
    }
  }

  // The batch in the step's time-major rows (t * B + b), so that each time step's B rows lie together.
  function timeMajor(ids, B, T) {
    const rows = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) rows[t * B + b] = ids[b * T + t];
    }
    return rows;
  }

  // embedding -> input dropout -> LSTM layers (dropout between them) -> dropout -> head. drop(given, p, F, what)
  // gives a mask or null. Returns what the backward pass reads, the logits (T*B, V) and the masks used.
  function forward(kernels, model, rows, B, T, start, given, drop) {
    const {config, params: p} = model, {vocab_size: V, embed: E, hidden: H, layers: L} = config, N = T * B;
    const masks = {input: drop(given.input, config.input_dropout, E, "input"), between: [], output: null};
    const embedded = new Float32Array(N * E);
    for (let r = 0; r < N; r++) embedded.set(p["embed.weight"].subarray(rows[r] * E, (rows[r] + 1) * E), r * E);
    const caches = [], inputs = [];
    let X = times(embedded, masks.input);
    for (let l = 0; l < L; l++) {
      if (l) {
        masks.between.push(drop(given.between && given.between[l - 1], config.dropout, H, `between ${l - 1}`));
        X = times(caches[l - 1].hs.subarray(B * H), masks.between[l - 1]);
      }
      inputs.push(X);
      const at = l * B * H;
      caches.push(lstmForward(kernels, p, l, X, l ? H : E, B, T, H, start.h.subarray(at, at + B * H),
                              start.c.subarray(at, at + B * H)));
    }
    masks.output = drop(given.output, config.dropout, H, "output");
    const top = times(caches[L - 1].hs.subarray(B * H), masks.output);                  // (T*B, H)
    const logits = new Float32Array(N * V);
    for (let r = 0; r < N; r++) logits.set(p["head.bias"], r * V);
    kernels.xWt(top, p["head.weight"], logits, N, H, V);
    return {caches, inputs, masks, top, logits};
  }

  // The state after the batch's last character, as torch's (L, B, H)
  function lastState(caches, B, T, H) {
    const n = caches.length * B * H, after = {h: new Float32Array(n), c: new Float32Array(n)};
    caches.forEach((cache, l) => {
      after.h.set(cache.hs.subarray(T * B * H), l * B * H);
      after.c.set(cache.cs.subarray(T * B * H), l * B * H);
    });
    return after;
  }

  // From the logits' gradient back to every parameter's: {name: Float32Array}
  function backward(kernels, model, rows, B, T, fwd, dLogits) {
    const {config, params: p} = model, {vocab_size: V, embed: E, hidden: H, layers: L} = config, N = T * B;
    const {caches, inputs, masks, top} = fwd;
    const grads = Object.fromEntries(Object.entries(p).map(([name, a]) => [name, new Float32Array(a.length)]));
    kernels.dyTx(dLogits, top, grads["head.weight"], N, V, H);
    grads["head.bias"].set(columnSums(dLogits, N, V));
    let dOut = new Float32Array(N * H);
    kernels.dyW(dLogits, p["head.weight"], dOut, N, V, H);
    dOut = times(dOut, masks.output);
    for (let l = L - 1; l >= 0; l--) {
      const dX = lstmBackward(kernels, p, grads, l, caches[l], inputs[l], l ? H : E, B, T, H, dOut);
      dOut = times(dX, l ? masks.between[l - 1] : masks.input);
    }
    const dEmbed = new Float64Array(V * E);                       // a character read many times sums its gradients
    for (let r = 0; r < N; r++) {
      for (let e = 0; e < E; e++) dEmbed[rows[r] * E + e] += dOut[r * E + e];
    }
    grads["embed.weight"].set(dEmbed);
    return grads;
  }

  function lossAndGrads(model, x, y, B, T, state = null, options = {}) {
    const {config} = model, {embed: E, hidden: H} = config;
    checkBatch(model, x, y, B, T, state);
    const train = options.train ?? true, wantGrads = options.backward ?? true;
    const rand = options.rand ?? model.rand, given = options.kernels ?? JS_KERNELS;
    const kernels = given.forStep ? given.forStep() : given;      // the weights stay as they are until we return
    const drop = (g, rate, F, what) => (train ? timeMajorMask(g, rate ?? 0, B, T, F, rand, what) : null);
    const rows = timeMajor(x, B, T);
    const fwd = forward(kernels, model, rows, B, T, state ?? zeroState(config, B), options.masks ?? {}, drop);
    const {loss, dLogits} = crossEntropy(fwd.logits, timeMajor(y, B, T), T * B, config.vocab_size, wantGrads);
    const {input, between, output} = fwd.masks;
    const masks = {input: input && batchFirst(input, B, T, E), between: between.map((m) => m && batchFirst(m, B, T, H)),
                   output: output && batchFirst(output, B, T, H)};          // the masks used, row-major (B, T, F)
    const grads = wantGrads ? backward(kernels, model, rows, B, T, fwd, dLogits) : null;
    return {loss, grads, state: lastState(fwd.caches, B, T, H), masks};
  }

  // The summed loss over B long streams (x, y: Int32Array (B, length), row-major) read T characters at a time from a
  // zero state carried on, as charrnn's evaluate reads the held-out text: {total, count} (no dropout, no gradients)
  function streamLoss(model, x, y, B, length, T, kernels = JS_KERNELS) {
    let total = 0, count = 0, state = null;
    for (let t = 0; t < length; t += T) {
      const n = Math.min(T, length - t), xs = new Int32Array(B * n), ys = new Int32Array(B * n);
      for (let b = 0; b < B; b++) {
        xs.set(x.subarray(b * length + t, b * length + t + n), b * n);
        ys.set(y.subarray(b * length + t, b * length + t + n), b * n);
      }
      const out = lossAndGrads(model, xs, ys, B, n, state, {train: false, backward: false, kernels});
      total += out.loss * B * n;
      count += B * n;
      state = out.state;
    }
    return {total, count};
  }

  // --- the update ------------------------------------------------------------------------------------------------
  // torch.nn.utils.clip_grad_norm_: the L2 norm over every gradient together; when it is over maxNorm every gradient
  // is scaled by maxNorm / (norm + 1e-6)
  function clipGradNorm(grads, maxNorm) {
    let squares = 0;
    for (const g of Object.values(grads)) {
      for (let i = 0; i < g.length; i++) squares += g[i] * g[i];
    }
    const norm = Math.sqrt(squares), scale = Math.min(maxNorm / (norm + 1e-6), 1);
    if (scale < 1) {
      for (const g of Object.values(grads)) {
        for (let i = 0; i < g.length; i++) g[i] *= scale;
      }
    }
    return norm;
  }

  // torch.optim.AdamW (decoupled weight decay: the weights shrink by lr * weightDecay, then the Adam step), or
  // torch.optim.Adam (decoupled false: the weight decay is added to the gradient). Moments are float32, as torch's.
  class AdamW {
    // torch's defaults: weight decay 0.01 for AdamW, 0 for Adam
    constructor(params, {lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, decoupled = true,
                         weightDecay = decoupled ? 0.01 : 0} = {}) {
      this.params = params; this.lr = lr; this.betas = betas; this.eps = eps;
      this.weightDecay = weightDecay; this.decoupled = decoupled; this.steps = 0;
      this.m = Object.fromEntries(Object.entries(params).map(([k, a]) => [k, new Float32Array(a.length)]));
      this.v = Object.fromEntries(Object.entries(params).map(([k, a]) => [k, new Float32Array(a.length)]));
    }

    step(grads, lr = this.lr) {
      const [beta1, beta2] = this.betas, wd = this.weightDecay, eps = this.eps;
      this.steps += 1;
      const stepSize = lr / (1 - beta1 ** this.steps), correction2 = Math.sqrt(1 - beta2 ** this.steps);
      for (const [name, w] of Object.entries(this.params)) {
        const g = grads[name], m = this.m[name], v = this.v[name];
        for (let i = 0; i < w.length; i++) {
          const gi = this.decoupled ? g[i] : g[i] + wd * w[i];
          if (this.decoupled) w[i] *= 1 - lr * wd;
          m[i] += (gi - m[i]) * (1 - beta1);
          v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
          w[i] -= stepSize * m[i] / (Math.sqrt(v[i]) / correction2 + eps);
        }
      }
    }
  }

  return {initModel, fromTensors, toTensors, shapes, zeroState, lossAndGrads, streamLoss, clipGradNorm, AdamW,
          random, kernels: JS_KERNELS, wasmKernels};
})();
