// The static site's side of the page (webui/generate/export.py writes it into index.html after page.js): the model
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

  // --- training in this page: a second worker (trainer.js, session.js, loop.js: cfg.trainWorker) -----------------
  const RECIPE = window.CharrnnLoop.RECIPE;          // loop.js, loaded in the page for its recipe
  const TRAINED = "trained-here";
  let trainer = null, points = [], trainedName = "", kernel = "";
  const recipeLine = () => `LSTM 1 x ${$("train-hidden").value}, embedding ${RECIPE.embed}, ` +
    `${RECIPE.batch_size} streams x ${RECIPE.seq_len} characters a step, learning rate ${RECIPE.lr}, dropout ` +
    `${RECIPE.dropout}; at most ${RECIPE.max_epochs} passes over the text; checked every ${RECIPE.eval_every} steps.`;
  $("train-hidden").value = RECIPE.hidden;
  $("train-seconds").value = RECIPE.seconds;
  $("train-recipe").textContent = recipeLine();
  $("train-hidden").addEventListener("input", () => { $("train-recipe").textContent = recipeLine(); });
  $("train-text").addEventListener("input", () => {
    const n = Array.from($("train-text").value).length;
    $("train-text-info").textContent = n ? `${n.toLocaleString("en")} characters, ` +
      `${new Set(Array.from($("train-text").value)).size} distinct` : "";
  });
  $("train-file").addEventListener("change", async () => {
    const file = $("train-file").files[0];
    if (!file) return;
    $("train-text").value = await file.text();
    trainedName = file.name;
    $("train-text").dispatchEvent(new Event("input"));
  });

  function plot() {
    const svg = $("train-plot"), W = 400, Hh = 200, pad = 28;
    if (!points.length) { svg.innerHTML = ""; return; }
    const steps = points.map((p) => p.step), losses = points.flatMap((p) => [p.train_loss, p.val_loss])
      .filter((v) => Number.isFinite(v));
    const x0 = 0, x1 = Math.max(...steps, 1), y0 = Math.min(...losses, 0), y1 = Math.max(...losses, 1);
    const X = (s) => pad + (W - pad - 8) * (s - x0) / (x1 - x0), Y = (v) => Hh - pad - (Hh - pad - 8) * (v - y0) / (y1 - y0);
    const line = points.filter((p) => Number.isFinite(p.train_loss))
      .map((p, i) => `${i ? "L" : "M"}${X(p.step).toFixed(1)},${Y(p.train_loss).toFixed(1)}`).join("");
    const dots = points.filter((p) => Number.isFinite(p.val_loss))
      .map((p) => `<circle cx="${X(p.step).toFixed(1)}" cy="${Y(p.val_loss).toFixed(1)}" r="3" fill="#ea580c"/>`).join("");
    svg.innerHTML = `<path d="${line}" fill="none" stroke="#2563eb" stroke-width="1.5"/>${dots}` +
      `<text x="${pad}" y="12">${y1.toFixed(2)}</text><text x="${pad}" y="${Hh - pad + 12}">${y0.toFixed(2)} · step 0</text>` +
      `<text x="${W - 60}" y="${Hh - pad + 12}">step ${x1}</text>` +
      `<text x="${W - 150}" y="12">line: train · dots: validation</text>`;
  }

  function copyOf(vocab, tensors, config, step) {   // a browser copy (webui/generate/webcopy.py) held in memory
    const info = {format: "charrnn-web/2", cell: "lstm", layers: config.layers, embed: config.embed,
                  hidden: config.hidden, vocab_size: vocab.length, vocab, fold: {}, dtype: "float32", tensors: {},
                  run: TRAINED, step};
    let offset = 0;
    for (const [name, t] of Object.entries(tensors)) { info.tensors[name] = {offset, shape: t.shape}; offset += t.data.length; }
    const floats = new Float32Array(offset);
    for (const [name, t] of Object.entries(tensors)) floats.set(t.data, info.tensors[name].offset);
    info.floats = offset;
    return {info, floats};
  }

  async function sample(msg, config) {
    const {info, floats} = copyOf(msg.vocab, msg.tensors, config, msg.step);
    await charrnn.addModel(`${TRAINED}-sample`, info, floats);
    const copy = await charrnn.copyFor(`${TRAINED}-sample`);
    const out = await charrnn.run(copy.url, "", 300, 0.8, msg.step || 1);
    if (out.type === "done") $("train-sample").value = `step ${msg.step}:\n${out.prime}${out.text}`;
  }

  function train() {
    const text = $("train-text").value;
    if (Array.from(text).length < 200) { $("train-status").textContent = "The text is too short: paste at least 200 characters."; return; }
    const seconds = Math.min(Math.max(Number($("train-seconds").value) || RECIPE.seconds, 5), 3600);
    const hidden = Math.min(Math.max(Math.round(Number($("train-hidden").value)) || RECIPE.hidden, 16), 512);
    const cfg = {hidden, seconds, name: TRAINED, data_name: trainedName || "pasted text"};
    const config = {layers: RECIPE.layers, embed: RECIPE.embed, hidden};
    trainer?.terminate();
    trainer = new Worker(URL.createObjectURL(new Blob([window.CHARRNN_BROWSER.trainWorker], {type: "text/javascript"})));
    points = [];
    plot();
    $("train-btn").disabled = true; $("train-stop-btn").disabled = false;
    $("train-status").textContent = "Training in this page…";
    trainer.onmessage = async (e) => {
      const msg = e.data;
      if (msg.type === "record") {
        if (msg.kernels) kernel = msg.kernels.chose;
        points.push(msg);
        plot();
        const val = Number.isFinite(msg.val_loss) ? ` · validation ${msg.val_loss.toFixed(3)}` : "";
        $("train-status").textContent = `Training in this page: step ${msg.step.toLocaleString("en")} · train loss ` +
          `${Number(msg.train_loss).toFixed(3)}${val} · ${Math.round(msg.chars_per_s).toLocaleString("en")} chars/s · ` +
          `${msg.elapsed.toFixed(0)} s of ${seconds} s (${kernel}, the faster here)`;
      } else if (msg.type === "model") {
        sample(msg, config);
      } else if (msg.type === "done") {
        $("train-btn").disabled = false; $("train-stop-btn").disabled = true;
        trainer.terminate(); trainer = null;
        if (msg.end === "failed" || !msg.tensors) { $("train-status").textContent = `Training failed: ${msg.reason}.`; return; }
        const h = msg.header;
        const {info, floats} = copyOf(msg.vocab, msg.tensors, config, h.step);
        await charrnn.addModel(TRAINED, info, floats);
        const bytes = CharrnnWeights.safetensors(msg.tensors, h);
        const label = `your model (trained here on ${h.data.name})`;
        index[TRAINED] = {copy: "memory", label, line: `Trained in this page on ${h.data.name} (${h.data.chars.toLocaleString("en")} chars) · ` +
          `LSTM 1 x ${hidden}, ${h.params.toLocaleString("en")} parameters · kept model from step ${h.step}: validation loss ` +
          `${Number(h.best_val_loss).toFixed(3)} nats/char`, filename: `${TRAINED}.safetensors`,
          download: URL.createObjectURL(new Blob([bytes], {type: "application/octet-stream"}))};
        const picker = $("model");
        if (![...picker.options].some((o) => o.value === TRAINED)) picker.add(new Option(label, TRAINED), 0);
        else [...picker.options].find((o) => o.value === TRAINED).text = label;
        picker.value = TRAINED;
        describe();
        const why = msg.end === "stopped" ? "stopped" : msg.reason ? `finished: ${msg.reason}` : "finished";
        $("train-status").textContent = `${why[0].toUpperCase()}${why.slice(1)} at step ${points.length ? points[points.length - 1].step : 0}; ` +
          `the kept model (step ${h.step}, validation loss ${Number(h.best_val_loss).toFixed(3)}) is chosen above: Generate, or download it.`;
      }
    };
    trainer.postMessage({type: "train", text, cfg});
  }
  $("train-btn").addEventListener("click", train);
  $("train-stop-btn").addEventListener("click", () => trainer?.postMessage({type: "stop"}));
  load();
})();
