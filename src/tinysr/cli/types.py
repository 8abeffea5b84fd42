"""argparse `type=` converters shared by the CLI modules (CLI layer only; the library never sees argparse).

Each raises `argparse.ArgumentTypeError` with a short message, which argparse prints as one line naming the option:
`tinysr train: error: argument --batch-size: must be >= 1, got 0`. Standard library only: the grammar imports this.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """A converter for an integer option that must be >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


#: An integer option that must be >= 1 (steps, batch size, threads, ...).
positive_int = int_at_least(1)


def positive_float(text: str) -> float:
    """A number option that must be > 0 (NaN is refused too)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value

