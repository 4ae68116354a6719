// The page's side of generating in the browser (webui/generate/browser.py loads it once, after
// window.CHARRNN_BROWSER). window.charrnn.generate / retemper / rested / stop are called by the Generate tab's
// JavaScript-only events; a model with no browser copy, or a browser without WebAssembly or Web Workers, goes to
// the server instead (the hidden #generate-server-btn, whose event is the /generate endpoint), and the page says why.
// Text made here is coloured here too (confidenceHtml draws what webui/generate/view.py confidence_html draws):
// the server is sent only the text, for the next-character chart to read, within the app's request cap.
"use strict";
window.charrnn = (() => {
  const cfg = window.CHARRNN_BROWSER, views = cfg.views;
  const PRIME_TAIL = 1000;             // characters of the prime the chart's record keeps (it reads the end)
  let lastJob = null, busy = false, unsent = null, settle = null, serial = 0;

  // A worker of the runtime (runtime.js) and its jobs: one job at a time, a new one ends the older (its promise
  // resolves as cancelled); tell() sends what ends nothing (a model made here, added). The page generates on one;
  // a training run's samples (trainview.js) on their own, so that they never end the visitor's generation.
  function lane() {
    let worker = null, ready = null, job = 0;
    const pending = new Map(), told = new Map();
    function start() {
      if (ready) return ready;
      ready = new Promise((resolve) => {
        if (typeof WebAssembly !== "object" || typeof Worker !== "function") return resolve(false);
        try {
          const url = URL.createObjectURL(new Blob([cfg.worker], {type: "text/javascript"}));
          worker = new Worker(url);
        } catch (err) { return resolve(false); }
        worker.onmessage = (e) => {
          const msg = e.data;
          if (msg.type === "ready") return resolve(msg.wasm);
          const waiting = pending.has(msg.job) ? pending : told, p = waiting.get(msg.job);
          if (!p) return;
          if (msg.type === "text") p.on.text?.(msg.text);
          else if (msg.type === "loading") p.on.loading?.(msg);
          else { waiting.delete(msg.job); p.resolve(msg); }
        };
        worker.onerror = () => resolve(false);
        worker.postMessage({type: "init", wasm: cfg.wasm, rows: cfg.rows});
      });
      return ready;
    }
    function send(waiting, msg, on) {
      if (!worker) return Promise.resolve({type: "error", message: "this browser has no runtime worker"});
      const id = ++job;
      return new Promise((resolve) => {
        waiting.set(id, {resolve, on});
        worker.postMessage({...msg, job: id});
      });
    }
    function ask(msg, on = {}) {
      for (const [old, p] of pending) { pending.delete(old); p.resolve({type: "cancelled"}); }
      return send(pending, msg, on);
    }
    const tell = (msg) => send(told, msg, {});
    function cancel() {                                  // true when a job was running
      const running = pending.size > 0;
      if (worker && running) worker.postMessage({type: "cancel", job: ++job});
      for (const [id, p] of pending) { pending.delete(id); p.resolve({type: "cancelled"}); }
      return running;
    }
    return {start, ask, tell, cancel};
  }
  const page = lane(), {start, ask} = page;

  // Models made in this page (trained here), held by the worker of each lane that was given them
  function models(on) {
    const made = new Set();
    return {
      made,
      async addModel(key, info, floats) {
        await on.start();
        made.add(key);
        return on.tell({type: "add", url: `made:${key}`, info, floats});
      },
      async run(url, prime, length, temperature, seed, kernel = "wasm", topK = 0) {
        await on.start();
        return on.ask({type: "generate", url, prime, length, temperature, seed, kernel, topK});
      },
    };
  }
  const own = models(page), made = own.made, addModel = own.addModel, run = own.run;
  // Another lane for samples: {addModel, run}, as window.charrnn's, with a worker of its own
  function sampler() {
    const {addModel: add, run: generate} = models(lane());
    return {addModel: add, run: generate};
  }

  async function copyFor(key) {
    if (made.has(key)) return {url: `made:${key}`};
    try {
      const res = await fetch(cfg.folder + cfg.index, {cache: "no-store"});
      const index = res.ok ? await res.json() : {};
      const entry = index[key];
      if (!entry) return {why: "its browser copy is not written yet"};
      if (!entry.copy) return {why: entry.why};
      return {url: new URL(cfg.folder + entry.copy, location.href).href};
    } catch (err) { return {why: "the list of browser copies could not be read"}; }
  }

  // --- the page: the output box, the line saying where the text was made, the changed part marked ------
  const el = (sel) => document.querySelector(sel);
  const chars = (text) => Array.from(text);          // by code point, as Python counts a text's characters
  function show(text) { const box = el("#output textarea"); if (box) box.value = text; }
  function where(line, text = null, from = -1) {
    const box = el("#gen-where .charrnn-where") || el("#gen-where");
    if (!box) return;
    box.replaceChildren();
    const p = document.createElement("p"); p.textContent = line; box.append(p);
    if (text !== null && from >= 0) {
      const d = document.createElement("div"); d.className = "charrnn-diff";
      const mark = document.createElement("mark"); mark.textContent = chars(text).slice(from).join("");
      d.append(document.createTextNode(chars(text).slice(0, from).join("")), mark);
      box.append(d);
    }
  }
  function server(why) {
    if (cfg.serverless) {                   // the static site: there is no server to fall back on
      where(`Cannot generate in this page: ${why}.`);
      return [undefined, undefined, undefined];
    }
    where(`Generated on the server: ${why}.`);
    lastJob = null;
    el("#generate-server-btn")?.click();
    return [undefined, undefined, undefined];
  }
  const megabytes = (n) => (n / 1e6).toFixed(1);
  const rate = (msg) => msg.seconds > 0
    ? `, ${Math.round(msg.stepped / msg.seconds).toLocaleString("en")} chars/s` : "";

  // --- the confidence view, drawn as webui/generate/view.py confidence_html draws it ------------------------
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");   // html.escape(s, False)
  const escAttr = (s) => esc(s).replace(/"/g, "&quot;").replace(/'/g, "&#x27;");           // html.escape(s)
  const invisible = new RegExp(`^[${views.invisible.map((c) => `\\p{${c}}`).join("")}]$`, "u");
  const readable = (ch) => views.readable[ch] ??
    (invisible.test(ch) ? `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}` : ch);
  // Python's round-half-to-even on the double's exact value: toFixed rounds an exact tie up instead
  function fixed(x, digits) {
    const scaled = x * 10 ** digits, low = Math.floor(scaled);
    if (scaled - low !== 0.5 || low % 2) return x.toFixed(digits);
    return (low / 10 ** digits).toFixed(digits);
  }
  const general = (x) => String(Number(x.toPrecision(6)));         // f"{x:g}", for temperatures 0 to 2
  const count = (n, noun) => `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "s"}`;
  function hue(p) {                                                  // confidence_colour's f"{120 * p:.0f}"
    const x = 120 * Math.min(Math.max(p, 0), 1), low = Math.floor(x), r = x - low;
    return r > 0.5 || (r === 0.5 && low % 2) ? low + 1 : low;
  }
  function span(ch, p) {
    const h = hue(p), shown = ch === "\n" ? "⏎\n" : esc(ch);
    const title = escAttr(`${readable(ch)}  p = ${fixed(p, 3)}`);
    return `<span style="background:${views.colours[h]};color:${views.inks[h]}" title="${title}">${shown}</span>`;
  }
  // rec: {text, start (characters of prime), probs (one per character after it), temperature, top_k}
  function confidenceHtml(rec) {
    const all = chars(rec.text), prime = all.slice(0, rec.start).join(""), probs = rec.probs;
    const spans = all.slice(rec.start).map((ch, i) => span(ch, probs[i])).join("");
    const how = `temperature ${general(rec.temperature)}` + (rec.top_k ? `, top-k ${rec.top_k}` : "");
    let summary;
    if (rec.temperature === 0) {
      summary = `Sampled greedily (${how}): every character was the likeliest, so each has p = 1.`;
    } else {
      const mean = probs.length ? probs.reduce((a, b) => a + b, 0) / probs.length : NaN;
      summary = `Sampled at ${how}: average probability ${fixed(mean, 2)}; ` +
                `${probs.filter((p) => p < 0.1).length} surprises (p < 0.1) in ${count(probs.length, "character")}.`;
    }
    const primed = prime ? `<span class='charrnn-prime'>${esc(prime)}</span>` : "";
    return `<p>${summary}</p>${views.legend}<div class='charrnn-chars charrnn-scroll'>${primed}${spans}</div>`;
  }

  // What the server's chart reads after a generation here: the prime's end and the text, no probabilities, cut to
  // cfg.recordChars characters (webui/generate/browser.py), so the request stays under the app's cap.
  function chartRecord(prime, text, j) {
    const head = chars(prime).slice(-PRIME_TAIL);
    const body = chars(text).slice(0, Math.max(0, cfg.recordChars - head.length));
    return JSON.stringify({text: head.join("") + body.join(""), start: head.length, temperature: j.temperature,
                           top_k: j.topK || null, n: ++serial});        // n: each record is new, so it is read
  }
  const viewRecord = (msg, j) => ({text: msg.prime + msg.text, start: chars(msg.prime).length, probs: msg.probs,
                                 temperature: j.temperature, top_k: j.topK || null});

  async function generate(checkpoint, prime, temperature, length, topK, seed) {
    if (!checkpoint) return server("no model is chosen yet, so the server uses its default one");
    if (!await start()) return server("this browser cannot run WebAssembly in a Web Worker");
    const copy = await copyFor(checkpoint);
    if (!copy.url) return server(copy.why);
    prime = typeof prime === "string" ? prime : "";
    if (chars(prime).length > cfg.maxPrime) return server("the prime is too long");
    const j = {type: "generate", url: copy.url, kernel: "wasm", prime, length: Math.max(1, Math.round(length) || 1),
               temperature: Math.max(0, Number(temperature) || 0), topK: Math.max(0, Math.round(topK) || 0),
               seed: Math.round(seed) || 1 + Math.floor(Math.random() * 2147483646)};
    busy = true;
    unsent = null;
    let started = false;
    const generating = () => { if (!started) { started = true; where("Generating in your browser…"); } };
    const msg = await ask(j, {
      loading: (m) => m.loaded < m.total ? where(`Loading the model into this page… ${megabytes(m.loaded)} of ` +
                                                 `${megabytes(m.total)} MB`) : generating(),
      text: (text) => { generating(); show(j.prime + text); },
    });
    busy = false;
    if (msg.type === "error") return server(`the page could not run this model (${msg.message})`);
    if (msg.type !== "done") return [undefined, undefined, undefined];
    j.prime = msg.prime;
    lastJob = j;
    show(msg.prime + msg.text);
    const folded = msg.changed ? ` The prime's ${msg.changed} were changed or left out.` : "";
    where(`Generated in your browser (${msg.kernel}): ${j.length.toLocaleString("en")} characters in ` +
          `${msg.seconds.toFixed(2)} s${rate(msg)}; seed ${j.seed}. Move the temperature: the text is ` +
          `re-sampled here with the same random numbers.${folded}`);
    return [msg.prime + msg.text, chartRecord(msg.prime, msg.text, j), confidenceHtml(viewRecord(msg, j))];
  }

  // The temperature slider moved: the last in-page generation re-sampled with the same draws.
  async function retemper(temperature) {
    if (!lastJob || busy) return undefined;
    const j = {...lastJob, temperature: Math.max(0, Number(temperature) || 0)};
    const msg = await ask({type: "retemper", temperature: j.temperature});
    if (msg.type !== "done") return undefined;
    lastJob = j;
    unsent = {msg: {...msg, prime: j.prime}, j};
    const text = j.prime + msg.text;
    show(text);
    const same = msg.differs < 0 ? "the same text: every pick stayed the same"
      : msg.differs === 0 ? "different from the first new character on (marked)"
      : `the same for ${count(msg.differs, "character")} after the prime, then different (marked)`;
    where(`Re-sampled in your browser at T = ${j.temperature}, same seed ${j.seed}: ${same}.`, text,
          msg.differs < 0 ? -1 : chars(j.prime).length + msg.differs);
    clearTimeout(settle);           // once the slider rests, the colours and the chart follow (not at every move)
    settle = setTimeout(() => el("#browser-record-btn")?.click(), 400);
    return text;
  }

  // The slider at rest: the last re-sampled text's colours and the chart's record (undefined: nothing new).
  function rested() {
    if (!unsent) return [undefined, undefined];
    const {msg, j} = unsent;
    unsent = null;
    return [confidenceHtml(viewRecord(msg, j)), chartRecord(msg.prime, msg.text, j)];
  }

  // Stop: the page's job ends at its next pause (every 40 ms); the text so far stays. Returns the confidence
  // view's line when a generation here was cut short (undefined otherwise: the view stays as it is).
  function stop() {
    const cut = busy;
    busy = false;
    page.cancel();
    if (!cut) return undefined;
    where("Stopped: the text so far stays.");
    return views.stopped;
  }
  const generating = () => views.generating;

  // For tests and bench/browser_speed.py: logits after a text, and a timed generation with either kernel.
  async function logits(url, text, kernel = "wasm") { await start(); return ask({type: "logits", url, text, kernel}); }
  const resample = (temperature) => ask({type: "retemper", temperature});     // the last run, re-sampled
  return {generate, retemper, rested, stop, generating, logits, run, resample, copyFor, start, confidenceHtml,
          addModel, sampler};
})();
