"""Models on the Hub: what a push stages (files and card), a pull from a snapshot folder adding a run that generates
what the original did, bad snapshots refused whole, and the Hub's errors as one line. No test touches the network:
huggingface_hub's calls are replaced by ones that serve folders on disk."""
import fnmatch
import json
import math
import pickle
import shutil
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
import torch
import yaml
from huggingface_hub import errors
from huggingface_hub.file_download import DryRunFileInfo
from safetensors.torch import load_file, save_file

from charrnn.cli import main
from charrnn.runs import hub
from charrnn.runs.hub import HubError, add_from_snapshot, pull, push, stage_run
from charrnn.runs.store import RunDir, load_checkpoint, plot_losses, read_header
from charrnn.sample import generate

REPO_ID = "someone/tiny-shakespeare"
VAL_LOSS = 1.25
DATA = {"name": "tiny shakespeare.txt", "chars": 5200, "bytes": 5210}


class PlantedPickle:
    """Unpickling this creates ``marker``: proof that a loader executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def run(tmp_path, make_model, vocab):
    """A finished run with a kept model, its loss plot and a header like training writes."""
    directory = tmp_path / "runs" / "tiny"
    directory.mkdir(parents=True)
    model = make_model(vocab, seed=3)
    meta = {"step": 400, "val_loss": VAL_LOSS, "best_step": 400, "best_val_loss": VAL_LOSS, "chars_seen": 51200,
            "data": DATA}
    RunDir(directory).keep(model, vocab, meta)
    plot_losses(directory, [{"step": 200, "train_loss": 2.0, "val_loss": 1.9}, {"step": 400, "val_loss": VAL_LOSS}])
    return directory


@pytest.fixture
def staged(run, tmp_path):
    """What a push of ``run`` would upload, staged as a snapshot folder a pull can read."""
    folder = tmp_path / "snapshot"
    stage_run(run, folder, REPO_ID)
    return folder


def text_of(model, vocab, seed=7) -> str:
    return "".join(generate(model, vocab, "the ", 120, 0.9, None, seed))


def no_run_left(root: Path) -> bool:
    return not root.exists() or not any(root.iterdir())


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


# --- push: what is staged -----------------------------------------------------------------
def test_staging_writes_the_kept_model_its_header_the_plot_and_a_card(run, staged):
    assert sorted(p.name for p in staged.iterdir()) == ["README.md", "checkpoint.json", "loss.png",
                                                        "model.safetensors"]
    header = read_header(staged / RunDir.WEIGHTS)
    assert json.loads((staged / RunDir.META).read_text(encoding="utf-8")) == header
    assert header["step"] == 400 and header["val_loss"] == VAL_LOSS and header["data"] == DATA
    original = load_file(str(run / RunDir.WEIGHTS))
    assert all(torch.equal(original[k], v) for k, v in load_file(str(staged / RunDir.WEIGHTS)).items())
    assert (staged / "loss.png").read_bytes() == (run / "loss.png").read_bytes()


def test_the_card_names_corpus_model_loss_licence_and_how_to_generate(staged, vocab):
    card = (staged / "README.md").read_text(encoding="utf-8")
    meta = front_matter(card)
    assert meta["library_name"] == "charrnn" and meta["license"] == "mit"
    assert meta["tags"] == ["char-rnn", "lstm", "text-generation"]
    assert "tiny shakespeare.txt" in card and "5,200 characters" in card
    params = read_header(staged / RunDir.WEIGHTS)["params"]
    assert f"| lstm | 1 | 16 | 8 | {params:,} | {len(vocab)} characters |" in card
    assert f"{VAL_LOSS:.4f} nats/char" in card and f"{VAL_LOSS / math.log(2):.3f} bits/char" in card
    assert "step 400" in card
    assert f"python -m charrnn hub pull {REPO_ID}\n" in card
    assert "python -m charrnn generate --checkpoint tiny-shakespeare " in card


def test_the_card_takes_the_licence_and_cell_the_header_names(tmp_path, make_model, vocab):
    directory = tmp_path / "gru"
    directory.mkdir()
    RunDir(directory).keep(make_model(vocab, cell="gru"), vocab, {"step": 5, "license": "apache-2.0"})
    card = (stage_run(directory, tmp_path / "out", REPO_ID)[-1]).read_text(encoding="utf-8")
    meta = front_matter(card)
    assert meta["license"] == "apache-2.0" and "gru" in meta["tags"]
    assert "not evaluated" in card                                      # no validation loss yet: said so


def test_staging_leaves_out_a_corpus_path_an_older_header_recorded(tmp_path, make_model, vocab):
    directory = tmp_path / "old"
    directory.mkdir()
    data = {**DATA, "path": "/home/someone/private/corpus.txt"}
    RunDir(directory).keep(make_model(vocab), vocab, {"step": 5, "data": data})
    for path in stage_run(directory, tmp_path / "out", REPO_ID):
        assert b"/home/someone" not in path.read_bytes(), path.name
    assert read_header(tmp_path / "out")["data"] == DATA


def test_staging_a_run_without_a_kept_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HubError, match="no kept model"):
        stage_run(tmp_path / "empty", tmp_path / "out", REPO_ID)


def test_push_uploads_the_staged_folder_to_the_repository(run, monkeypatch):
    calls = {}

    def create_repo(self, repo_id, **kw):
        calls["create"] = (repo_id, kw)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, **kw):
        calls["upload"] = (repo_id, sorted(p.name for p in Path(folder_path).iterdir()))

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert push(run, REPO_ID, private=True) == f"https://huggingface.co/{REPO_ID}"
    assert calls["create"] == (REPO_ID, {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls["upload"] == (REPO_ID, ["README.md", "checkpoint.json", "loss.png", "model.safetensors"])


def test_push_without_a_token_says_how_to_log_in(run, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubError, match="no Hugging Face token: run `hf auth login`, or set HF_TOKEN"):
        push(run, REPO_ID)


def http_error(cls, status: int):
    response = httpx2.Response(status, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
    return cls(f"{status} Client Error", response=response)


@pytest.mark.parametrize("error, said", [
    (lambda: http_error(errors.HfHubHTTPError, 403), "may not write to someone/tiny-shakespeare (403)"),
    (lambda: http_error(errors.HfHubHTTPError, 401), "refused your token (401)"),
    (lambda: httpx2.ConnectError("Name or service not known"), "cannot reach the Hugging Face Hub"),
])
def test_a_push_the_hub_refuses_is_one_line_naming_the_fix(run, monkeypatch, error, said):
    def create_repo(self, repo_id, **kw):
        raise error()

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    with pytest.raises(HubError, match=said.replace("(", r"\(").replace(")", r"\)")) as caught:
        push(run, REPO_ID)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("repo_id", ["tiny", "a/b/c", "bad id/x", "-x/y"])
def test_a_repo_id_that_is_not_owner_slash_name_is_refused_before_any_network(run, tmp_path, repo_id):
    with pytest.raises(HubError, match="OWNER/NAME"):
        pull(repo_id, tmp_path / "ck")
    assert no_run_left(tmp_path / "ck")


# --- pull: from a snapshot folder ---------------------------------------------------------
def test_a_pulled_snapshot_is_a_run_that_generates_the_same_text_for_the_same_seed(run, staged, tmp_path):
    root = tmp_path / "ck"
    added = add_from_snapshot(staged, root, None, source=REPO_ID)
    assert added.name == "tiny-shakespeare" and added.status()["state"] == "pulled"
    model, vocab, _ = load_checkpoint(run)
    pulled, pulled_vocab, header = load_checkpoint(root / "tiny-shakespeare")
    assert pulled_vocab == vocab and header["val_loss"] == VAL_LOSS
    assert text_of(pulled, pulled_vocab) == text_of(model, vocab)


def test_a_second_pull_gets_a_numbered_name_and_a_chosen_name_is_never_overwritten(staged, tmp_path):
    root = tmp_path / "ck"
    assert add_from_snapshot(staged, root, None, source=REPO_ID).name == "tiny-shakespeare"
    assert add_from_snapshot(staged, root, None, source=REPO_ID).name == "tiny-shakespeare-2"
    before = (root / "tiny-shakespeare" / RunDir.WEIGHTS).read_bytes()
    with pytest.raises(HubError, match="already exists.*nothing was overwritten"):
        add_from_snapshot(staged, root, "tiny-shakespeare")
    assert (root / "tiny-shakespeare" / RunDir.WEIGHTS).read_bytes() == before


def lying_header(path: Path) -> None:
    """Rewrite a weights file so its header claims a model twice as wide as its tensors."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    header = json.loads(meta["charrnn"])
    header["model_config"]["hidden"] *= 2
    save_file(load_file(str(path)), str(path), metadata={"charrnn": json.dumps(header)})


@pytest.mark.parametrize("spoil, said", [
    (lambda f: f.unlink(), "has no model.safetensors: it is not a charrnn model"),
    (lambda f: torch.save({"w": torch.zeros(3)}, f), "is not a safetensors file: it does not begin with a "
                                                       r"safetensors header \(a pickle"),
    (lambda f: f.write_bytes(pickle.dumps(PlantedPickle(f.parent / "PWNED"))), "is not a safetensors file"),
    (lying_header, r"cannot be used: incompatible checkpoint \(its tensors do not match its model config"),
    (lambda f: f.write_bytes(f.read_bytes()[:-40]), "is cut short: .* bytes its header describes"),
])
def test_a_bad_snapshot_is_refused_with_the_upload_message_and_leaves_no_run(staged, tmp_path, spoil, said):
    spoil(staged / RunDir.WEIGHTS)
    root = tmp_path / "ck"
    with pytest.raises(HubError, match=said) as caught:
        add_from_snapshot(staged, root, None, source=REPO_ID)
    assert "Nothing was added." in str(caught.value) and "\n" not in str(caught.value)
    assert no_run_left(root)
    assert not (staged / "PWNED").exists()                                # nothing was unpickled


def test_a_model_over_the_parameter_cap_is_refused_before_it_is_loaded(staged, tmp_path):
    with pytest.raises(HubError, match="at most 100 are loaded here"):
        add_from_snapshot(staged, tmp_path / "ck", None, max_params=100)
    assert no_run_left(tmp_path / "ck")


# --- pull and generate through the CLI, with the Hub served from disk ---------------------
@pytest.fixture
def served(monkeypatch, staged, tmp_path):
    """huggingface_hub.snapshot_download answering REPO_ID from the staged folder (and nothing else)."""
    cache = tmp_path / "hf-cache"

    def snapshot_download(repo_id, *, local_dir=None, allow_patterns=None, dry_run=False, **_):
        if repo_id != REPO_ID:
            raise http_error(errors.RepositoryNotFoundError, 404)
        files = [p for p in staged.iterdir() if any(fnmatch.fnmatch(p.name, a) for a in allow_patterns)]
        target = Path(local_dir) if local_dir else cache / repo_id
        if dry_run:
            return [DryRunFileInfo(commit_hash="0" * 40, file_size=p.stat().st_size, filename=p.name,
                                   local_path=str(target / p.name), is_cached=False, will_download=True) for p in files]
        target.mkdir(parents=True, exist_ok=True)
        for p in files:
            shutil.copyfile(p, target / p.name)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return cache


def test_cli_pull_adds_a_run_that_generate_reads_like_the_original(run, served, tmp_path, capsys):
    root = tmp_path / "ck"
    assert main(["--checkpoints", str(root), "hub", "pull", REPO_ID]) == 0
    assert "--checkpoint tiny-shakespeare" in capsys.readouterr().err
    assert [p.name for p in root.iterdir()] == ["tiny-shakespeare"]             # the download folder is gone
    assert sorted(p.name for p in (root / "tiny-shakespeare").iterdir()) == [RunDir.META, RunDir.WEIGHTS,
                                                                             RunDir.STATUS]
    texts = []
    for checkpoint in (str(run), "tiny-shakespeare", f"hf:{REPO_ID}"):
        args = ["--checkpoints", str(root), "generate", "--checkpoint", checkpoint, "--seed", "5", "--length", "80"]
        assert main(args) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] == texts[2] and len(texts[0]) == 81


def test_cli_pull_of_a_file_over_the_cap_is_refused_before_download(monkeypatch, tmp_path, capsys):
    def snapshot_download(repo_id, *, local_dir=None, allow_patterns=None, dry_run=False, **_):
        assert dry_run, "downloaded a file the size cap refuses"
        return [DryRunFileInfo(commit_hash="0" * 40, file_size=10 << 30, filename=RunDir.WEIGHTS,
                               local_path=str(Path(local_dir) / RunDir.WEIGHTS), is_cached=False, will_download=True)]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    root = tmp_path / "ck"
    assert main(["--checkpoints", str(root), "hub", "pull", REPO_ID]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model.safetensors of someone/tiny-shakespeare is 10.0 GiB; models up to ")
    assert err.count("\n") == 1 and "Nothing was added." in err
    assert no_run_left(root)


def dry_run_failure(cause: Exception) -> Exception:
    """What snapshot_download(dry_run=True) raises when the Hub cannot answer: its own words, the cause behind."""
    error = errors.DryRunError("Dry run cannot be performed as the repository cannot be accessed.")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error, said", [
    (lambda: dry_run_failure(httpx2.ConnectError("[Errno -2] Name or service not known")),
     "cannot reach the Hugging Face Hub (ConnectError: [Errno -2] Name or service not known): check your network"),
    (lambda: dry_run_failure(http_error(errors.RepositoryNotFoundError, 404)), "no model repository someone/x"),
    (lambda: errors.LocalEntryNotFoundError("offline"), "cannot reach the Hugging Face Hub, and someone/x is not"),
    (lambda: httpx2.ConnectTimeout("timed out"), "cannot reach the Hugging Face Hub (ConnectTimeout"),
    (lambda: http_error(errors.RepositoryNotFoundError, 404), "no model repository someone/x on the Hugging Face"),
    (lambda: http_error(errors.GatedRepoError, 403), "someone/x is gated"),
    (lambda: errors.OfflineModeIsEnabled("offline"), "HF_HUB_OFFLINE is set"),
])
def test_cli_pull_the_hub_cannot_serve_is_one_line_and_leaves_nothing(monkeypatch, tmp_path, capsys, error, said):
    def snapshot_download(*a, **kw):
        raise error()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    root = tmp_path / "ck"
    assert main(["--checkpoints", str(root), "hub", "pull", "someone/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said}") and err.count("\n") == 1
    assert no_run_left(root)


def test_cli_pull_refuses_a_taken_name_before_downloading(served, tmp_path, capsys, monkeypatch):
    root = tmp_path / "ck"
    (root / "mine").mkdir(parents=True)
    monkeypatch.setattr(hub, "download", lambda *a: pytest.fail("downloaded although the name is taken"))
    assert main(["--checkpoints", str(root), "hub", "pull", REPO_ID, "--name", "mine"]) == 2
    assert "a run named mine already exists" in capsys.readouterr().err
    assert [p.name for p in root.iterdir()] == ["mine"] and not any((root / "mine").iterdir())
