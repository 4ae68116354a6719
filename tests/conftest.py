"""Engine fixtures: a small generated corpus and tiny models; files go in the test's own tmp_path."""
import pytest
import torch

from charrnn.config import ModelConfig
from charrnn.model import CharRNN
from charrnn.vocab import Vocab

WORDS = ("the cat sat", "on the mat", "a dog ran", "to the sun")


def patterned_text(n_lines: int = 400) -> str:
    """A fully determined text of a few repeated phrases (5,200 chars by default): quick to learn."""
    return "\n".join(f"{WORDS[i % 4]} {i % 7}" for i in range(n_lines)) + "\n"


def tiny_model(vocab: Vocab, seed: int = 0, **config) -> CharRNN:
    """A small untrained model in eval mode, its weights fixed by ``seed``."""
    torch.manual_seed(seed)
    cfg = {"embed": 8, "hidden": 16, **config}
    return CharRNN(ModelConfig(vocab_size=len(vocab), **cfg)).eval()


@pytest.fixture(scope="session")
def make_text():
    return patterned_text


@pytest.fixture(scope="session")
def make_model():
    return tiny_model


@pytest.fixture
def text() -> str:
    return patterned_text()


@pytest.fixture
def corpus_file(tmp_path, text):
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def vocab(text) -> Vocab:
    return Vocab.from_text(text)


@pytest.fixture
def model(vocab) -> CharRNN:
    return tiny_model(vocab)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, and do not stall when other processes hold the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
