"""Shared test fixtures: where the benchmark images live, and one torch thread (shared helpers: helpers.py)."""

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


@pytest.fixture
def one_thread():
    """One torch thread: on a shared, oversubscribed CPU two spinning OpenMP threads run ~50x slower.

    Use per module: `pytestmark = pytest.mark.usefixtures("one_thread")`.
    """
    import torch  # here, not at the top: the core tests run in a venv without torch (`-m core`)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
