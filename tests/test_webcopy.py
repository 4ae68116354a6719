"""Browser copies (webui/generate/webcopy.py): the floats are the checkpoint's, the fold table is the server's,
the name follows the file and the format, only used copies stay, an incomplete copy is refused."""
import json

import numpy as np
import pytest
import torch
from app_fixtures import corpus_text, make_checkpoint

from charrnn.runs.store import RunDir, load_checkpoint
from charrnn.runs.weights import CheckpointError
from webui.generate import webcopy


def test_a_copy_holds_every_tensor_of_the_checkpoint_as_float32_at_its_offset(tmp_path):
    weights = make_checkpoint(tmp_path / "run", corpus_text())
    digest = webcopy.write_copy(weights, tmp_path / "web")
    info, floats = webcopy.read_copy(tmp_path / "web", digest)
    model, vocab, _ = load_checkpoint(weights)
    assert info["cell"] == "lstm" and info["hidden"] == 16 and info["vocab"] == list(vocab.chars)
    for name, t in model.state_dict().items():
        d = info["tensors"][name]
        got = floats[d["offset"]:d["offset"] + t.numel()].reshape(d["shape"])
        assert np.array_equal(got, t.numpy()), name


def test_a_rewritten_checkpoint_gets_a_new_name_so_no_browser_reads_a_stale_copy(tmp_path):
    weights = make_checkpoint(tmp_path / "run", corpus_text(), seed=0)
    first = webcopy.write_copy(weights, tmp_path / "web")
    make_checkpoint(tmp_path / "run", corpus_text(), seed=1)
    second = webcopy.write_copy(weights, tmp_path / "web")
    assert first != second and second == webcopy.file_digest(weights)
    assert (tmp_path / "web" / f"{first}.json").is_file() and (tmp_path / "web" / f"{second}.json").is_file()


def test_the_index_names_the_copies_in_use_and_the_others_are_removed(tmp_path):
    web = tmp_path / "web"
    a = webcopy.write_copy(make_checkpoint(tmp_path / "a", corpus_text(), seed=0), web)
    b = webcopy.write_copy(make_checkpoint(tmp_path / "b", corpus_text(), seed=1), web)
    webcopy.write_index(web, {"a": {"copy": a}, "c": {"copy": None, "why": "training"}})
    assert json.loads((web / webcopy.INDEX).read_text())["a"] == {"copy": a}
    assert (web / f"{a}.bin").is_file() and not (web / f"{b}.bin").exists() and not (web / f"{b}.json").exists()


def test_a_copy_whose_floats_are_cut_short_is_refused(tmp_path):
    web = tmp_path / "web"
    digest = webcopy.write_copy(make_checkpoint(tmp_path / "run", corpus_text()), web)
    data = (web / f"{digest}.bin").read_bytes()
    (web / f"{digest}.bin").write_bytes(data[:-8])
    with pytest.raises(CheckpointError, match="not a complete browser copy"):
        webcopy.read_copy(web, digest)


def test_a_gru_copy_keeps_torch_order_of_gates(tmp_path):
    from charrnn.config import ModelConfig
    from charrnn.model import CharRNN
    from charrnn.vocab import Vocab
    vocab = Vocab.from_text(corpus_text())
    model = CharRNN(ModelConfig(vocab_size=len(vocab), embed=8, hidden=12, layers=2, cell="gru"))
    (tmp_path / "g").mkdir()
    RunDir(tmp_path / "g").keep(model, vocab, {"run": "g", "step": 1})
    info, floats = webcopy.read_copy(tmp_path / "web", webcopy.write_copy(tmp_path / "g", tmp_path / "web"))
    d = info["tensors"]["rnn.weight_hh_l1"]
    assert d["shape"] == [36, 12] and info["layers"] == 2
    assert torch.equal(torch.from_numpy(floats[d["offset"]:d["offset"] + 36 * 12].reshape(36, 12).copy()),
                       model.rnn.weight_hh_l1.detach())


def test_an_unchanged_index_is_not_rewritten(tmp_path):
    web = tmp_path / "web"
    a = webcopy.write_copy(make_checkpoint(tmp_path / "a", corpus_text()), web)
    webcopy.write_index(web, {"a": {"copy": a}})
    before = (web / webcopy.INDEX).stat().st_ino
    webcopy.write_index(web, {"a": {"copy": a}})
    assert (web / webcopy.INDEX).stat().st_ino == before           # an atomic rewrite would be a new file
    webcopy.write_index(web, {"a": {"copy": a}, "b": {"copy": None, "why": "training"}})
    assert json.loads((web / webcopy.INDEX).read_text())["b"]["why"] == "training"


def test_a_copy_carries_the_fold_table_the_server_folds_prime_characters_with(tmp_path):
    weights = make_checkpoint(tmp_path / "run", corpus_text())
    info, _ = webcopy.read_copy(tmp_path / "web", webcopy.write_copy(weights, tmp_path / "web"))
    _, vocab, _ = load_checkpoint(weights)
    fold = info["fold"]
    assert not fold.keys() & set(vocab.chars) and all(set(v) <= set(vocab.chars) for v in fold.values())
    blocks = {chr(c) for lo, hi in webcopy.FOLD_BLOCKS for c in range(lo, hi + 1)}
    assert fold.keys() == blocks - set(vocab.chars)
    # the corpus has some lower-case letters (e, o, n, s; no z), no capitals, no quotes or dashes
    assert {c: fold[c] for c in "éøñźсС’—"} == {"é": "e", "ø": "o", "ñ": "n", "ź": "", "с": "s", "С": "",
                                                "’": "", "—": ""}
    text = "".join(fold)
    assert "".join(fold[c] for c in text) == vocab.fold(text)


def test_a_new_format_gives_every_copy_a_new_name(tmp_path, monkeypatch):
    weights = make_checkpoint(tmp_path / "run", corpus_text())
    before = webcopy.file_digest(weights)
    monkeypatch.setattr(webcopy, "FORMAT", "charrnn-web/next")
    assert webcopy.file_digest(weights) != before          # no browser reads an old copy from its cache


def test_only_the_index_and_the_copies_files_are_served_by_name():
    assert webcopy.is_served("index.json") and webcopy.is_served("0123456789abcdef.bin")
    assert webcopy.is_served("0123456789abcdef.json")
    for name in ("0123456789abcdef.safetensors", "0123456789ABCDEF.bin", "0123456789abcde.bin", "../index.json",
                 "index.json/", ".0123456789abcdef.bin.tmp", "0123456789abcdef.bin\n", "notes.txt", ""):
        assert not webcopy.is_served(name), name
