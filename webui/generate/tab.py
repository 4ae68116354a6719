"""The Generate tab: a checkpoint, a prime and a temperature; streamed text, the next-character bars
under the temperature slider, the confidence colouring and temperatures side by side; and a run's model
downloaded, added back from a file, or deleted.

Text is generated in the page when it can be (webui/generate/static/page.js), which then colours it itself and
sends the server only the text, for the chart; the hidden server button generates it here otherwise."""
from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr

from charrnn.runs.store import read_header
from webui.checks import finite
from webui.colours import warning_html
from webui.context import AppContext
from webui.errors import UserError, esc
from webui.generate.generation import (
    SIDE_LENGTH,
    SIDE_TEMPERATURES,
    TOP_CHARS,
    compare_temperatures,
    generation_stream,
    next_char,
)
from webui.generate.view import GENERATING, STOPPED, confidence_html
from webui.glue import ERRORS, QUIET, WholeNumber, handler, message_of, visitor_of_request, warn
from webui.models import (
    BUNDLED_KEY,
    checkpoint_line,
    checkpoint_summaries,
    default_checkpoint,
    resolve_checkpoint,
    run_directory,
)
from webui.owners import WrongKeys, check_owner, check_password
from webui.passages import model_prime
from webui.prime import DEFAULT_PRIME
from webui.transfer import BUSY, DownloadFolder, add_model, build_download, delete_run, training_state

GENERATE_INPUTS = ("checkpoint", "prime", "temperature", "length", "top_k", "seed", "key")   # key: optional, last
VIEW = ["charrnn-view"]          # the class webui/style.py draws the coloured views under
# What the slider does, and no more: the smallest step can change a text from its first new character.
TEMPERATURE_INFO = ("below 1 safer (0 = always the likeliest), above 1 wilder: the scores (logits) are divided by T "
                    "before the softmax. Moving it re-samples this page's text with the same random numbers: it "
                    "changes from the first pick that differs.")
# The Generate button runs in the page (webui/static/page.js); it clicks the hidden server button when it cannot.
BROWSER_GENERATE = "(c, p, t, n, k, s) => window.charrnn ? window.charrnn.generate(c, p, t, n, k, s) : " \
                   "(document.querySelector('#generate-server-btn').click(), [undefined, undefined, undefined])"
HIDDEN = ["charrnn-hidden"]
# webui/style.py lays these out; on a phone the temperature slider sits right under the output
LAYOUT, MAIN, SIDE = ["charrnn-generate"], ["charrnn-generate-main"], ["charrnn-generate-side"]
BUNDLED_REFUSAL = "The bundled model cannot be deleted: it is what a fresh app generates from."


def build(ctx: AppContext) -> SimpleNamespace:
    settings = ctx.settings
    g = SimpleNamespace(reading=gr.State(DEFAULT_PRIME), record=gr.State(None),   # the text the chart reads
                        default_prime=gr.State(DEFAULT_PRIME))   # the prime the chosen model suggested
    g.checkpoint = gr.Dropdown([], label="Checkpoint", info="newest first", allow_custom_value=True,
                               elem_id="checkpoint")
    g.checkpoint_md = gr.Markdown(elem_id="checkpoint-info")
    build_transfer(ctx, g)
    with gr.Column(elem_classes=VIEW), gr.Row(elem_classes=LAYOUT):
        with gr.Column(scale=3, elem_classes=MAIN):
            g.prime = gr.Textbox(label="Prime", value=DEFAULT_PRIME, lines=2,
                                 info="Text to start from (at first, the start of a line of the chosen model's own "
                                      "text); characters the model does not know are transliterated to ASCII or left "
                                      "out (with a warning). Empty = start of a line.",
                                 elem_id="prime")
            g.length = gr.Slider(1, settings.max_length, value=500, step=1, label="Length (characters)",
                                 elem_id="length")
            with gr.Row():
                g.top_k = WholeNumber(0, precision=0, label="Top-k", elem_id="top-k",
                                      info="sample among the k likeliest; 0 = off")
                g.seed = WholeNumber(0, precision=0, label="Seed", elem_id="seed",
                                     info="0 = random; one seed: one text, in the page, on the server, in Compare")
            with gr.Row():
                g.generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                g.stop_btn = gr.Button("Stop", variant="stop", elem_id="gen-stop-btn")   # as the Train tab's Stop
                g.server_btn = gr.Button("Generate on the server", elem_id="generate-server-btn", elem_classes=HIDDEN)
            g.output = gr.Textbox(label="Output", lines=12, max_lines=30, interactive=False, buttons=["copy"],
                                  elem_id="output")
            g.where = gr.HTML("<div class='charrnn-where'></div>", elem_id="gen-where", elem_classes=VIEW)
            g.browser_record = gr.Textbox(elem_id="browser-record", elem_classes=HIDDEN, show_label=False)
            g.record_btn = gr.Button("colours", elem_id="browser-record-btn", elem_classes=HIDDEN)
        with gr.Column(scale=2, elem_classes=SIDE):
            g.temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature", elem_id="temperature",
                                      info=TEMPERATURE_INFO)
            g.dist_plot = gr.BarPlot(None, x="char", y="probability", sort="-y", y_lim=[0, 1], height=280,
                                     title=f"Next character: the model's top {TOP_CHARS} guesses",
                                     x_title="next character", y_title="probability", elem_id="next-char-plot")
            g.dist_line = gr.HTML(elem_id="next-char-info", elem_classes=VIEW)
            g.position = gr.Slider(0, len(DEFAULT_PRIME), value=len(DEFAULT_PRIME), step=1,
                                   label="Position in the text",
                                   info="characters read before the guess: of the prime, or after a generation "
                                        "of the output (it starts just after the prime)", elem_id="position")
    gr.Markdown("#### Confidence: how likely each generated character was")
    g.confidence = gr.HTML(confidence_html(None), elem_id="confidence", elem_classes=VIEW)   # a long text scrolls
    gr.Markdown("#### Temperature side by side\n"                  # above the button: a phone has no room beside it
                f"The prime continued at T = {', '.join(f'{t:g}' for t in SIDE_TEMPERATURES)}: "
                f"{SIDE_LENGTH} characters each, all with one seed (the Seed above, or a random one).")
    with gr.Row():
        g.compare_btn = gr.Button("Compare temperatures", size="md", elem_id="compare-btn", scale=0, min_width=240)
    g.compare_html = gr.HTML(elem_id="compare", elem_classes=VIEW)
    return g


def wire(ctx: AppContext, g: SimpleNamespace) -> None:
    def describe(key):
        return describe_checkpoint(ctx, key)

    g.checkpoint.input(describe, g.checkpoint, g.checkpoint_md, api_name="describe_checkpoint",
                       show_progress="hidden")

    def chart(checkpoint, text, position, temperature):
        return next_char(ctx, checkpoint, text, position, temperature)

    inside_opts = dict(**QUIET, concurrency_id="inside", concurrency_limit=2)
    redraw = dict(fn=handler(chart, inline=lambda m: (gr.skip(), warning_html(m))),
                  inputs=[g.checkpoint, g.reading, g.position, g.temperature], outputs=[g.dist_plot, g.dist_line],
                  trigger_mode="always_last", **inside_opts)
    gr.on([g.checkpoint.change, g.temperature.change, g.position.change], **redraw)
    g.prime.change(read_prime, g.prime, [g.reading, g.position], **QUIET, queue=False).then(**redraw)

    def follow(checkpoint, prime, suggested):
        return follow_prime(ctx, checkpoint, prime, suggested)

    g.checkpoint.change(follow, [g.checkpoint, g.prime, g.default_prime], [g.prime, g.default_prime], **QUIET,
                        queue=False)     # at once: a visitor typing a prime right after choosing is not overwritten

    def generate(checkpoint=None, prime=None, temperature=None, length=None, top_k=None, seed=None, key=None):
        """generate_text for the page: the text streams; at the end a record of each character's probability.

        The record goes to a gr.State, which gradio_client leaves out: /generate still returns only the text.
        A refused request records why, then fails (the toast; ``refused_generation`` clears the views). No
        checkpoint (an API call that names none) is the caller's own latest run (by ``key``, the browser's), else the
        operator's, else the bundled model (``default_checkpoint``). The other
        defaults are never used: the API takes them from the components' values.
        """
        checkpoint = checkpoint or default_checkpoint(ctx.settings, key=key)
        try:
            for gen in generation_stream(ctx, checkpoint, prime, temperature, length, top_k, seed, warn):
                yield gen.text, gr.skip()
        except ERRORS as e:
            yield gr.skip(), {"refused": message_of(e)}
            raise
        yield gen.text, gen.record(temperature, top_k)

    # wherever it runs, no colours until the text is complete (the page says so itself, asking the server nothing)
    g.generate_btn.click(None, None, g.confidence, js="() => window.charrnn?.generating()", api_visibility="private",
                         show_progress="hidden")
    g.server_btn.click(lambda: (GENERATING, None), None, [g.confidence, g.record], **QUIET, queue=False)
    gen_event = g.server_btn.click(handler(generate), [g.checkpoint, g.prime, g.temperature, g.length, g.top_k,
                                                         g.seed, g.key], [g.output, g.record],
                                     api_name="generate", concurrency_id="generate", concurrency_limit=6,
                                     preprocess=False)   # raw values: check_generation_args checks each one
    gen_event.then(after_generation, g.record, [g.confidence, g.reading, g.position], **QUIET).then(**redraw)
    gen_event.failure(refused_generation, [g.output, g.record], [g.output, g.confidence], **QUIET, queue=False)
    g.stop_btn.click(None, None, None, cancels=[gen_event], api_visibility="private")
    wire_browser(g, redraw)
    g.stop_btn.click(stopped_confidence, g.record, g.confidence, **QUIET, queue=False)

    def compare(checkpoint, prime, seed, top_k):
        return compare_temperatures(ctx, checkpoint, prime, seed, warn, top_k=top_k)

    g.compare_btn.click(handler(compare), [g.checkpoint, g.prime, g.seed, g.top_k], g.compare_html,
                        api_visibility="private",
                        concurrency_id="generate", concurrency_limit=6)
    wire_transfer(ctx, g)


def wire_browser(g: SimpleNamespace, redraw: dict) -> None:
    """Generation in the page: Generate, the temperature slider re-sampling as it moves, Stop. The page colours what
    it generated; the text alone comes back (``browser_record``), for the chart to read."""
    page = dict(fn=None, api_visibility="private", show_progress="hidden")
    g.generate_btn.click(inputs=[g.checkpoint, g.prime, g.temperature, g.length, g.top_k, g.seed],
                         outputs=[g.output, g.browser_record, g.confidence], js=BROWSER_GENERATE, **page)
    g.temperature.input(inputs=g.temperature, outputs=g.output, js="(t) => window.charrnn?.retemper(t)", **page)
    g.record_btn.click(inputs=None, outputs=[g.confidence, g.browser_record], js="() => window.charrnn?.rested()",
                       **page)                                  # the slider at rest: the page clicks this button
    g.stop_btn.click(outputs=g.confidence, js="() => window.charrnn?.stop()", **page)
    g.browser_record.change(after_browser_generation, g.browser_record, [g.reading, g.position, g.record],
                            **QUIET).then(**redraw)


def after_browser_generation(raw) -> tuple:
    """A generation made in the page came back: the chart reads it from just after the prime; the record is kept
    (Stop then leaves the page's colours alone)."""
    record = browser_record(raw)
    if record is None:
        return gr.skip(), gr.skip(), gr.skip()
    return record["text"], gr.update(maximum=max(1, len(record["text"])), value=record["start"]), record


def browser_record(raw) -> dict | None:
    """The record the page sent (text, start: the prime's length in it, temperature, top_k), or None when it is not
    one. It carries no probabilities: the page coloured the text itself."""
    try:
        rec = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        return None
    start = rec.get("start")
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= len(rec["text"]):
        return None
    t, k = rec.get("temperature"), rec.get("top_k")
    return {"text": rec["text"], "start": start,
            "temperature": float(t) if isinstance(t, (int, float)) and finite(t) else 0.0,
            "top_k": k if isinstance(k, int) and k > 0 else None}


def build_transfer(ctx: AppContext, g: SimpleNamespace) -> None:
    """Download the chosen run, add a model from a file, delete the chosen run (components into ``g``)."""
    with gr.Accordion("Take your model with you: download, add back, delete", open=False, elem_id="transfer"):
        gr.Markdown("A Space's disk is wiped when it restarts: download a run you trained (a zip of its model, "
                    "checkpoint.json, metrics and loss plot, and the model alone as a .safetensors file), and add "
                    "that .safetensors file back later, here or on another copy of the app, to generate from it again. "
                    "Delete is offered for a run this browser started or added (for any run but the bundled model "
                    "when the app has a training password).")
        with gr.Row():
            g.download_btn = gr.Button("Download the chosen run", elem_id="download-btn")
            g.delete_btn = gr.Button("Delete the chosen run", variant="stop", visible=False, elem_id="delete-btn")
            g.confirm_delete_btn = gr.Button("Yes, delete it", variant="stop", visible=False,
                                             elem_id="confirm-delete-btn")
        g.download_files = gr.File(label="Download", file_count="multiple", interactive=False, visible=False,
                                   elem_id="download-files")
        with gr.Row():
            g.model_file = gr.File(label="Add a model: a .safetensors file made by charrnn", type="filepath",
                                   file_types=[".safetensors"], elem_id="model-file")
            with gr.Column():
                g.model_name = gr.Textbox(label="Run name (optional)", placeholder="from the file name",
                                          elem_id="model-name")
                g.transfer_password = gr.Textbox(label="Training password", type="password",
                                                 visible=bool(ctx.settings.password), elem_id="transfer-password")
                g.add_btn = gr.Button("Add model", elem_id="add-model-btn")
        g.transfer_md = gr.Markdown(elem_id="transfer-message")
        g.pending_delete = gr.Textbox(visible=False, label="run")      # the run the confirm button deletes


def wire_transfer(ctx: AppContext, g: SimpleNamespace) -> None:
    """The download, add and delete events, and the read-only /list_checkpoints endpoint."""
    downloads = DownloadFolder()

    def list_checkpoints() -> list[dict]:
        """The checkpoints /generate takes, newest first: key, label, corpus, corpus_chars, params, bytes, cell,
        layers, hidden, steps, kept_step, val_loss (of the kept model), state, and default (the one /generate
        uses when no checkpoint is given)."""
        return checkpoint_summaries(ctx.settings)

    gr.api(list_checkpoints, api_name="list_checkpoints", concurrency_limit=None)

    # None defaults make these parameters optional for gradio_client (the page always sends every input)
    def download_run(checkpoint=None):
        key = checkpoint or default_checkpoint(ctx.settings)
        return [str(p) for p in build_download(ctx, key, downloads.fresh())]

    g.download_btn.click(lambda: gr.update(visible=True), None, g.download_files, **QUIET, queue=False)  # props only
    g.download_btn.click(handler(download_run), g.checkpoint, g.download_files, api_name="download_run",
                         concurrency_id="transfer", concurrency_limit=2)

    def add(password=None, model=None, run_name=None, key=None):
        return add_model(ctx, password, model, run_name, key)

    g.add_btn.click(handler(add), [g.transfer_password, g.model_file, g.model_name, g.key], g.transfer_md,
                    api_name="add_model", concurrency_id="transfer", concurrency_limit=2)
    wire_delete(ctx, g)


def wire_delete(ctx: AppContext, g: SimpleNamespace) -> None:
    """Delete, offered only where it can work, refused at the first click when it cannot, confirmed by a second
    button; the page's refusals are plain lines under the buttons. /delete_run is the same for API callers, whose
    refusals are errors."""
    def offer(checkpoint, key, visitor):
        shown = deletable(ctx.settings, checkpoint, key, ctx.not_offered, visitor)
        return gr.update(visible=shown), gr.update(visible=False), ""

    gr.on([g.checkpoint.change, g.key.change], handler(offer, ("checkpoint", "key"), visitor=True),
          [g.checkpoint, g.key],
          [g.delete_btn, g.confirm_delete_btn, g.pending_delete], **QUIET, queue=False)

    def ask(checkpoint, key, password, visitor):
        return ask_to_delete(ctx, checkpoint, key, password, visitor)

    g.delete_btn.click(handler(ask, ("checkpoint", "key", "password"), visitor=True),
                       [g.checkpoint, g.key, g.transfer_password],
                       [g.confirm_delete_btn, g.pending_delete, g.transfer_md], **QUIET)

    def confirm(password, run, key, visitor):
        return confirm_delete(ctx, password, run, key, visitor)

    g.confirm_delete_btn.click(handler(confirm, ("password", "run", "key"), visitor=True),
                               [g.transfer_password, g.pending_delete, g.key],
                               [g.transfer_md, g.confirm_delete_btn, g.pending_delete], **QUIET,
                               concurrency_id="transfer", concurrency_limit=2)

    # gr.api reads its inputs' types from this signature, so the visitor comes from a gr.Request of its own here
    def delete(password: str | None = None, run: str | None = None, key: str | None = None,
               request: gr.Request = None) -> str:
        """Delete run ``run`` (its folder and every file): never the bundled model, nor a run that is training; with
        no training password set, only with the key it was started or added with."""
        return delete_run(ctx, password, run, key, visitor=visitor_of_request(request))

    gr.api(handler(delete), api_name="delete_run", concurrency_id="transfer", concurrency_limit=2)


def deletable(settings, key, owner_key, not_offered: WrongKeys | None = None, visitor: str | None = None) -> bool:
    """Whether Delete is offered for picker value ``key``: a run of the checkpoints folder that the holder of
    ``owner_key`` may control (``webui.owners``: the browser that started or added it, or anyone while a training
    password is set, the password then being asked for). With ``not_offered``, each owned run not offered to
    ``visitor`` is counted, and past its limit nothing owned is offered to them: whether Delete shows cannot be
    used to try keys faster than that."""
    return run_refusal(settings, key, owner_key, not_offered, visitor) is None


def run_refusal(settings, key, owner_key, wrong_keys: WrongKeys | None = None,
                visitor: str | None = None) -> str | None:
    """Why the holder of ``owner_key`` cannot delete ``key`` (plain text), or None; with ``wrong_keys``, a wrong key
    of ``visitor``'s is counted, and one who sent too many is refused (``owners.check_owner``)."""
    if not key:
        return "No run chosen: pick the run to delete."
    if key == BUNDLED_KEY:
        return BUNDLED_REFUSAL
    try:
        directory = run_directory(settings, key)
    except ERRORS as e:
        return plain(message_of(e))
    if directory.resolve() == settings.bundled.resolve():
        return BUNDLED_REFUSAL
    if not directory.is_dir():
        return f"There is no run named {esc(directory.name)}."
    try:
        check_owner(settings, directory, owner_key, "delete", wrong_keys, visitor)
    except UserError as e:
        return plain(message_of(e))
    return None


def ask_to_delete(ctx: AppContext, key, owner_key, password, visitor: str | None = None) -> tuple:
    """Delete pressed: name the run on a second button, which deletes it (so a click never deletes by surprise); or
    say at once, in plain words, why it cannot be deleted (the confirm button stays hidden). A wrong key counts
    toward ``visitor``'s wrong keys, as the deletion itself would."""
    reason = run_refusal(ctx.settings, key, owner_key, ctx.wrong_keys, visitor)
    if reason is None:
        try:
            check_password(ctx.settings, password)
        except ERRORS as e:
            reason = plain(message_of(e))
    if reason is None and training_state(ctx, run_directory(ctx.settings, key)) in BUSY:
        reason = f"{esc(key)} is training: press Stop, then delete it."
    if reason is not None:
        return gr.update(visible=False), "", f"⚠️ {reason}"
    return (gr.update(visible=True, value=f"Yes, delete {key}"), key,
            f"Delete **{esc(str(key))}** and all its files? Press the red button to confirm.")


def confirm_delete(ctx: AppContext, password, run, owner_key, visitor: str | None = None) -> tuple:
    """The confirm button: the run deleted, or why not, in a plain line where the question was (no toast, no error
    badge over it); the confirm button hidden either way. ``visitor``'s wrong keys are counted (``delete_run``)."""
    try:
        message = delete_run(ctx, password, run, owner_key, visitor=visitor)
    except ERRORS as e:
        message = f"⚠️ {plain(message_of(e))} Nothing was deleted."
    return message, gr.update(visible=False), ""


def plain(message: str) -> str:
    """A message without the Markdown emphasis the engine's and the API's messages use (run names in **bold**)."""
    return message.replace("**", "")


def describe_checkpoint(ctx: AppContext, key) -> str:
    """One line on the chosen model: corpus, size, steps, validation loss (or what is wrong with it)."""
    if not key:
        return "No checkpoint yet: train one in the Train tab."
    return handler(lambda: checkpoint_line(read_header(resolve_checkpoint(ctx.settings, key))),
                   inline=lambda m: f"⚠️ {m}")()


def read_prime(prime) -> tuple:
    """While the prime is edited, the chart reads it: the text, and the position slider at its end."""
    prime = prime if isinstance(prime, str) else ""
    return prime, gr.update(maximum=max(1, len(prime)), value=len(prime))


def follow_prime(ctx: AppContext, checkpoint, prime, suggested) -> tuple:
    """A newly chosen model: its own default prime, unless the prime was edited since the last one was suggested."""
    if prime != suggested:
        return gr.skip(), gr.skip()
    fresh = model_prime(ctx.settings, ctx.models, checkpoint)
    return fresh, fresh


def refused_generation(output, record) -> tuple:
    """A generation that failed: the output box redrawn as it was (without Gradio's bare "Error" badge); refused
    (the toast says why), the confidence view says nothing was generated instead of "Generating…". Stopped, the
    view keeps what Stop wrote (a cancelled event fails too)."""
    output = output if isinstance(output, str) else ""
    if not (isinstance(record, dict) and "refused" in record):
        return output, gr.skip()
    return output, f"<p><em>Nothing generated: {record['refused']} Change that and press Generate again.</em></p>"


def after_generation(record: dict | None) -> tuple:
    """When a generation ends: its confidence colouring, and the chart reading it from just after the prime."""
    if not record or "text" not in record:             # none yet, or a refusal
        return gr.skip(), gr.skip(), gr.skip()
    return (confidence_html(record), record["text"],
            gr.update(maximum=max(1, len(record["text"])), value=record["start"]))


def stopped_confidence(record: dict | None):
    """Stop pressed: a generation cut short has no colours (only one that ran to its end keeps its record)."""
    if record:
        return gr.skip()
    return STOPPED
