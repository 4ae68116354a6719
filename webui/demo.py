"""``create_demo(settings)``: one ``gr.Blocks`` with the three tabs, and what crosses them: the poll that
follows the training run and keeps every checkpoint list fresh, and the Inside tab reading the Generate tab."""
from __future__ import annotations

import signal
import threading

import gradio as gr
import torch
from starlette.middleware import Middleware

from charrnn.runs.jobs import resumable_runs
from charrnn.runs.watchdog import Watchdog
from webui import style
from webui.context import AppContext
from webui.fair import TEXT_BYTES, FrontDoor, Limits, keys_of, visitor_of
from webui.generate import browser
from webui.generate import tab as generate_tab
from webui.generate.tab import describe_checkpoint
from webui.glue import QUIET
from webui.inside import tab as inside_tab
from webui.models import checkpoint_signature, default_checkpoint, list_checkpoints, picked_checkpoint, yours
from webui.owners import STORAGE_KEY, STORAGE_SECRET, browser_key
from webui.settings import Settings
from webui.train import browser as in_browser
from webui.train import startfrom
from webui.train import style as train_style
from webui.train import tab as train_tab
from webui.train.forms import FORM_FIELDS, PAGE_FIELDS
from webui.train.tab import PASTED, TRAIN_VIEW

CSS_MODULES = (style, train_style, browser)                 # modules whose CSS string the page loads (see page_css)
# Gradio's queue looks for new events every 1 ms while idle and for progress to send every 10 ms: 5-6% of a core
# here with nobody on the page (2026-12-03, 2-vCPU Xeon), taken from the trainer beside it. Every 10 ms costs an
# event at most 10 ms before it starts; progress (which the app hides) then goes out at most every 50 ms.
QUEUE_IDLE_POLL_S = 0.01
QUEUE_PROGRESS_POLL_S = 0.05
TITLE = "charrnn: watch an LSTM learn to write"
INTRO = ("# Watch an LSTM learn to write\nTrain a character-level LSTM on a text of your choice and watch "
         "its loss fall and its samples turn from gibberish into words; then generate text from it and "
         "play with the temperature.")


class App(gr.Blocks):
    """The app's Blocks, whose API description says what an omitted field means: /start_training's model and
    training fields and Start from default to None, which the named preset fills in (and auto), not the page
    form's current values (Gradio's default for an input is its component's first value: the auto recipe's)."""

    PRESET_FILLED = frozenset(FORM_FIELDS + PAGE_FIELDS + ("start_from",))

    def get_api_info(self, *args, **kwargs):
        info = super().get_api_info(*args, **kwargs)
        for param in (info or {}).get("named_endpoints", {}).get("/start_training", {}).get("parameters", []):
            if param.get("parameter_name") in self.PRESET_FILLED:
                param["parameter_has_default"], param["parameter_default"] = True, None
        return info


def create_demo(settings: Settings, ctx: AppContext | None = None) -> gr.Blocks:
    """The app for ``settings`` (``ctx`` to share a job supervisor and caches, as tests do)."""
    ctx = ctx or AppContext(settings)
    torch.set_num_threads(settings.server_threads)   # generation steps are tiny; the trainer process gets the cores
    with App(title=TITLE, delete_cache=(3600, 3600)) as demo:     # uploads older than an hour go
        gr.Markdown(INTRO)
        view = gr.State({})
        timer = gr.Timer(settings.poll_seconds)
        with gr.Tab("Train", id="train"):
            train = train_tab.build(ctx)
        with gr.Tab("Generate", id="generate"):
            generate = generate_tab.build(ctx)
        with gr.Tab("Inside a unit", id="inside") as inside_page:
            inside = inside_tab.build(ctx)
        # the browser's own key: it owns the runs it starts or adds (webui.owners)
        key = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        train.key = generate.key = key
        demo.load(browser_key, key, key, **QUIET, queue=False)
        train_tab.wire(ctx, train)
        train_tab.wire_compare(ctx, train)
        generate_tab.wire(ctx, generate)
        inside_tab.wire(ctx, inside, inside_page, generate.checkpoint, generate.output)

        polled = {name: getattr(train, name) for name in TRAIN_VIEW + ("resume_run", "review_run", "compare_runs",
                                                                       "start_from")}
        polled.update(checkpoint=generate.checkpoint, checkpoint_md=generate.checkpoint_md, view=view)

        def refresh(view, checkpoint, resume_run, review, compared, key):
            return {polled[name]: value for name, value in poll(ctx, view, checkpoint, resume_run, review,
                                                                compared, key).items()}

        inputs = [view, generate.checkpoint, train.resume_run, train.review_run, train.compare_runs, key]
        outputs = list(polled.values())
        demo.load(refresh, inputs, outputs, **QUIET, concurrency_limit=None)
        timer.tick(refresh, inputs, outputs, **QUIET, concurrency_limit=None)
    return demo


def launch(demo: gr.Blocks, ctx: AppContext, **options) -> None:
    """Serve ``demo`` as the Space does (``options`` add to it): a bounded queue, uploads capped by the server,
    and ``webui.fair.FrontDoor`` in front, so no visitor can hold more than a few events, send huge bodies or reach
    routes the app does not use; the browser copies on a route of their own (``browser.copies_route``); the queue
    polls less often when idle (QUEUE_IDLE_POLL_S), so an idle app leaves the cores to the trainer. ``ctx`` is the
    one ``demo`` was built with."""
    settings = ctx.settings
    # how webui.fair tells the functions apart (by fn_index or API name): those that may be sent a pasted corpus
    # (only their requests may be large), and those that run at once (polls, reads: counted apart from the work)
    text_events = keys_of(demo.fns, lambda fn: any(getattr(c, "elem_id", None) == PASTED for c in fn.inputs))
    quick_events = keys_of(demo.fns, lambda fn: not fn.queue or fn.concurrency_limit is None)
    queue_size = 64                 # waiting events; work (waiting or running) takes at most 48, leaving polls room
    max_body = 2 * settings.max_corpus_bytes + settings.max_event_body     # a pasted text, JSON-escaped
    limits = Limits(most=settings.max_pending, room=queue_size - 16, small_body=settings.max_event_body,
                    max_body=max_body, text_held=2 * max_body,     # the page's Start and one look at the text
                    max_upload=settings.max_corpus_bytes + (1 << 20),
                    upload_per_minute=settings.visitor_upload_per_minute, upload_kept=settings.visitor_upload_kept,
                    upload_kept_s=settings.upload_kept_s, download_per_minute=settings.visitor_download_per_minute)
    fair = Middleware(FrontDoor, events=lambda: pending_events(demo), quick=quick_events.__contains__,
                      takes_text=text_events.__contains__, limits=limits, trusted=settings.trusted_proxies)
    browser.sync_copies(settings, ctx.copies)     # before the first page asks (each poll keeps them in step)
    demo.queue(max_size=queue_size)
    demo._queue.sleep_when_free = max(demo._queue.sleep_when_free, QUEUE_IDLE_POLL_S)
    demo._queue.progress_update_sleep_when_free = max(demo._queue.progress_update_sleep_when_free,
                                                      QUEUE_PROGRESS_POLL_S)
    blocking = not options.get("prevent_thread_lock")
    if blocking:                                        # this thread serves until the process ends
        signal.signal(signal.SIGTERM, interrupted)
        watch_trainer(ctx, lambda: True)
    head = browser.head_script(settings) + in_browser.head_script()     # generating, and training, in the page
    demo.launch(max_file_size=settings.max_upload, css=page_css(), head=head,
                app_kwargs={"middleware": [fair], "routes": [browser.copies_route(settings)]}, **options)
    if not blocking:                                    # served from a thread until the demo is closed
        watch_trainer(ctx, lambda: demo.is_running)


def interrupted(signum, frame):
    """SIGTERM (a Space stopping or restarting) ends the app as Ctrl-C does, so its exit handlers run: the
    downloads' temporary folder (``webui.transfer.DownloadFolder``) is removed, not left behind."""
    raise KeyboardInterrupt


def watch_trainer(ctx: AppContext, running) -> None:
    """The trainer's watchdog (``charrnn.runs.watchdog``), in a thread of its own while ``running()``: a stopped or
    stuck trainer is ended, so it cannot hold Start for everyone."""
    watchdog = Watchdog(ctx.jobs, stall_s=60 * ctx.settings.stall_minutes)
    threading.Thread(target=watchdog.keep_watch, args=(ctx.settings.watchdog_seconds, running), daemon=True,
                     name="charrnn-watchdog").start()


def pending_events(demo: gr.Blocks) -> list[tuple[str, int, int]]:
    """(visitor, function id, bytes of pasted text) of each event waiting in Gradio's queue or running (read in the
    server's event loop)."""
    queue = demo._queue
    waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    running = [e for job in queue.active_jobs if job for e in job]
    return [(visitor_of(e.request.scope), e.fn._id, e.request.scope.get(TEXT_BYTES, 0))
            for e in waiting + running if e.request is not None]


def page_css() -> str:
    """The page's own CSS: each tab's rules, under class names of the app's own views."""
    return "\n".join(getattr(module, "CSS", "") for module in CSS_MODULES)


def checkpoint_updates(ctx: AppContext, current, known: list[str], review=None, key=None) -> tuple:
    """New picker choices (a newly appeared run of the visitor's own is selected; a newcomer's opens on
    ``default_checkpoint``), its description, the resume and review choices."""
    ckpts = list_checkpoints(ctx.settings)
    keys = [r["key"] for r in ckpts]
    value = picked_checkpoint(keys, current, known, yours(ctx.settings, ckpts, key),
                              default_checkpoint(ctx.settings, ckpts, key))
    resumable = [r["name"] for r in resumable_runs(ctx.settings.root)]
    choices = [(r["label"], r["key"]) for r in ckpts]
    picker = gr.update(choices=choices, value=value)
    resume = gr.update(choices=resumable, value=resumable[0] if resumable else None)
    reviewed = gr.update(choices=choices, value=review if review in keys else value)
    return picker, describe_checkpoint(ctx, value), resume, reviewed, keys


def poll(ctx: AppContext, view: dict | None, checkpoint, resume_run, review=None, compared=None, key=None) -> dict:
    """What changed, keyed by component: the followed run's view, and the checkpoint lists (the compared runs keep
    those still there); ``view`` always, to remember what was shown. What did not change is left out."""
    view = dict(view or {})
    job = ctx.jobs.active()
    shown = view.get("run") if view.get("run") and (ctx.settings.root / view["run"]).is_dir() else None  # not deleted
    run = job.name if job else shown or ctx.jobs.last_run()
    run_sig = ctx.jobs.files_signature(run)
    out = train_tab.training_view(ctx, run) if run_sig != view.get("run_sig") else {}
    ckpt_sig = (checkpoint_signature(ctx.settings), job and job.name)
    keys = view.get("keys", [])
    if ckpt_sig != view.get("ckpt_sig"):
        browser.sync_copies(ctx.settings, ctx.copies)     # a new, retrained or finished run gets its browser copy
        picker, info, resume, reviewed, keys = checkpoint_updates(ctx, checkpoint, keys, review, key)
        kept = [k for k in compared if k in keys] if isinstance(compared, list) else []
        out["start_from"] = gr.update(choices=startfrom.choices(ctx.settings, list_checkpoints(ctx.settings), key))
        out.update(checkpoint=picker, checkpoint_md=info, resume_run=resume, review_run=reviewed,
                   compare_runs=gr.update(choices=reviewed["choices"], value=kept))
    return {**out, "view": {"run": run, "run_sig": run_sig, "ckpt_sig": ckpt_sig, "keys": keys}}
