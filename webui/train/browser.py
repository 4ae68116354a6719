"""Training in the visitor's browser, from the app's Train tab: the section's HTML, and the scripts the page loads
once (``head_script``): the training worker's source (``static/trainer.js``, ``session.js``, ``team.js``,
``loop.js``; a run's helper Workers are made from the same source), the file writer (``weights.js``), the recipe
and the form's controller (``loop.js``, ``trainview.js``), and the glue that mounts it once Gradio has drawn the
section. The run never touches the server: its model is generated from in the
page (the Generate tab's runtime, ``webui/generate/static``) and downloaded as charrnn's file, which the Generate
tab's "Add a model" takes onto the server only if the visitor chooses to.
"""
from __future__ import annotations

import json
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
WORKER = ("trainer.js", "session.js", "team.js", "loop.js")
PAGE = ("weights.js", "loop.js", "trainview.js")
KEY = "trained-in-browser"            # the name the page's runtime knows the model by

SECTION = """<div id="browser-train" class="charrnn-browser-train">
<p>The same kind of model, trained by <b>your</b> computer in this page (Web Workers, on as many cores as train
faster): nothing is sent to the server, no queue, and the server's trainer stays free for others. Slower than
the server's trainer on a big text; ready at once when the server is busy. Paste a text, or take the one pasted
above.</p>
<div class="bt-row"><textarea class="bt-text" rows="6" placeholder="Paste a text here"></textarea></div>
<p class="bt-hint"><button class="bt-use-pasted" type="button">Take the pasted text above</button>
or open a .txt file: <input class="bt-file" type="file" accept=".txt,text/plain"> <span class="bt-text-info"></span></p>
<div class="bt-row"><label>Seconds to train <input class="bt-seconds" type="number" min="5" max="3600"></label>
<label>Hidden size <input class="bt-hidden" type="number" min="16" max="512"></label></div>
<p class="bt-hint bt-recipe"></p>
<div class="bt-row"><button class="bt-train bt-primary" type="button">Train in this browser</button>
<button class="bt-stop bt-danger" type="button" disabled>Stop</button></div>
<svg class="bt-plot" viewBox="0 0 400 200" role="img" aria-label="training and validation loss"></svg>
<p class="bt-status">Not started.</p>
<textarea class="bt-sample" rows="6" readonly placeholder="Samples appear here as it learns"></textarea>
<div class="bt-after" hidden>
<p class="bt-model-line"></p>
<p><a class="bt-download">Download it</a> (charrnn's <code>.safetensors</code>: the CLI loads it; to keep it on this
server, add it in the Generate tab under <i>Take your model with you</i>).</p>
<div class="bt-row"><input class="bt-prime" type="text" placeholder="Prime (optional)">
<button class="bt-generate" type="button">Generate from it here</button></div>
<textarea class="bt-output" rows="6" readonly></textarea>
</div>
</div>"""

CSS = """
.charrnn-browser-train .bt-row { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin: 6px 0; }
.charrnn-browser-train textarea { width: 100%; box-sizing: border-box; font-family: ui-monospace, monospace; }
.charrnn-browser-train .bt-hint { font-size: 0.9em; opacity: 0.8; }
.charrnn-browser-train .bt-plot { width: 100%; max-width: 520px; height: auto; border: 1px solid #d4d4d8;
  border-radius: 6px; }
.charrnn-browser-train .bt-plot text { font-size: 10px; fill: currentColor; opacity: 0.7; }
.charrnn-browser-train button { padding: 6px 14px; border-radius: 6px; border: 1px solid #d4d4d8; cursor: pointer; }
.charrnn-browser-train button.bt-primary { background: #ea580c; color: #fff; border-color: #ea580c; }
.charrnn-browser-train button.bt-danger { background: #ef4444; color: #fff; border-color: #ef4444; }
.charrnn-browser-train button:disabled { opacity: 0.5; cursor: default; }
.charrnn-browser-train input[type=number] { width: 6em; }
.charrnn-browser-train input.bt-prime { flex: 1; min-width: 10em; }
"""

GLUE = """
(() => {
  const KEY = __KEY__;
  const mount = () => {
    const root = document.getElementById("browser-train");
    if (!root || root.dataset.mounted || !window.charrnn || !window.CharrnnTrainView) return false;
    root.dataset.mounted = "1";
    const q = (name) => root.querySelector(`.bt-${name}`);
    const charrnn = window.charrnn;
    window.CharrnnTrainView.mount(
      {text: q("text"), file: q("file"), textInfo: q("text-info"), seconds: q("seconds"), hidden: q("hidden"),
       recipe: q("recipe"), train: q("train"), stop: q("stop"), plot: q("plot"), status: q("status"),
       sample: q("sample")},
      {worker: window.CHARRNN_TRAIN.worker, charrnn, key: KEY, done: (model) => {
        const link = q("download");
        link.href = model.url; link.download = model.filename;
        q("model-line").textContent = model.line;
        q("after").hidden = false;
      }, started: () => {                     // the last run's model and text are not this one's
        q("after").hidden = true;
        q("output").value = "";
      }});
    q("use-pasted").addEventListener("click", () => {
      const pasted = document.querySelector("#pasted textarea");
      if (!pasted || !pasted.value) { q("text-info").textContent = "Nothing is pasted above (section 1)."; return; }
      q("text").value = pasted.value;
      q("text").dispatchEvent(new Event("input"));
    });
    q("generate").addEventListener("click", async () => {
      const copy = await charrnn.copyFor(KEY);
      const out = await charrnn.run(copy.url, q("prime").value, 300, 0.8, 1 + Math.floor(Math.random() * 2147483646));
      q("output").value = out.type === "done" ? out.prime + out.text : `Could not generate: ${out.message || out.type}`;
    });
    return true;
  };
  const timer = setInterval(() => { if (mount()) clearInterval(timer); }, 300);
})();
"""


def head_script(app: bool = True) -> str:
    """The <script>s a page loads once for training in the browser (see the module's docstring); ``app``: with the
    glue that mounts the Train tab's section (the static site, ``webui.export``, mounts its own)."""
    worker = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in WORKER)
    worker = json.dumps(worker).replace("</", "<\\/")          # a JSON string: "</" never closes the script early
    scripts = "".join(f"<script>{(STATIC / name).read_text(encoding='utf-8')}</script>" for name in PAGE)
    glue = GLUE.replace("__KEY__", json.dumps(KEY))
    return (f"<script>window.CHARRNN_TRAIN = {{worker: {worker}}};</script>{scripts}"
            + (f"<script>{glue}</script><style>{CSS}</style>" if app else ""))
