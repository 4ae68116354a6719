// charrnn's browser runtime: runs in a Web Worker. Loads a browser copy (webui/generate/webcopy.py), steps its
// LSTM / GRU / vanilla RNN one character at a time and samples, like charrnn/sample.py: the same seed, prime,
// temperature and top-k give the same text (the same random stream, the same fold table, the same rule).
// The matrix-vector products run in WebAssembly (webui/wasm.py) or, for comparison, plain JavaScript.
// Messages in:  {type: "init", wasm}, {type: "generate", job, ...}, {type: "retemper", job, temperature},
//               {type: "cancel"}, {type: "logits", job, url, text}, {type: "add", job, url, info, floats} (a model
//               made in the page, then generated from by its url like a copy; adding one ends no job).
// Messages out: {type: "loading", job, loaded, total} (bytes of the weights, while they download),
//               {type: "text", job, text}, {type: "done", job, ...}, {type: "error", job, message}.
"use strict";

let ROWS = 4;                   // rows per block of the WebAssembly kernel: webui/wasm.py ROWS, sent with "init"
const SNAPSHOT = 32;            // the state is kept every this many characters, for re-sampling
const pad4 = (n) => (n + 3) & ~3;
const padRows = (n) => Math.ceil(n / ROWS) * ROWS;

// --- kernels: y += W x ------------------------------------------------------------------------------
class JsKernel {
  constructor() { this.name = "JavaScript"; }
  vector(n) { return {arr: new Float32Array(pad4(n))}; }
  matrix(src, rows, cols) { return {w: src, rows, cols}; }
  finish() {}
  matvec(m, x, y) {
    const w = m.w, cols = m.cols, xa = x.arr, ya = y.arr;
    for (let r = 0, o = 0; r < m.rows; r++, o += cols) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, c = 0;
      for (; c + 3 < cols; c += 4) {
        s0 += w[o + c] * xa[c]; s1 += w[o + c + 1] * xa[c + 1];
        s2 += w[o + c + 2] * xa[c + 2]; s3 += w[o + c + 3] * xa[c + 3];
      }
      for (; c < cols; c++) s0 += w[o + c] * xa[c];
      ya[r] += (s0 + s1) + (s2 + s3);
    }
  }
}

class WasmKernel {
  // Every matrix and vector lives in one WebAssembly memory, laid out once by finish().
  constructor(module) { this.name = "WebAssembly"; this.module = module; this.items = []; this.bytes = 0; }
  take(floats) { const ptr = this.bytes; this.bytes += pad4(floats) * 4; return ptr; }
  vector(n) { const v = {n: padRows(pad4(n)), arr: null}; v.ptr = this.take(v.n); this.items.push(v); return v; }
  matrix(src, rows, cols) {
    const m = {src, rows, cols, rp: padRows(rows), cp: pad4(cols)};
    m.ptr = this.take(m.rp * m.cp);
    this.items.push(m);
    return m;
  }
  finish() {
    const memory = new WebAssembly.Memory({initial: Math.ceil((this.bytes + 16) / 65536) + 1});
    this.matvecFn = new WebAssembly.Instance(this.module, {env: {memory}}).exports.matvec;
    const all = new Float32Array(memory.buffer);
    for (const it of this.items) {
      if (!it.src) { it.arr = new Float32Array(memory.buffer, it.ptr, it.n); continue; }
      // blocks of ROWS rows; within a block, for each 4 columns, the ROWS rows' 4 values (webui/wasm.py)
      let k = it.ptr / 4;
      for (let g = 0; g < it.rp; g += ROWS)
        for (let c = 0; c < it.cp; c += 4)
          for (let i = 0; i < ROWS; i++)
            for (let j = 0; j < 4; j++, k++) {
              const r = g + i, cc = c + j;
              all[k] = r < it.rows && cc < it.cols ? it.src[r * it.cols + cc] : 0;
            }
      it.src = null;
    }
  }
  matvec(m, x, y) { this.matvecFn(m.ptr, x.ptr, y.ptr, m.rp, m.cp); }
}

// --- the model ----------------------------------------------------------------------------------------
const GATES = {lstm: 4, gru: 3, rnn: 1};
const sigmoid = (v) => 1 / (1 + Math.exp(-v));

class Model {
  constructor(info, floats, kernel) {
    this.info = info; this.cell = info.cell; this.L = info.layers; this.H = info.hidden;
    this.V = info.vocab_size; this.vocab = info.vocab; this.kernel = kernel;
    const t = (name) => { const d = info.tensors[name]; const n = d.shape.reduce((a, b) => a * b, 1);
                          return floats.subarray(d.offset, d.offset + n); };
    const G = GATES[this.cell] * this.H, H = this.H, E = info.embed, sum = this.cell !== "gru";
    // layer 0's input projection of every character: emb @ W_ih^T + b_ih (+ b_hh, except for a GRU)  (V, G)
    const emb = t("embed.weight"), wih = t("rnn.weight_ih_l0"), bih = t("rnn.bias_ih_l0"), bhh = t("rnn.bias_hh_l0");
    this.table = new Float32Array(this.V * G);
    for (let v = 0; v < this.V; v++)
      for (let g = 0; g < G; g++) {
        let s = bih[g] + (sum ? bhh[g] : 0);
        for (let e = 0; e < E; e++) s += emb[v * E + e] * wih[g * E + e];
        this.table[v * G + g] = s;
      }
    this.layers = [];
    for (let k = 0; k < this.L; k++) {
      const bi = t(`rnn.bias_ih_l${k}`), bh = t(`rnn.bias_hh_l${k}`);
      this.layers.push({
        whh: kernel.matrix(t(`rnn.weight_hh_l${k}`), G, H),
        wih: k ? kernel.matrix(t(`rnn.weight_ih_l${k}`), G, H) : null,
        bias: sum ? bi.map((b, i) => b + bh[i]) : bi, bhh: bh,
        h: kernel.vector(H), gi: kernel.vector(G), gh: kernel.vector(G), c: new Float32Array(H),
      });
    }
    this.head = kernel.matrix(t("head.weight"), this.V, H);
    this.headBias = t("head.bias").slice();
    this.logits = kernel.vector(this.V);
    kernel.finish();
    this.stoi = new Map(this.vocab.map((ch, i) => [ch, i]));
    this.fold = new Map(Object.entries(info.fold ?? {}));        // character -> what the prime gets instead
  }
  reset() { for (const l of this.layers) { l.h.arr.fill(0); l.c.fill(0); } }
  saveState() { return this.layers.map((l) => [l.h.arr.slice(0, this.H), l.c.slice()]); }
  loadState(s) { this.layers.forEach((l, k) => { l.h.arr.set(s[k][0]); l.c.set(s[k][1]); }); }

  // Feed one character id; the next-character logits (V,) in this.logits.arr (overwritten by the next step).
  step(idx) {
    const H = this.H, G = GATES[this.cell] * H, K = this.kernel;
    for (let k = 0; k < this.L; k++) {
      const l = this.layers[k], gi = l.gi.arr, gh = l.gh.arr, h = l.h.arr;
      if (k === 0) gi.set(this.table.subarray(idx * G, idx * G + G));
      else { gi.set(l.bias); K.matvec(l.wih, this.layers[k - 1].h, l.gi); }
      if (this.cell === "gru") { gh.set(l.bhh); K.matvec(l.whh, l.h, l.gh); }
      else K.matvec(l.whh, l.h, l.gi);
      if (this.cell === "lstm") {                                      // torch's gate order: i, f, g, o
        const c = l.c;
        for (let j = 0; j < H; j++) {
          c[j] = sigmoid(gi[H + j]) * c[j] + sigmoid(gi[j]) * Math.tanh(gi[2 * H + j]);
          h[j] = sigmoid(gi[3 * H + j]) * Math.tanh(c[j]);
        }
      } else if (this.cell === "gru") {                                // r, z, n
        for (let j = 0; j < H; j++) {
          const r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[H + j] + gh[H + j]);
          const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
          h[j] = (1 - z) * n + z * h[j];
        }
      } else {
        for (let j = 0; j < H; j++) h[j] = Math.tanh(gi[j]);
      }
    }
    this.logits.arr.set(this.headBias);
    K.matvec(this.head, this.layers[this.L - 1].h, this.logits);
    return this.logits.arr;
  }
}

// --- sampling: inverse CDF with one uniform number per character (charrnn/sample.py Sampler) ---------
// The seed's stream is SplitMix64 as charrnn/sample.py uniforms() computes it: number i from the (i+1)-th
// output's top 53 bits, in BigInt, so the page draws the server's numbers bit for bit.
const MASK64 = (1n << 64n) - 1n;
function uniforms(seed, n) {
  const out = new Float64Array(n);
  let s = BigInt.asUintN(64, BigInt(seed));            // a whole number (or its decimal string, past 2^53)
  for (let i = 0; i < n; i++) {
    s = (s + 0x9E3779B97F4A7C15n) & MASK64;
    let z = ((s ^ (s >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK64;
    out[i] = Number((z ^ (z >> 31n)) >> 11n) / 9007199254740992;     // / 2^53: exact
  }
  return out;
}

// The same steps as charrnn/sample.py Sampler.pick, in the same order and in float64, so equal logits give
// equal picks: exp((logit - max) / T), all but the top k set to 0, the first running sum above u * total.
function pick(logits, V, temperature, topK, u, z) {
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
  if (temperature <= 0) return [best, 1];
  let kth = -Infinity;
  if (topK && topK < V) kth = Array.from(logits.subarray(0, V)).sort((a, b) => b - a)[topK - 1];
  let total = 0;
  for (let i = 0; i < V; i++) {
    z[i] = logits[i] < kth ? 0 : Math.exp((logits[i] - logits[best]) / temperature);
    total += z[i];
  }
  const target = u * total;
  let acc = 0, last = best;
  for (let i = 0; i < V; i++) {
    if (z[i] === 0) continue;
    acc += z[i]; last = i;
    if (acc > target) return [i, z[i] / total];
  }
  return [last, z[last] / total];                   // u * total rounded up to total
}

// --- the worker: one job at a time; a newer message ends the older job at its next pause ------------
let wasmModule = null, current = 0, last = null;
const models = new Map();              // url -> Model (the last two)
const channel = new MessageChannel();
const pauses = [];
channel.port1.onmessage = () => pauses.shift()();
const pause = () => new Promise((resolve) => { pauses.push(resolve); channel.port2.postMessage(0); });

// Models made in this page (trained here): url -> {info, floats}, a copy's header and floats held in memory.
const made = new Map();
function addModel(msg) {
  made.set(msg.url, {info: msg.info, floats: msg.floats});
  for (const key of [...models.keys()]) if (key.endsWith(`|${msg.url}`)) models.delete(key);
  postMessage({type: "added", job: msg.job});
}

async function loadModel(url, kernelName, job = null) {
  const key = `${kernelName}|${url}`;
  if (models.has(key)) return models.get(key);
  const mine = made.get(url);
  const info = mine ? mine.info : await (await fetch(url + ".json")).json();
  const floats = mine ? mine.floats : new Float32Array(await download(url + ".bin", 4 * info.floats, job));
  const kernel = kernelName === "js" || !wasmModule ? new JsKernel() : new WasmKernel(wasmModule);
  const m = new Model(info, floats, kernel);
  models.set(key, m);
  if (models.size > 2) models.delete(models.keys().next().value);
  return m;
}

// The weights, read as they arrive, the page told how far along they are (at the start, every 100 ms, at the end):
// a first Generate waits for megabytes, and says so.
async function download(url, total, job) {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`the browser copy could not be read (HTTP ${res.status})`);
  const bytes = new Uint8Array(total), reader = res.body.getReader();
  let loaded = 0, told = performance.now();
  const tell = () => { if (job !== null) postMessage({type: "loading", job, loaded, total}); };
  tell();
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    if (loaded + part.value.length > total) throw new Error("the browser copy is longer than its header says");
    bytes.set(part.value, loaded);
    loaded += part.value.length;
    if (performance.now() - told > 100) { told = performance.now(); tell(); }
  }
  if (loaded !== total) throw new Error("the browser copy is incomplete");
  tell();
  return bytes.buffer;
}

function primeModel(m, ids) {
  m.reset();
  let logits = null;
  for (const i of ids) logits = m.step(i);
  return {state: m.saveState(), logits: logits.slice()};
}

// Generate job.length characters from the primed state; or re-sample `old` at a new temperature with the
// same uniforms: while the picks match the old ones the stored logits are reused, and from the first new pick
// the model steps on from the stored state nearest before it. S_n is the state after chars[0..n-1].
async function run(job, old) {
  const m = job.model, V = m.V, z = new Float64Array(V), u = job.u;
  const chars = new Int32Array(job.length), probs = new Float32Array(job.length);
  const logitsAt = old ? old.logits : new Float32Array(job.length * V);
  const snaps = old ? old.snaps : [];
  let reusing = Boolean(old), differs = -1, stepped = 0, text = "";
  const t0 = performance.now();
  let lastPost = t0;
  if (!old) m.loadState(job.primed.state);
  for (let n = 0; n < job.length; n++) {
    let logits;
    if (reusing) logits = logitsAt.subarray(n * V, n * V + V);
    else {
      logits = n ? m.step(chars[n - 1]) : job.primed.logits;          // the model is at S_n
      stepped += n ? 1 : 0;
      if (n % SNAPSHOT === 0) snaps[n / SNAPSHOT] = m.saveState();
      logitsAt.set(logits.subarray(0, V), n * V);
    }
    const [i, p] = pick(logits, V, job.temperature, job.topK, u[n], z);
    chars[n] = i; probs[n] = p; text += m.vocab[i];
    if (reusing && i !== old.chars[n]) {                                // the first new pick
      reusing = false; differs = n;
      const s = Math.floor(n / SNAPSHOT);
      m.loadState(snaps[s]);
      for (let j = s * SNAPSHOT; j < n; j++) { m.step(chars[j]); stepped++; }   // back to S_n
    }
    const now = performance.now();
    if (now - lastPost > 40) {
      lastPost = now;
      postMessage({type: "text", job: job.id, text});
      await pause();
      if (job.id !== current) return null;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return {chars, probs, logits: logitsAt, snaps, differs: old ? differs : 0, text, stepped, seconds};
}

function finish(job, out) {
  last = {...job, ...out};
  postMessage({type: "done", job: job.id, text: out.text, prime: job.prime, changed: job.changed, probs: Array.from(out.probs), differs: out.differs,
               stepped: out.stepped, seconds: out.seconds, kernel: job.model.kernel.name});
}

// The prime as the model can read it: a character the model lacks is replaced as the copy's fold table says
// (charrnn/vocab.py Vocab.folded: é -> e, curly quotes -> straight, where the model has those; else left out);
// one the table lacks is refused, so that the page goes to the server, which folds any character. An empty
// prime starts a line (charrnn/sample.py default_start).
function usablePrime(m, text) {
  let out = "";
  const changed = new Set(), unknown = new Set();
  for (const ch of text) {
    if (m.stoi.has(ch)) out += ch;
    else if (m.fold.has(ch)) { out += m.fold.get(ch); changed.add(ch); }
    else unknown.add(ch);
  }
  const shown = (set) => [...set].slice(0, 10).map((c) => JSON.stringify(c)).join(", ");
  if (unknown.size) throw new Error(`the prime has characters its fold table lacks: ${shown(unknown)}`);
  if (!out) out = ["\n", " "].find((c) => m.stoi.has(c)) ?? m.vocab[0];
  return {prime: out, changed: changed.size ? `characters ${shown(changed)}` : ""};
}

async function generate(msg) {
  const m = await loadModel(msg.url, msg.kernel, msg.job);
  if (msg.job !== current) return;
  const {prime, changed} = usablePrime(m, msg.prime);
  const ids = Array.from(prime, (ch) => m.stoi.get(ch));
  const primedKey = `${msg.url}|${msg.kernel}|${prime}`;
  const primed = last && last.model === m && last.primedKey === primedKey ? last.primed : primeModel(m, ids);
  const job = {id: msg.job, model: m, primed, primedKey, length: msg.length, temperature: msg.temperature,
               topK: msg.topK, seed: msg.seed, u: uniforms(msg.seed, msg.length), prime, changed};
  const out = await run(job, null);
  if (out) finish(job, out);
}

async function retemper(msg) {
  if (!last) return postMessage({type: "error", job: msg.job, message: "nothing generated in the page yet"});
  const job = {...last, id: msg.job, temperature: msg.temperature};
  const old = {chars: last.chars, logits: last.logits.slice(), snaps: last.snaps.slice()};  // a stopped
  // re-sampling leaves the last complete one as it was
  const out = await run(job, old);
  if (out) finish(job, out);
}

async function logitsOf(msg) {                       // logits after a text: the static site's bars, the parity tests
  const m = await loadModel(msg.url, msg.kernel);
  const ids = Array.from(msg.text, (ch) => m.stoi.get(ch));
  const {logits} = primeModel(m, ids);
  postMessage({type: "logits", job: msg.job, logits: Array.from(logits.subarray(0, m.V)), vocab: m.vocab});
}

onmessage = async (e) => {
  const msg = e.data;
  if (msg.type === "init") {
    try {
      const bytes = Uint8Array.from(atob(msg.wasm), (c) => c.charCodeAt(0));
      wasmModule = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
      ROWS = msg.rows;
    } catch (err) { wasmModule = null; }
    return postMessage({type: "ready", wasm: Boolean(wasmModule)});
  }
  if (msg.type !== "add") current = msg.job ?? current;          // adding a model ends no job
  try {
    if (msg.type === "generate") await generate(msg);
    else if (msg.type === "retemper") await retemper(msg);
    else if (msg.type === "logits") await logitsOf(msg);
    else if (msg.type === "add") addModel(msg);
  } catch (err) {
    postMessage({type: "error", job: msg.job, message: String(err && err.message || err)});
  }
};
