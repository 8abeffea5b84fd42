"""Shared test fixtures: where the benchmark images live."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """`$TINYSR_DATA`, default `<repo>/../shared/data` (real images; never copied into the repository)."""
    return Path(os.environ.get("TINYSR_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    assert (root / "Set5").is_dir(), f"benchmark images not found under {root}; set TINYSR_DATA"
    return root
