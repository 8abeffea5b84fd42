"""Fault injection for the kill-and-resume tests: a named point where a test can SIGKILL the process.

``TINYSR_TEST_KILL=POINT`` (or ``POINT@N``) kills this process with SIGKILL the 1st (or Nth) time it passes `point
(POINT)`: no handler, no `finally`, no flush runs, exactly as a power cut or the OOM killer would end it. Points:
  - ``before-rename:NAME`` / ``after-rename:NAME``: an atomic write of file NAME (config.json, status.json,
    last.pt, best.safetensors, a cache array...) is complete in its temporary file / has just replaced NAME;
  - ``mid-append:metrics.jsonl``: half of a metrics line is written (a torn line);
  - ``validate:image``: one validation image is measured; ``train:step``: one optimizer step is done;
  - ``cache:image``: one image is written into a cache entry being built.
Unset (always, outside tests), `point` is one comparison with None.
"""

from __future__ import annotations

import os
import signal

ENV = "TINYSR_TEST_KILL"


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, nth = spec.partition("@")
    return name, int(nth or 1)


_target = _parse(os.environ.get(ENV))
_passes = 0


def point(name: str) -> None:
    """SIGKILL this process if `name` is the armed point and this is the armed pass (see the module doc)."""
    global _passes
    if _target is None or _target[0] != name:
        return
    _passes += 1
    if _passes == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
