"""The user-facing error type, and how text from users and the engine is made safe to show."""
from __future__ import annotations

import html
import re

ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/:'\"(),]+/)+[^\s/:'\"(),]*")


class UserError(Exception):
    """Something the user can fix; the message (plain text, user values through ``esc``) says what. The page shows it
    as a toast or in place, an API caller gets it as its error, the server log gets one line: never a traceback."""


def esc(text) -> str:
    """User-supplied text shown in a message: kept as text, never read as markup."""
    return html.escape(str(text), quote=False)


def no_markup(error) -> str:
    """An engine error for a toast or Markdown: a tag in the value it quotes shows as text; '>' stays readable;
    a server path shows as its last two parts (a run and its file), not where the app lives."""
    return short_paths(str(error)).replace("&", "&amp;").replace("<", "&lt;")


def short_paths(text: str) -> str:
    """'/srv/app/checkpoints/run/model.safetensors' -> 'run/model.safetensors'."""
    return ABSOLUTE_PATH.sub(lambda m: "/".join(m.group(0).rstrip("/").split("/")[-2:]), text)


def plain_text(message: str) -> str:
    """A message for a toast and an API caller: no Markdown emphasis or code marks (a toast shows them as typed, a
    script reads them as noise), no server path (``short_paths``). HTML escapes stay: a toast renders HTML."""
    return re.sub(r"\*\*|`", "", short_paths(message))
