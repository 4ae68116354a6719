// The static site's side of the page (webui/export.py writes it into index.html after page.js): the model
// picker, the Generate and Stop buttons, the temperature slider, the next-character bars and the confidence
// colours, all computed in this page by the worker (runtime.js) through window.charrnn (page.js). No server: the
// copies and index.json are files next to index.html.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const cfg = window.CHARRNN_BROWSER, charrnn = window.charrnn;
  const dark = matchMedia("(prefers-color-scheme: dark)");
  const theme = () => document.body.classList.toggle("dark", dark.matches);
  theme(); dark.addEventListener("change", theme);
  let index = {}, shown = "";

  async function load() {
    try {
      const res = await fetch(cfg.folder + cfg.index, {cache: "no-store"});
      index = res.ok ? await res.json() : {};
    } catch (err) { index = {}; }
    const picker = $("model");
    for (const [key, entry] of Object.entries(index)) if (entry.copy) picker.add(new Option(entry.label || key, key));
    if (!picker.options.length) $("model-info").textContent = "This site holds no model: export it with --runs NAME.";
    describe();
  }
  function describe() {
    const entry = index[$("model").value] || {};
    $("model-info").textContent = entry.line || "";
    const link = $("model-download");
    link.hidden = !entry.download;
    if (entry.download) { link.href = entry.download; link.download = entry.filename || entry.download.split("/").pop(); }
  }

  const readable = (ch) => cfg.views.readable[ch] ?? ch;
  async function bars(text) {
    const copy = await charrnn.copyFor($("model").value);
    if (!copy.url) return;
    const msg = await charrnn.logits(copy.url, text);
    if (msg.type !== "logits") return;
    const t = Number($("temperature").value), chars = msg.vocab, z = msg.logits.map((x) => x / Math.max(t, 1e-6));
    const top = Math.max(...z), e = z.map((x) => Math.exp(x - top)), sum = e.reduce((a, b) => a + b, 0);
    const ranked = e.map((x, i) => [x / sum, chars[i]]).sort((a, b) => b[0] - a[0]).slice(0, 15);
    const box = $("bars");
    box.replaceChildren();
    for (const [p, ch] of ranked) {
      const row = document.createElement("div"); row.className = "bar";
      const c = document.createElement("span"); c.className = "char"; c.textContent = readable(ch);
      const f = document.createElement("span"); f.className = "fill"; f.style.width = `${(p * 70).toFixed(1)}%`;
      const v = document.createElement("span"); v.textContent = p.toFixed(3);
      row.append(c, f, v); box.append(row);
    }
  }

  async function generate() {
    $("confidence").innerHTML = charrnn.generating();
    const out = await charrnn.generate($("model").value, $("prime-text").value, Number($("temperature").value),
                                       Number($("length").value), Number($("topk").value), Number($("seed").value));
    if (!out || out[0] === undefined) return;
    shown = out[0];
    $("confidence").innerHTML = out[2];
    await bars(shown);
  }
  async function retemper() {
    const t = $("temperature").value;
    $("temperature-value").textContent = t;
    const text = await charrnn.retemper(t);
    if (text !== undefined) shown = text;
  }
  // page.js clicks #browser-record-btn once the slider rests: then the colours and the bars follow
  async function rested() {
    const [html] = charrnn.rested();
    if (html !== undefined) { $("confidence").innerHTML = html; await bars(shown); }
  }
  const record = document.createElement("button");
  record.id = "browser-record-btn"; record.hidden = true; record.onclick = rested;
  document.body.append(record);
  $("model").addEventListener("change", describe);
  $("generate-btn").addEventListener("click", generate);
  $("stop-btn").addEventListener("click", () => { const line = charrnn.stop(); if (line) $("confidence").innerHTML = line; });
  $("temperature").addEventListener("input", retemper);

  // --- training in this page (webui/train/static/trainview.js), its model then offered in the picker above ---------
  const TRAINED = "trained-here";
  window.CharrnnTrainView.mount({text: $("train-text"), file: $("train-file"), textInfo: $("train-text-info"),
                                 seconds: $("train-seconds"), hidden: $("train-hidden"), recipe: $("train-recipe"),
                                 train: $("train-btn"), stop: $("train-stop-btn"), plot: $("train-plot"),
                                 status: $("train-status"), sample: $("train-sample")},
                                {worker: window.CHARRNN_TRAIN.worker, charrnn, key: TRAINED, done: (model) => {
    index[TRAINED] = {copy: "memory", label: model.label, line: model.line, filename: model.filename,
                      download: model.url};
    const picker = $("model"), known = [...picker.options].find((o) => o.value === TRAINED);
    if (known) known.text = model.label;
    else picker.add(new Option(model.label, TRAINED), 0);
    picker.value = TRAINED;
    describe();
    $("train-status").textContent += " It is chosen above: Generate from it, or download it.";
  }});
  load();
})();
