"""A Static Space: the Generate page with no server behind it.

``python -m webui.export OUT_DIR [--runs NAME ...]`` writes into OUT_DIR:

- ``index.html``: the page (``webui/generate/static/site.html``, ``site.js``) with the runtime the app's Generate tab
  uses (``webui.generate.browser.head_script``: ``page.js`` and the worker ``runtime.js`` with its WebAssembly
  kernel) and the training its Train tab offers in the browser (``webui.train.browser.head_script``);
- ``charrnn/copies/``: each model's browser copy and ``index.json`` (the same files the app serves on its route);
- ``models/<name>.safetensors``: each model's file, for the page's download link;
- ``README.md``: a Space card (``sdk: static``, with the cross-origin isolation headers Static Spaces allow).

Any static file server serves the folder (``python -m http.server``); Static Spaces are free for everyone. The
bundled model is in it unless ``--no-bundled``; ``--runs`` adds runs of the checkpoints folder.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from charrnn.runs.store import RunDir, checkpoint_file, read_header
from charrnn.runs.weights import CheckpointError
from charrnn.runs.writes import atomic_write
from webui.generate import webcopy
from webui.generate.browser import COPIES, STATIC, head_script
from webui.models import checkpoint_line, tuned_words
from webui.settings import Settings, settings_from_env
from webui.style import CSS
from webui.train import browser as training

PAGE, GLUE, SLOT = "site.html", "site.js", "<!--CHARRNN-->"
MODELS = "models"
OURS = ("index.html", "README.md", "charrnn", MODELS)      # what an export writes: all a re-export replaces
CARD = """---
title: {title}
emoji: ✍️
colorFrom: yellow
colorTo: red
sdk: static
app_file: index.html
pinned: false
custom_headers:
  cross-origin-embedder-policy: require-corp
  cross-origin-opener-policy: same-origin
  cross-origin-resource-policy: cross-origin
---

# {title}

A character-level LSTM that writes in the visitor's browser: the page downloads a model once and generates with
WebAssembly in a Web Worker; moving the temperature re-samples the text with the same random numbers. Nothing is
sent to a server: this Space is static files only.

Models:

{models}

Made with charrnn's `python -m webui.export` (each model's `.safetensors` file is under `models/`; the
charrnn CLI and app load it). Upload the folder to a Static Space with
`hf repos create NAME --type space --space-sdk static` and `hf upload NAME . --repo-type space`.
"""


class ExportError(ValueError):
    """A model or folder the export cannot use; the message says which and why."""


def export_site(out: Path, settings: Settings, runs: list[str] = (), bundled: bool = True,
                title: str = "charrnn") -> dict:
    """Write the static site for the bundled model (``bundled``) and the runs named ``runs`` of
    ``settings.root`` into ``out``; returns its index ({key: entry}). Nothing is written when a model is refused."""
    models = chosen(settings, runs, bundled)
    out = Path(out)
    if out.exists() and any(p.name not in OURS for p in out.iterdir()):
        raise ExportError(f"{out} holds files an export did not write: choose an empty or new folder.")
    for name in OURS:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    copies, index = out / COPIES, {}
    (out / MODELS).mkdir(parents=True)
    for key, (path, header, label) in models.items():
        digest = webcopy.write_copy(path, copies)
        shutil.copyfile(path, out / MODELS / f"{key}.safetensors")
        index[key] = {"copy": digest, "label": label, "line": checkpoint_line(header).replace("**", ""),
                      "download": f"{MODELS}/{key}.safetensors"}
    webcopy.write_index(copies, index)
    page = (STATIC / PAGE).read_text(encoding="utf-8")
    script = (head_script(settings, serverless=True) + training.head_script(app=False)
              + f"<script>{(STATIC / GLUE).read_text(encoding='utf-8')}</script><style>{CSS}</style>")
    atomic_write(out / "index.html", lambda tmp: Path(tmp).write_text(page.replace(SLOT, script), encoding="utf-8"))
    lines = "\n".join(f"- **{entry['label']}**: {entry['line']}" for entry in index.values())
    atomic_write(out / "README.md", lambda tmp: Path(tmp).write_text(CARD.format(title=title, models=lines),
                                                                      encoding="utf-8"))
    return index


def chosen(settings: Settings, runs, bundled: bool) -> dict:
    """{key: (model file, header, label)} of the models to export, each read and checked; an ExportError names
    the first that cannot be."""
    wanted = ([(settings.bundled.name, settings.bundled, " (bundled)")] if bundled else []) + \
        [(name, settings.root / name, "") for name in runs]
    models = {}
    for key, folder, suffix in wanted:
        try:
            run = RunDir.of(folder.parent, key)
            path = checkpoint_file(run.path)
            header = read_header(path)
        except (CheckpointError, OSError, ValueError) as e:
            raise ExportError(f"{key}: {str(e).splitlines()[0] if str(e) else 'no model to export'}") from None
        if key in models:
            raise ExportError(f"{key} is named twice.")
        models[key] = (path, header, key + tuned_words(header) + suffix)
    if not models:
        raise ExportError("Nothing to export: name runs with --runs, or keep the bundled model.")
    return models


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m webui.export", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the folder to write (new, empty, or an earlier export)")
    p.add_argument("--runs", nargs="*", default=[], help="runs of the checkpoints folder to include")
    p.add_argument("--no-bundled", action="store_true", help="leave out the bundled model")
    p.add_argument("--title", default="charrnn", help="the Space's title")
    args = p.parse_args(argv)
    try:
        index = export_site(args.out, settings_from_env(os.environ), args.runs, not args.no_bundled, args.title)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {', '.join(entry['label'] for entry in index.values())}; serve it with "
          f"`python -m http.server -d {args.out}` or upload it to a Static Space (its README.md says how)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
