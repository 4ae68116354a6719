// The page's side of training in the browser, for the static site (webui/generate/static/site.js) and the app's
// Train tab (webui/train/browser.py): the form (text, seconds, hidden size, the recipe's line), the training worker
// (trainer.js, session.js, team.js, loop.js: its source is handed in), the live loss plot, the samples (each check's
// model is sampled by the page's generation runtime, window.charrnn, on a worker of their own: charrnn.sampler(),
// so the visitor's own generation goes on), Stop, and at the end the kept model:
// given to the runtime to generate from, and made into charrnn's .safetensors file (weights.js) for download.
//   CharrnnTrainView.mount(el, {worker, charrnn, key, done, started}) -> {train, stop}
//     el: the elements {text, file, textInfo, seconds, hidden, recipe, train, stop, plot, status, sample}
//     worker: the training worker's source; key: the name the runtime knows the trained model by;
//     done({key, label, line, url, filename, header}): the kept model is ready (url: its file, a blob: URL);
//     started(): a new run began (a page hides the last run's model and text).
"use strict";
self.CharrnnTrainView = (() => {
  const RECIPE = () => self.CharrnnLoop.RECIPE;
  const count = (n) => n.toLocaleString("en");

  // The losses against the step: the training loss a line, the checks dots; the axis spans the losses seen (a
  // little room above and below), its two ends labelled in the left margin, the steps under it.
  function plot(svg, points) {
    const W = 400, Hh = 200, left = 34, right = 8, top = 18, bottom = 22;
    if (!points.length) { svg.innerHTML = ""; return; }
    const steps = points.map((p) => p.step), losses = points.flatMap((p) => [p.train_loss, p.val_loss])
      .filter((v) => Number.isFinite(v));
    const x1 = Math.max(...steps, 1), lo = Math.min(...losses), hi = Math.max(...losses);
    const room = Math.max((hi - lo) * 0.05, 0.01), y0 = lo - room, y1 = hi + room;
    const X = (s) => left + (W - left - right) * s / x1, Y = (v) => top + (Hh - top - bottom) * (y1 - v) / (y1 - y0);
    const line = points.filter((p) => Number.isFinite(p.train_loss))
      .map((p, i) => `${i ? "L" : "M"}${X(p.step).toFixed(1)},${Y(p.train_loss).toFixed(1)}`).join("");
    const dots = points.filter((p) => Number.isFinite(p.val_loss))
      .map((p) => `<circle cx="${X(p.step).toFixed(1)}" cy="${Y(p.val_loss).toFixed(1)}" r="3" fill="#ea580c"/>`)
      .join("");
    svg.innerHTML = `<path d="${line}" fill="none" stroke="#2563eb" stroke-width="1.5"/>${dots}` +
      `<text x="2" y="${(Y(hi) + 4).toFixed(1)}">${hi.toFixed(2)}</text>` +
      `<text x="2" y="${(Y(lo) + 4).toFixed(1)}">${lo.toFixed(2)}</text>` +
      `<text x="${left}" y="${Hh - 6}">step 0</text>` +
      `<text x="${W - right}" y="${Hh - 6}" text-anchor="end">step ${x1}</text>` +
      `<text x="${W - right}" y="12" text-anchor="end">line: train · dots: validation</text>`;
  }

  // A browser copy (webui/generate/webcopy.py's format) held in memory: its header and floats
  function copyOf(vocab, tensors, config, step, run) {
    const info = {format: "charrnn-web/2", cell: "lstm", layers: config.layers, embed: config.embed,
                  hidden: config.hidden, vocab_size: vocab.length, vocab, fold: {}, dtype: "float32", tensors: {},
                  run, step};
    let offset = 0;
    for (const [name, t] of Object.entries(tensors)) {
      info.tensors[name] = {offset, shape: t.shape};
      offset += t.data.length;
    }
    const floats = new Float32Array(offset);
    for (const [name, t] of Object.entries(tensors)) floats.set(t.data, info.tensors[name].offset);
    info.floats = offset;
    return {info, floats};
  }

  function mount(el, {worker, charrnn, key = "trained-here", done = () => {}, started = () => {}}) {
    const recipe = RECIPE();
    let trainer = null, points = [], fileName = "", kernel = "";
    const loop = self.CharrnnLoop;
    const size = () => el.hidden.value.trim() ||
      `auto (the largest of ${loop.SIZES.join(", ")} that trains ${loop.MIN_STEPS} steps in the time here, measured ` +
      "as it starts)";
    const recipeLine = () => `LSTM 1 x ${size()}, embedding ${recipe.embed}, ${recipe.batch_size} streams x ` +
      `${recipe.seq_len} characters a step, learning rate ${recipe.lr}, dropout ${recipe.dropout}; at most ` +
      `${recipe.max_epochs} passes over the text; checked every ${recipe.eval_every} steps on its last 10%.`;
    el.hidden.value = recipe.hidden === "auto" ? "" : recipe.hidden;
    el.hidden.placeholder = "auto";
    el.seconds.value = recipe.seconds;
    el.recipe.textContent = recipeLine();
    el.hidden.addEventListener("input", () => { el.recipe.textContent = recipeLine(); });
    const describe = () => {
      const chars = Array.from(el.text.value);
      el.textInfo.textContent = chars.length ? `${count(chars.length)} characters, ${new Set(chars).size} distinct` : "";
    };
    el.text.addEventListener("input", () => { fileName = ""; describe(); });
    el.file?.addEventListener("change", async () => {
      const file = el.file.files[0];
      if (!file) return;
      el.text.value = await file.text();
      describe();
      fileName = file.name;
    });

    let samples = null;                  // a runtime lane of their own: a sample never ends the visitor's text
    async function sample(msg, config) {
      const {info, floats} = copyOf(msg.vocab, msg.tensors, config, msg.step, key);
      samples ??= charrnn.sampler ? charrnn.sampler() : charrnn;
      await samples.addModel(`${key}-sample`, info, floats);
      const out = await samples.run(`made:${key}-sample`, "", 300, 0.8, msg.step || 1);
      if (out.type === "done") el.sample.value = `step ${msg.step}:\n${out.prime}${out.text}`;
    }

    async function finish(msg, config) {
      el.stop.disabled = true;
      trainer.terminate();
      trainer = null;
      try {
        if (msg.end === "failed" || !msg.tensors) {
          el.status.textContent = `Training failed: ${msg.reason}.`;
          return;
        }
        const h = msg.header;
        config.hidden = h.model_config.hidden;
        const {info, floats} = copyOf(msg.vocab, msg.tensors, config, h.step, key);
        try {
          await charrnn.addModel(key, info, floats);     // to generate from here; the file below comes regardless
        } catch (err) { /* no runtime in this browser: the download still follows */ }
        const bytes = self.CharrnnWeights.safetensors(msg.tensors, h);
        const last = points.length ? points[points.length - 1].step : 0;
        const why = msg.end === "stopped" ? "Stopped" : msg.reason ? `Finished (${msg.reason})` : "Finished";
        el.status.textContent = `${why} at step ${count(last)}; the kept model is step ${count(h.step)}, validation ` +
          `loss ${Number(h.best_val_loss).toFixed(3)} nats/char.`;
        done({key, header: h, label: `your model (trained here on ${h.data.name})`, filename: `${key}.safetensors`,
              url: URL.createObjectURL(new Blob([bytes], {type: "application/octet-stream"})),
              line: `Trained in this browser on ${h.data.name} (${count(h.data.chars)} chars) · LSTM 1 x ` +
                    `${config.hidden}, ${count(h.params)} parameters · kept model from step ${count(h.step)}: ` +
                    `validation loss ${Number(h.best_val_loss).toFixed(3)} nats/char`});
      } finally {
        el.train.disabled = false;                    // once the status says how it ended
      }
    }

    // A field's number kept within [least, most] (empty or not a number: `otherwise`), and a note when it changed
    function within(field, least, most, otherwise, what, round = (v) => v) {
      const asked = field.value.trim();
      if (asked === "") return {value: otherwise, note: ""};
      const n = Number(asked);
      if (!Number.isFinite(n)) return {value: otherwise, note: `${what} "${asked}" is no number: ${otherwise} used`};
      const value = Math.min(Math.max(round(n), least), most);
      return {value, note: value === round(n) ? "" : `${what} ${asked} is outside ${least} to ${most}: ${value} used`};
    }

    function train() {
      const text = el.text.value;
      if (Array.from(text).length < 200) {
        el.status.textContent = "The text is too short: give it at least 200 characters.";
        return;
      }
      const time = within(el.seconds, 5, 3600, recipe.seconds, "seconds");
      const size = within(el.hidden, 16, 512, "auto", "hidden size", Math.round);
      const seconds = time.value, hidden = size.value;
      const notes = [time.note, size.note].filter(Boolean).join("; ");
      const cfg = {hidden, seconds, name: key, data_name: fileName || "pasted text"};
      const config = {layers: recipe.layers, embed: recipe.embed, hidden};
      trainer?.terminate();
      trainer = new Worker(URL.createObjectURL(new Blob([worker], {type: "text/javascript"})));
      points = [];
      plot(el.plot, points);
      el.train.disabled = true;
      el.stop.disabled = false;
      started();
      el.status.textContent = `Training in this browser…${notes ? ` (${notes}.)` : ""}`;
      trainer.onmessage = (e) => {
        const msg = e.data;
        if (msg.type === "record") {
          if (msg.kernels) {
            const n = msg.threads?.chose ?? 1;
            kernel = `${msg.kernels.chose} on ${n === 1 ? "one thread" : `${n} threads`}, the fastest here`;
          }
          if (msg.team_lost) kernel = `on one thread since a helper thread failed: ${msg.team_lost}`;
          if (msg.sizing) config.hidden = msg.sizing.hidden;             // what auto chose, measured
          points.push(msg);
          plot(el.plot, points);
          const val = Number.isFinite(msg.val_loss) ? ` · validation ${msg.val_loss.toFixed(3)}` : "";
          el.status.textContent = `Training LSTM 1 x ${config.hidden} in this browser: step ${count(msg.step)} · train loss ` +
            `${Number(msg.train_loss).toFixed(3)}${val} · ${count(Math.round(msg.chars_per_s))} chars/s · ` +
            `${msg.elapsed.toFixed(0)} s of ${seconds} s (${kernel})${notes ? ` · ${notes}` : ""}`;
        } else if (msg.type === "model") {
          sample(msg, config);
        } else if (msg.type === "done") {
          finish(msg, config);
        }
      };
      trainer.postMessage({type: "train", text, cfg});
    }
    const stop = () => trainer?.postMessage({type: "stop"});
    el.train.addEventListener("click", train);
    el.stop.addEventListener("click", stop);
    return {train, stop};
  }

  return {mount, plot, copyOf};
})();
