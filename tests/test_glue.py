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
    assert "press Stop" not in str(Busy("x"))                       # no UI wording in the engine
