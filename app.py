"""Gradio app: train a character LSTM on text of your choice, watch it learn, generate at a temperature.

The Space's entry point. The app itself is the ``webui`` package over the ``charrnn`` engine:
training runs in its own process (``python -m charrnn train``, supervised by ``charrnn.runs.jobs``)
that writes a run directory, and the page follows that directory, so closing the tab or restarting
the app never stops a run. ``demo`` is module-level: Spaces and gradio's reload mode look for it.
"""
import os

import spaces  # noqa: F401  (first: on a ZeroGPU Space it must patch torch before anything touches CUDA)

from webui.context import AppContext
from webui.demo import create_demo, launch
from webui.settings import settings_from_env

ctx = AppContext(settings_from_env(os.environ))
demo = create_demo(ctx.settings, ctx)

if __name__ == "__main__":
    launch(demo, ctx)
