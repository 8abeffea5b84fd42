"""The one user-facing error type, and the rule that keeps its message on one line.

Convention: a `TinySRError` message is one line that names the culprit (a file, an option, a preset). The CLI
prints it as ``tinysr: error: <message>`` and exits with status 2; library callers may catch it. Names that come
from outside (file names may hold newlines) go through `one_line` before they are printed, so that no file name
can split a message or forge a ``tinysr: ...`` line of its own.
"""

from __future__ import annotations


class TinySRError(Exception):
    """A user error (bad input, impossible option) reported as one line naming the culprit."""


def one_line(text: str) -> str:
    """`text` with every control character (newline, carriage return, escape, tab, ...) written as a Python escape
    (`\\n`, `\\x1b`), so that it prints as exactly one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
