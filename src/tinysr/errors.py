"""The one user-facing error type.

Convention: a `TinySRError` message is one line that names the culprit (a file, an option, a preset). The CLI
prints it as ``tinysr: error: <message>`` and exits with status 2; library callers may catch it.
"""


class TinySRError(Exception):
    """A user error (bad input, impossible option) reported as one line naming the culprit."""
