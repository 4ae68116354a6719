"""The one gradio component of the app's own: a whole-number box that names the field it refuses."""
import inspect

import gradio as gr
import pytest

from webui.glue import WholeNumber


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
