"""The one gradio component of the app's own: a whole-number box that names the field it refuses."""
import inspect

import gradio as gr
import pytest

from charrnn.runs.jobs import Busy
from webui.glue import WholeNumber, message_of


@pytest.mark.parametrize("payload", [2.5, "abc", float("nan"), float("inf"), True, [1]])
def test_a_whole_number_box_refuses_what_is_not_a_whole_number_naming_the_field(payload):
    with gr.Blocks():
        box = WholeNumber(1, precision=0, label="Hidden size")
    with pytest.raises(gr.Error, match="Hidden size must be a whole number"):
        box.preprocess(payload)


@pytest.mark.parametrize("payload, value", [(3, 3), (4.0, 4), (None, None)])
def test_a_whole_number_box_passes_whole_numbers(payload, value):
    with gr.Blocks():
        box = WholeNumber(1, precision=0, label="Hidden size")
    assert box.preprocess(payload) == value


def test_named_handler_inputs_are_optional_for_api_callers():
    from webui.glue import handler

    wrapped = handler(lambda **kw: kw, ("password", "upload", "hidden"))
    params = inspect.signature(wrapped).parameters
    assert list(params) == ["password", "upload", "hidden"] and all(p.default is None for p in params.values())
    assert wrapped("pw", None, 64) == {"password": "pw", "upload": None, "hidden": 64}


def test_the_engine_states_a_busy_trainer_and_the_page_words_it():
    message = message_of(Busy("someone's-run"))
    assert message.startswith("A training run is in progress: someone's-run.")
    assert "press Stop" in message and "shown below" in message
    assert "Or train in this browser" in message                    # the way that needs no turn
    assert "press Stop" not in str(Busy("x"))                       # no UI wording in the engine


def test_a_handler_asked_for_the_visitor_gets_the_address_the_front_door_found_hidden_from_the_api():
    from gradio.helpers import special_args
    from gradio.utils import get_function_params
    from starlette.requests import Request

    from webui.fair import VISITOR
    from webui.glue import handler

    wrapped = handler(lambda **kw: kw, ("password", "key"), visitor=True)
    assert [p[0] for p in get_function_params(wrapped)] == ["password", "key"]      # what API callers see
    request = gr.Request(Request({"type": "http", "headers": [], VISITOR: "192.0.2.1", "client": ("10.0.0.1", 1)}))
    inputs, *_ = special_args(wrapped, ["pw", "k"], request=request)                 # as gradio calls it
    assert wrapped(*inputs) == {"password": "pw", "key": "k", "visitor": "192.0.2.1"}
    assert wrapped("pw", "k") == {"password": "pw", "key": "k", "visitor": None}     # called with no request
