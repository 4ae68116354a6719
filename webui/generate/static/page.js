// The page's side of generating in the browser (webui/browser.py loads it once, after window.CHARRNN_BROWSER).
// window.charrnn.generate / retemper / stop are called by the Generate tab's JavaScript-only events; a
// model with no browser copy, or a browser without WebAssembly or Web Workers, goes to the server instead
// (the hidden #generate-server-btn, whose event is the /generate endpoint), and the page says why.
"use strict";
window.charrnn = (() => {
  const cfg = window.CHARRNN_BROWSER;
  let worker = null, ready = null, job = 0, pending = new Map(), lastJob = null, busy = false, lastRec = null;
  let settle = null;

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
        const p = pending.get(msg.job);
        if (!p) return;
        if (msg.type === "text") p.onText(msg.text);
        else { pending.delete(msg.job); p.resolve(msg); }
      };
      worker.onerror = () => resolve(false);
      worker.postMessage({type: "init", wasm: cfg.wasm, rows: cfg.rows});
    });
    return ready;
  }

  function ask(msg, onText = () => {}) {
    const id = ++job;
    for (const [old, p] of pending) { pending.delete(old); p.resolve({type: "cancelled"}); }
    return new Promise((resolve) => {
      pending.set(id, {resolve, onText});
      worker.postMessage({...msg, job: id});
    });
  }

  async function copyFor(key) {
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
  function show(text) { const box = el("#output textarea"); if (box) box.value = text; }
  function where(line, text = null, from = -1) {
    const box = el("#gen-where .charrnn-where") || el("#gen-where");
    if (!box) return;
    box.replaceChildren();
    const p = document.createElement("p"); p.textContent = line; box.append(p);
    if (text !== null && from >= 0) {
      const d = document.createElement("div"); d.className = "charrnn-diff";
      const mark = document.createElement("mark"); mark.textContent = text.slice(from);
      d.append(document.createTextNode(text.slice(0, from)), mark);
      box.append(d);
    }
  }
  function server(why) {
    where(`Generated on the server: ${why}.`);
    lastJob = null;
    el("#generate-server-btn").click();
    return [undefined, undefined];
  }
  const round = (p) => Number(p.toPrecision(3));
  // What the server draws the colours from; the prime's end only, so the request stays under the app's
  // event-size cap (Settings.max_event_body) even for a 10,000-character prime and a 5,000-character text.
  function record(msg, j) {
    const prime = msg.prime.slice(-1000);
    return JSON.stringify({text: prime + msg.text, start: prime.length, probs: msg.probs.map(round),
                           temperature: j.temperature, top_k: j.topK || null});
  }
  const rate = (msg) => msg.seconds > 0 ? `, ${Math.round(msg.stepped / msg.seconds).toLocaleString("en")} chars/s` : "";

  async function generate(checkpoint, prime, temperature, length, topK, seed) {
    if (!checkpoint) return server("no model is chosen yet, so the server uses its default one");
    if (!await start()) return server("this browser cannot run WebAssembly in a Web Worker");
    const copy = await copyFor(checkpoint);
    if (!copy.url) return server(copy.why);
    prime = typeof prime === "string" ? prime : "";
    if (prime.length > cfg.maxPrime) return server("the prime is too long");
    const j = {type: "generate", url: copy.url, kernel: "wasm", prime, length: Math.max(1, Math.round(length) || 1),
               temperature: Math.max(0, Number(temperature) || 0), topK: Math.max(0, Math.round(topK) || 0),
               seed: Math.round(seed) || 1 + Math.floor(Math.random() * 2147483646)};
    busy = true;
    const msg = await ask(j, (text) => show(j.prime + text));
    busy = false;
    if (msg.type === "error") return server(`the page could not run this model (${msg.message})`);
    if (msg.type !== "done") return [undefined, undefined];
    j.prime = msg.prime;
    lastJob = j;
    show(msg.prime + msg.text);
    const folded = msg.changed ? ` The prime's ${msg.changed} were changed or left out.` : "";
    where(`Generated in your browser (${msg.kernel}): ${j.length.toLocaleString("en")} characters in ` +
          `${msg.seconds.toFixed(2)} s${rate(msg)}; seed ${j.seed}. Move the temperature: the text is ` +
          `re-sampled here with the same random numbers.${folded}`);
    lastRec = record(msg, j);
    return [msg.prime + msg.text, lastRec];
  }

  // The temperature slider moved: the last in-page generation re-sampled with the same draws.
  async function retemper(temperature) {
    if (!lastJob || busy) return undefined;
    const j = {...lastJob, temperature: Math.max(0, Number(temperature) || 0)};
    const msg = await ask({type: "retemper", temperature: j.temperature});
    if (msg.type !== "done") return undefined;
    lastJob = j;
    lastRec = record({...msg, prime: j.prime}, j);
    const text = j.prime + msg.text;
    show(text);
    const same = msg.differs < 0 ? "the same text: every pick stayed the same"
      : msg.differs === 0 ? "different from the first new character on (marked)"
      : `the same for ${msg.differs.toLocaleString("en")} characters after the prime, then different (marked)`;
    where(`Re-sampled in your browser at T = ${j.temperature}, same seed ${j.seed}: ${same}.`, text,
          msg.differs < 0 ? -1 : j.prime.length + msg.differs);
    clearTimeout(settle);           // once the slider rests, the colours follow (one request, not one per move)
    settle = setTimeout(() => el("#browser-record-btn")?.click(), 400);
    return text;
  }

  // Stop: the page's job ends at its next pause (every 40 ms); the text so far stays.
  function stop() {
    busy = false;
    if (worker && pending.size) { worker.postMessage({type: "cancel", job: ++job}); }
    for (const [id, p] of pending) { pending.delete(id); p.resolve({type: "cancelled"}); }
  }

  // For tests and bench/browser_speed.py: logits after a text, and a timed generation with either kernel.
  async function logits(url, text, kernel = "wasm") { await start(); return ask({type: "logits", url, text, kernel}); }
  async function run(url, prime, length, temperature, seed, kernel = "wasm", topK = 0) {
    await start();
    return ask({type: "generate", url, prime, length, temperature, seed, kernel, topK});
  }
  // The slider at rest: the last in-page text's record, for the confidence colours (undefined: nothing new).
  function lastRecord() { const r = lastRec; lastRec = null; return r ?? undefined; }
  const resample = (temperature) => ask({type: "retemper", temperature});     // the last run, re-sampled
  return {generate, retemper, stop, logits, run, resample, copyFor, start, lastRecord};
})();
