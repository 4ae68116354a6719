"""The repository as a Hugging Face Space takes it: every binary file stored with Git LFS, and a Spaces card
(README.md's YAML front matter) that ZeroGPU runs."""
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from charrnn.runs.store import PROJECT_DIR, RunDir

ZEROGPU_PYTHONS = ("3.10.13", "3.12.12")       # the Python versions ZeroGPU runs (GRADIO_NOTES.md, "Hosting")
BINARY_SUFFIXES = {".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz", ".png", ".pdf", ".jpg",
                   ".jpeg", ".gif", ".webp", ".ico", ".zip", ".gz", ".tar", ".7z", ".woff", ".woff2", ".ttf"}
SNIFF_BYTES = 8000                              # git's own rule: a NUL in the first 8,000 bytes means binary


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        pytest.skip(f"not a git checkout ({out.stderr.strip()[:100]})")
    return out.stdout


def tracked_files() -> list[str]:
    return [p for p in git("ls-files", "-z").split("\0") if p]


def is_binary(path: Path) -> bool:
    if path.suffix.lower() in BINARY_SUFFIXES:
        return True
    with open(path, "rb") as f:
        return b"\0" in f.read(SNIFF_BYTES)


def lfs_filtered(paths: list[str]) -> dict[str, bool]:
    """Which of ``paths`` .gitattributes sends through the LFS filter (``git check-attr``: paths need not exist)."""
    out = git("check-attr", "-z", "filter", "--", *paths).split("\0")
    # -z output: path NUL attribute NUL value NUL, repeated
    return {out[i]: out[i + 2] == "lfs" for i in range(0, len(out) - 2, 3)}


def spaces_card() -> dict:
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md has no YAML front matter (the Spaces card) at its top"
    return yaml.safe_load(match.group(1))


# --- Git LFS ------------------------------------------------------------------------------
def test_every_tracked_binary_file_is_stored_with_lfs():
    binaries = [p for p in tracked_files() if (PROJECT_DIR / p).is_file() and is_binary(PROJECT_DIR / p)]
    assert any(p.endswith(RunDir.WEIGHTS) for p in binaries)          # the bundled model is found as binary
    missed = [p for p, lfs in lfs_filtered(binaries).items() if not lfs]
    assert not missed, f"binary files no .gitattributes LFS pattern covers: {missed}"


def test_every_binary_kind_the_project_writes_is_stored_with_lfs():
    written = [RunDir.WEIGHTS, RunDir.LATEST, *RunDir.PLOTS, "train_state-400.pt", "run.zip", "run.safetensors",
               "checkpoints/new-run/model.safetensors", "checkpoints/new-run/loss.png"]
    assert all(lfs_filtered(written).values()), lfs_filtered(written)


def test_text_files_stay_in_plain_git():
    text = ["app.py", "README.md", "requirements.txt", "checkpoints/shakespeare/checkpoint.json", "metrics.jsonl"]
    assert not any(lfs_filtered(text).values()), lfs_filtered(text)


# --- the Spaces card ----------------------------------------------------------------------
def test_the_spaces_card_names_a_python_zerogpu_runs():
    version = spaces_card().get("python_version")
    assert isinstance(version, str) and version in ZEROGPU_PYTHONS, (
        f'python_version is {version!r}; ZeroGPU runs {" or ".join(ZEROGPU_PYTHONS)}: '
        'write python_version: "3.12.12" (quoted) in README.md\'s card')


def test_the_spaces_card_runs_the_gradio_app_the_requirements_pin():
    card = spaces_card()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (PROJECT_DIR / "requirements.txt").read_text(), re.M))
    assert card.get("sdk") == "gradio"
    assert str(card.get("sdk_version")) == pins["gradio"]
    assert (PROJECT_DIR / card.get("app_file", "")).is_file()
