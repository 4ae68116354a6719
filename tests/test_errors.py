"""What users see of an error: no markup from the values it quotes, and no server paths."""
import pytest
from app_fixtures import tiny_context

from webui.errors import UserError, esc, no_markup, short_paths
from webui.models import resolve_checkpoint


def test_markup_in_an_engine_error_shows_as_text():
    assert no_markup("bad name '<b>x</b>' & more") == "bad name '&lt;b>x&lt;/b>' &amp; more"
    assert esc("<i>") == "&lt;i&gt;"


def test_server_paths_show_as_their_last_two_parts():
    assert short_paths("/srv/app/checkpoints/run/model.safetensors: no such checkpoint") == \
        "run/model.safetensors: no such checkpoint"
    assert short_paths("Cannot write to /tmp/x/blocker/checkpoints: Not a directory") == \
        "Cannot write to blocker/checkpoints: Not a directory"
    assert short_paths("loss 1/2, a/b and ../escape stay") == "loss 1/2, a/b and ../escape stay"


def test_a_refusal_names_the_run_not_where_the_app_keeps_it(tmp_path):
    ctx = tiny_context(tmp_path)
    with pytest.raises(UserError) as refused:
        resolve_checkpoint(ctx.settings, "nope")
    assert "nope: no such checkpoint" in str(refused.value) and str(ctx.settings.root) not in str(refused.value)
