"""Pretrained models shipped inside the package: `pretrained/<file>.safetensors` listed in `pretrained/models.json`.

The table is the source of truth, a visible list rather than a folder scan: a weights file that is not in the table
is not offered. Each entry holds
    name           the `--model` value, e.g. "edsr-tiny-x2"
    file           the safetensors file next to this module (config inside, see `tinysr.models.weights`)
    scale          the upscaling factor the weights were trained for
    params         trainable parameters (`tinysr.models.count_params`)
    bytes          the file's size, checked before loading
    sha256         the hex sha256 of the file's bytes, checked before loading: a flipped byte anywhere, header
                   (config, metadata) or tensors, is an error naming the file (the file also records its tensors'
                   digest, `tinysr.integrity`, which every weights file must)
    train_command  the exact command that produced the weights
    train_wall_s   its wall time in seconds (the runs' own clocks, polish included; on this project's 2-core
                   machine, usually beside other work), or null where it was not recorded
    protocol       the evaluation protocol of `psnr` (e.g. "standard")
    psnr           {dataset: mean PSNR in dB} under that protocol, e.g. {"Set5": 33.1, "BSD100": 29.9}
Nothing here imports torch; loading goes through `tinysr.infer.load` / `tinysr.models.weights.load_model`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

from tinysr.errors import TinySRError

PRETRAINED_DIR = Path(__file__).resolve().parent
TABLE = "models.json"
TABLE_FORMAT = 1


@dataclass(frozen=True)
class PretrainedModel:
    """One row of `models.json`; see the module docstring for the fields."""

    name: str
    file: str
    scale: int
    params: int
    bytes: int
    sha256: str
    train_command: str
    train_wall_s: float | None
    protocol: str
    psnr: dict[str, float]


def read_table(*, root: Path | None = None) -> list[PretrainedModel]:
    """The rows of `root/models.json`, checked: known fields only, unique names."""
    path = Path(root or PRETRAINED_DIR) / TABLE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TinySRError(f"{path}: cannot read the pretrained table ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or not isinstance(data.get("models"), list):
        raise TinySRError(f"{path}: expected {{\"format\": {TABLE_FORMAT}, \"models\": [...]}}")
    names = {f.name for f in fields(PretrainedModel)}
    rows = []
    for entry in data["models"]:
        if not isinstance(entry, dict) or set(entry) != names:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise TinySRError(f"{path}: each model needs exactly the fields {sorted(names)}, got {got}")
        if not isinstance(entry["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]):
            raise TinySRError(f"{path}: model {entry['name']!r} has sha256 {entry['sha256']!r}, not 64 hex digits")
        rows.append(PretrainedModel(**entry))
    duplicates = {r.name for r in rows if [x.name for x in rows].count(r.name) > 1}
    if duplicates:
        raise TinySRError(f"{path}: duplicate model names {sorted(duplicates)}")
    return rows


def list_pretrained(*, root: Path | None = None) -> list[str]:
    """Names of the bundled models, in table order (empty until trained weights are dropped in).

    root: the folder of `models.json` and the weights; None is this package folder (read at call time).
    """
    return [row.name for row in read_table(root=root)]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (the bundled files are a few KB)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretrained_path(name: str, *, root: Path | None = None) -> Path:
    """The weights file of bundled model `name`, after checking it exists with the size and sha256 the table
    states."""
    rows = {row.name: row for row in read_table(root=root)}
    if name not in rows:
        raise TinySRError(f"unknown pretrained model {name!r}; bundled: {', '.join(rows) or 'none yet'}")
    row = rows[name]
    path = Path(root or PRETRAINED_DIR) / row.file
    if not path.is_file():
        raise TinySRError(f"{path}: the weights of pretrained model {name!r} are missing from the package")
    if path.stat().st_size != row.bytes:
        raise TinySRError(f"{path}: {path.stat().st_size} bytes, but the table says {row.bytes}; a damaged install?")
    if file_sha256(path) != row.sha256:
        raise TinySRError(f"{path}: content does not match the sha256 that {TABLE} records for {name!r} (a damaged "
                          "install; reinstall tinysr)")
    return path


__all__ = ["PRETRAINED_DIR", "PretrainedModel", "file_sha256", "list_pretrained", "pretrained_path", "read_table"]
