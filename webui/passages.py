"""What a model reads by default: a passage of its own text (the Inside tab's), and the start of a line of it
(the Generate tab's prime). A model whose text is not here (one added from a file, trained elsewhere) reads what
it writes itself, from one fixed seed: the same passage and prime every time."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from charrnn.data import CorpusError, read_text
from charrnn.runs.store import read_header
from charrnn.runs.weights import CheckpointError
from charrnn.sample import generate
from webui.errors import UserError
from webui.models import BUNDLED_KEY, ModelCache, load_model, run_directory
from webui.prime import DEFAULT_PRIME
from webui.settings import Settings

PASSAGE = ("tinyshakespeare.txt", 557_600, 1500)   # file, offset, length: Romeo and Balthasar, names in caps
PRIME_CHARS = 16                                   # a default prime: a line of the model's text, about this long
WRITING_SEED, WRITING_T = 1, 0.8                   # how a model without its text here writes its own passage
FIRST_LINE_CHARS = 200                             # of that writing, enough for the first line (the prime)
WRITTEN_NOTE = (f"Its training text is not on this server (it was added from a file), so it reads a passage it "
                f"wrote itself (seed {WRITING_SEED}, temperature {WRITING_T:g}).")


@lru_cache(maxsize=4)
def corpus_passage(data_dir: Path, name: str, start: int, chars: int) -> str:
    """About ``chars`` characters of a bundled corpus from the first blank line after ``start``, whole lines."""
    try:
        text = read_text(data_dir / name)
    except CorpusError:
        return ""
    begin = text.find("\n\n", start if start < len(text) else 0)
    piece = text[begin + 2 if begin >= 0 else 0:][:chars]
    end = piece.rfind("\n")
    return piece[:end + 1] if end > 0 else piece


def model_corpus(settings: Settings, key) -> tuple[str, str] | None:
    """(text, what to call it) of the corpus the model of picker value ``key`` was trained on, if it is here:
    the run's own copy (pasted or uploaded text), else the bundled corpus it names.

    Not ``corpus_path``: that falls back to a path an older header records, and a model added from the
    page brings a header a visitor wrote, so the page reads only the run's folder and the bundled corpora."""
    if key == BUNDLED_KEY:
        return None
    try:
        directory = run_directory(settings, key)
        header = read_header(directory)
    except (UserError, CheckpointError):
        return None
    name = str(header.get("data", {}).get("name", ""))
    for path in (directory / "corpus.txt", settings.data_dir / Path(name).name):
        if name and path.is_file():
            try:
                return read_text(path), name
            except CorpusError:
                return None
    return None


def model_passage(settings: Settings, models: ModelCache, key, chars: int = PASSAGE[2]) -> tuple[str, str, str]:
    """A passage for the Inside tab to read with the chosen model, the button's label, and a note on where the
    passage comes from ("" when it is the model's own text).

    The bundled model reads its Shakespeare passage; a run reads whole lines of its own corpus, from its held-out
    end when that is long enough (text the model has not trained on); a model whose corpus is not here reads what
    it writes (``model_writing``). A key that names no model here gets the Shakespeare passage (the tab refuses it).
    """
    found = model_corpus(settings, key)
    if found is not None:
        text, name = found
        return own_passage(text, chars), f"A passage of {Path(name).stem}", ""
    if key and key != BUNDLED_KEY:
        try:
            return model_writing(settings, models, key, chars), "A passage it wrote", WRITTEN_NOTE
        except UserError:
            pass
    return corpus_passage(settings.data_dir, *PASSAGE), "A Shakespeare passage", ""


def model_writing(settings: Settings, models: ModelCache, key, chars: int) -> str:
    """About ``chars`` characters the model of picker value ``key`` writes from the start of a line, whole lines
    (seed WRITING_SEED at WRITING_T: the same text each time, and its first line is the prime ``model_prime``
    gives). UserError when there is no such model."""
    model, vocab, _ = load_model(settings, models, key)
    text = "".join(generate(model, vocab, "", chars, WRITING_T, seed=WRITING_SEED))
    end = text.rfind("\n")
    return text[:end + 1] if end > chars // 2 else text


def own_passage(text: str, chars: int) -> str:
    """About ``chars`` characters of whole lines of ``text``: from its held-out last 10% when that is long enough."""
    start = int(len(text) * 0.9) if len(text) * 0.1 >= chars else 0
    if start and 0 <= (newline := text.find("\n", start, start + chars // 2)):
        start = newline + 1                                  # from the start of a line
    piece = text[start:start + chars]
    end = piece.rfind("\n")                                  # to the end of one
    return piece[:end + 1] if end > chars // 2 else piece


def model_prime(settings: Settings, models: ModelCache, key, most: int = PRIME_CHARS) -> str:
    """The Generate tab's default prime for the model of picker value ``key``: the start of a line of its own
    text; "ROMEO:\n" for the bundled model (or none chosen); when its text is not here, the start of the first line
    it writes itself (``model_writing``); empty (the start of a line) when there is no such model."""
    if not key or key == BUNDLED_KEY:
        return DEFAULT_PRIME
    found = model_corpus(settings, key)
    if found is not None:
        return line_start(own_passage(found[0], PASSAGE[2]), most)
    try:
        return line_start(model_writing(settings, models, key, FIRST_LINE_CHARS), most)
    except UserError:
        return ""


def line_start(text: str, most: int) -> str:
    """The first line of ``text`` with something on it: whole, with its newline, when it is at most ``most``
    characters (a speaker's name), else its first words (cut after a space) up to ``most``."""
    line = next((line for line in text.split("\n") if line.strip()), "")
    if len(line) <= most:
        return line + "\n" if line else ""
    cut = line.rfind(" ", 0, most)
    return line[:cut + 1] if cut > 0 else line[:most]
