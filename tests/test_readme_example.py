"""The API as the README documents it: its "Use it from Python" example (the ```python block after the
``<!-- python-example -->`` marker) run exactly as written against a launched app, and /generate with only a prime."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from app_fixtures import corpus_text, launched, make_checkpoint
from gradio_client import Client

from charrnn.runs.store import PROJECT_DIR, RunDir, read_header
from webui.models import BUNDLED_KEY

pytestmark = pytest.mark.slow

README = PROJECT_DIR / "README.md"
MARKER = "<!-- python-example -->"


def readme_example(text: str) -> str:
    """The code of the ```python block that follows the marker."""
    assert MARKER in text, f"README.md has no {MARKER} block"
    found = re.match(r"\s*```python\n(.*?)\n```", text.split(MARKER, 1)[1], re.S)
    assert found, f"no ```python block right after {MARKER}"
    return found.group(1)


def test_the_readme_example_is_found_after_its_marker():
    text = f"intro\n{MARKER}\n```python\nprint('hi')\n```\n\n```python\nnot this\n```\n"
    assert readme_example(text) == "print('hi')"
    with pytest.raises(AssertionError, match="no <!-- python-example --> block"):
        readme_example("```python\nprint('hi')\n```\n")


def test_the_readme_python_example_runs_unchanged_against_a_launched_app(tmp_path):
    code = readme_example(README.read_text(encoding="utf-8"))
    work = tmp_path / "work"
    work.mkdir()
    with launched(tmp_path / "checkpoints") as served:
        env = {**os.environ, "CHARRNN_URL": served.url, "GRADIO_ANALYTICS_ENABLED": "False"}
        # the timeout bounds a hang only
        done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert f"{BUNDLED_KEY} tinyshakespeare.txt" in out and "(default)" in out     # the listing
        assert "ROMEO:" in out and "JULIET:" in out                                   # both generations
        assert "Started run **my-cats**" in out and "my-cats: finished" in out
        assert "Added **my-cats-again**" in out and "same text: True" in out          # the round trip
        assert "Deleted **my-cats**" in out and "Deleted **my-cats-again**" in out
        assert not (served.root / "my-cats").exists() and not (served.root / "my-cats-again").exists()
    with zipfile.ZipFile(work / "my-cats.zip") as z:                                 # what the script took away
        assert {RunDir.WEIGHTS, RunDir.META, RunDir.METRICS, "loss.png"} <= {Path(n).name for n in z.namelist()}
    assert read_header(work / "my-cats.safetensors")["run"] == "my-cats"


def test_generate_with_only_a_prime_uses_the_latest_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    with launched(root) as served:
        client = Client(served.url, verbose=False, analytics_enabled=False)
        try:
            bundled = client.predict(checkpoint=BUNDLED_KEY, prime="ROMEO:", length=60, seed=3, api_name="/generate")
            assert client.predict(prime="ROMEO:", length=60, seed=3, api_name="/generate") == bundled   # no run yet
            make_checkpoint(root / "older", corpus_text(), seed=1)
            time.sleep(0.01)                                           # distinct file times: "newest" has an order
            make_checkpoint(root / "newer", corpus_text(), seed=2)
            newer = client.predict(checkpoint="newer", prime="the ", length=60, seed=3, api_name="/generate")
            assert newer != client.predict(checkpoint="older", prime="the ", length=60, seed=3, api_name="/generate")
            assert client.predict(prime="the ", length=60, seed=3, api_name="/generate") == newer
            listed = client.predict(api_name="/list_checkpoints")
            assert [c["key"] for c in listed] == ["newer", "older", BUNDLED_KEY]
            assert [c["default"] for c in listed] == [True, False, False]
            assert listed[0]["steps"] == 10 and listed[0]["val_loss"] == 2.5 and listed[0]["corpus"] == "tiny.txt"
        finally:
            client.close()
