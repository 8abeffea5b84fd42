"""Refusing a destination that overlaps a source, before anything is deleted or replaced.

A command that deletes or replaces its destination (`prepare cinic --force`, `prepare div2k`, `export --force`,
`polish --force`, `demo`) must never reach its own input: the same path, a destination inside the source (the
source's files would be deleted with it), or a source inside the destination (replacing the destination deletes
the source). Paths are compared resolved (symlinks followed, `..` removed), so another spelling does not slip by.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinysr.errors import TinySRError


def overlaps(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether paths `a` and `b` are the same, or one lies inside the other (resolved; neither needs to exist)."""
    ra, rb = Path(a).resolve(), Path(b).resolve()
    return ra == rb or ra.is_relative_to(rb) or rb.is_relative_to(ra)


def refuse_overlap(*, source: str | os.PathLike, destination: str | os.PathLike, source_option: str,
                   destination_option: str) -> None:
    """TinySRError naming both options when `destination` overlaps `source` (see the module doc)."""
    if overlaps(source, destination):
        raise TinySRError(f"{destination_option} {destination} overlaps {source_option} {source}: refusing to "
                          f"replace a source (choose a {destination_option} outside it)")
