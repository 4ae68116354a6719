"""The prime a model can read: folded, dropped or refused."""
from __future__ import annotations

from collections.abc import Callable

from charrnn.vocab import Vocab
from webui.errors import UserError, esc

DEFAULT_PRIME = "ROMEO:\n"                # after a speaker's name the first letter is open: broad bars
Warn = Callable[[str], None]


def ignore(message: str) -> None:
    """A ``warn`` for callers that show no warnings."""


def usable_prime(vocab: Vocab, prime: str, warn: Warn, what: str = "the prime", most: int | None = None) -> str:
    """The prime with characters the model does not know transliterated to ASCII where it can, else dropped (warned).

    ``most``: the limit holds after transliteration too (one character can become many: U+FDFA about 18)."""
    missing = vocab.unknown_chars(prime)
    if not missing:
        return prime
    folded = vocab.clean(prime, "fold")
    if most is not None and len(folded) > most:
        raise UserError(f"{what.capitalize()} becomes {len(folded):,} characters once transliterated to what the "
                        f"model knows; at most {most:,} are read. Shorten it.")
    shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    warn(f"The model does not know {esc(shown)}: transliterated to ASCII where possible, otherwise left out of {what}.")
    return folded
