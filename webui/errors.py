"""The user-facing error type, and how text from users and the engine is made safe to show."""
from __future__ import annotations

import html


class UserError(Exception):
    """Something the user can fix; the message (Markdown) says what. The UI shows it, never a traceback."""


def esc(text) -> str:
    """User-supplied text shown in a message: kept as text, never read as markup."""
    return html.escape(str(text), quote=False)


def no_markup(error) -> str:
    """An engine error for a toast or Markdown: a tag in the value it quotes shows as text; '>' stays readable."""
    return str(error).replace("&", "&amp;").replace("<", "&lt;")
