"""A model made in the page leaves it as charrnn's own file (webui/train/static/weights.js, in Chromium): the bytes
the page writes load through charrnn's full check, give the same weights and logits as the model they came from,
and the CLI generates from them; a tensor of the wrong size is refused in the page."""
from __future__ import annotations

import base64
import subprocess
import sys

import pytest
import torch
from browser_fixtures import script_page

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.runs.store import PROJECT_DIR, load_checkpoint
from charrnn.vocab import Vocab

SCRIPT = PROJECT_DIR / "webui" / "train" / "static" / "weights.js"
TEXT = "the cat sat on the mat; äöü — 猫\n"
WRITE = """([tensors, header]) => {
  const typed = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, {shape: t.shape,
                                                                              data: Float32Array.from(t.data)}]));
  const bytes = CharrnnWeights.safetensors(typed, header);
  let s = ""; for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}"""


@pytest.fixture(scope="module")
def page():
    yield from script_page(SCRIPT)


@pytest.mark.parametrize("layers", [1, 2])
def test_the_pages_file_loads_in_charrnn_with_the_same_weights_logits_and_text(page, tmp_path, layers):
    vocab = Vocab.from_text(TEXT)
    torch.manual_seed(layers)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=13, layers=layers)).eval()
    tensors = {k: {"shape": list(v.shape), "data": v.flatten().tolist()}
               for k, v in reversed(model.state_dict().items())}                 # any order of tensors will do
    header = {"model_config": model.config.to_dict(), "vocab": "".join(vocab.chars), "step": 40, "run": "in-page",
              "data": {"name": "pasted text", "chars": len(TEXT)}, "params": model.num_params(), "best_step": 40,
              "best_val_loss": 2.5, "saved": 1.0}
    path = tmp_path / "in-page.safetensors"
    path.write_bytes(base64.b64decode(page.evaluate(WRITE, [tensors, header])))

    loaded, loaded_vocab, read = load_checkpoint(path)
    assert loaded_vocab.chars == vocab.chars and read["format"] == "charrnn/1" and read["step"] == 40
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name          # float32 bit for bit
    idx = torch.tensor([vocab.encode(TEXT).tolist()])
    with torch.no_grad():
        assert torch.equal(loaded(idx)[0], model(idx)[0])
    done = subprocess.run([sys.executable, "-m", "charrnn", "generate", "--checkpoint", str(path), "--prime", "the",
                           "--length", "20", "--seed", "1"], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the") and len(done.stdout.rstrip("\n")) >= 20


def test_a_tensor_of_the_wrong_size_is_refused_in_the_page(page):
    with pytest.raises(Exception, match="tensor head.bias: 3 floats for shape \\[4\\]"):
        page.evaluate(WRITE, [{"head.bias": {"shape": [4], "data": [0, 1, 2]}}, {}])
