"""Where the UI layers meet gradio: the one place errors become ``gr.Error``, handlers that take named
inputs, and the one custom component. Imported by the tab modules and the demo only."""
from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable

import gradio as gr

from charrnn.data import CorpusError
from charrnn.runs.jobs import Busy, JobError
from charrnn.runs.weights import CheckpointError
from webui.errors import UserError, esc, no_markup, plain_text
from webui.fair import visitor_of

QUIET = dict(api_visibility="private", show_progress="hidden")   # internal events: no API, no spinner
# One line per refusal (a visitor's request the app declined, and why); a bug keeps Gradio's traceback.
REFUSALS = logging.getLogger("webui.refused")


def message_of(error: Exception) -> str:
    """What the page and API callers are told of ``error``, in plain text (``errors.plain_text``): a ``UserError``
    as written, an engine's error with its markup shown as text, what the engine states as a fact worded for the
    page. Every refusal a visitor sees is worded here."""
    if isinstance(error, Busy):
        return (f"A training run is in progress: {esc(error.run)}. One run at a time: wait for it to finish or "
                "press Stop. Its progress is shown below. Or train in this browser now (Train tab, \"Or train in "
                "this browser\"): your computer trains, with no queue.")
    return plain_text(str(error) if isinstance(error, UserError) else no_markup(error))


def refusal(message: str, what: str) -> gr.Error:
    """The ``gr.Error`` that tells the page (a toast) and an API caller ``message``: plain text, logged as one line
    naming ``what`` was refused, without the traceback Gradio prints for an error."""
    message = plain_text(message)
    REFUSALS.warning("refused %s: %s", what, " ".join(message.split()))
    return gr.Error(message, print_exception=False)


ERRORS = (UserError, CheckpointError, CorpusError, JobError)


def handler(fn: Callable, names: tuple[str, ...] | None = None, inline: Callable[[str], object] | None = None,
            visitor: bool = False):
    """``fn`` as a gradio event handler.

    A ``UserError`` (or an engine error) becomes a ``gr.Error`` toast, or with ``inline`` the value
    ``inline(message)`` returns (a warning drawn in place). A toast's refusal, and a ``gr.Error`` that ``fn`` raises
    itself, is logged as one line (``refusal``); any other exception is a bug, whose traceback Gradio logs.
    With ``names`` the handler takes its inputs positionally, as gradio passes them, calls ``fn`` with them by name,
    and shows those names to the API, each optional (``gradio_client`` callers pass the ones they need as keywords;
    an omitted value is None: no upload, no password, the preset's own value). Generators stay generators, so gradio
    streams.
    With ``names`` and ``visitor``, ``fn`` is also called with ``visitor``: the address the front door counted the
    request under (``webui.fair``), whose quotas apply (``webui.quotas``); gradio hands the handler its request in a
    last parameter that the API does not show.
    """
    what = getattr(fn, "__name__", "a request")

    def failed(error: Exception):
        if inline is None:
            raise refusal(message_of(error), what) from None
        return inline(message_of(error))

    def reworded(error: gr.Error) -> gr.Error:      # one raised further in (a refusal kept in place, then raised)
        return refusal(error.message, what) if error.print_exception else error

    def call_args(args, kwargs):
        if names is None:
            return args, kwargs
        request = kwargs.pop("request", None)
        if visitor and len(args) == len(names) + 1:
            *args, request = args
        named = dict(zip(names, args, strict=True))
        if visitor:
            named["visitor"] = visitor_of_request(request)
        return (), {**named, **kwargs}

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            a, k = call_args(args, kwargs)
            try:
                yield from fn(*a, **k)
            except ERRORS as e:
                yield failed(e)
            except gr.Error as e:
                raise reworded(e) from None
    else:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            a, k = call_args(args, kwargs)
            try:
                return fn(*a, **k)
            except ERRORS as e:
                return failed(e)
            except gr.Error as e:
                raise reworded(e) from None
    if names is not None:      # gradio reads this signature for the API, not fn's; None = the form's default
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in names]
        if visitor:            # a gr.Request parameter: gradio fills it in, and leaves it out of the API
            params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                            annotation=gr.Request))
            wrapped.__annotations__ = {"request": gr.Request}
        wrapped.__signature__ = inspect.Signature(params)
    return wrapped


def visitor_of_request(request: gr.Request | None) -> str | None:
    """Who sent a request, as the front door found it (None for a call with no request of the server's)."""
    served = getattr(request, "request", None)          # the server's own request, inside gradio's
    return visitor_of(served.scope) if served is not None else None


def warn(message: str) -> None:
    """Show a warning toast on the page (the ``warn`` callback of the generation functions)."""
    gr.Warning(message)


class WholeNumber(gr.Number):
    """A gr.Number that refuses a value that is not a whole number with a message naming the field.

    The API takes any JSON: Gradio's own rounding (precision=0) fails on "abc", NaN or Infinity with a
    generic error that names nothing, and silently turns 2.5 into 2.
    """

    is_template = True   # drawn by the frontend as a plain Number

    def preprocess(self, payload):
        if payload is not None and (isinstance(payload, bool) or not isinstance(payload, (int, float))
                                    or not math.isfinite(payload) or payload != int(payload)):
            raise refusal(f"{self.label} must be a whole number, got {esc(repr(payload)[:40])}.", self.label)
        return super().preprocess(payload)
