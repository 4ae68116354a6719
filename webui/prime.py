"""The prime a model can read: folded, dropped or refused."""
from __future__ import annotations

from collections.abc import Callable

from charrnn.vocab import Vocab
from webui.errors import esc

DEFAULT_PRIME = "ROMEO:\n"                # after a speaker's name the first letter is open: broad bars
Warn = Callable[[str], None]


def ignore(message: str) -> None:
    """A ``warn`` for callers that show no warnings."""


def usable_prime(vocab: Vocab, prime: str, warn: Warn, what: str = "the prime") -> str:
    """The prime with characters the model does not know transliterated to ASCII where it can, else dropped (warned)."""
    missing = vocab.unknown_chars(prime)
    if not missing:
        return prime
    shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    warn(f"The model does not know {esc(shown)}: transliterated to ASCII where possible, otherwise left out of {what}.")
    return vocab.clean(prime, "fold")
