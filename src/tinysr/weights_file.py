"""What `--model` accepts as a weights file, checked before any reader opens it (a torch-free leaf: the engine's
reader, `tinysr.infer.weights`, and the torch one, `tinysr.models.weights`, both start here)."""

from __future__ import annotations

import os
from pathlib import Path

from tinysr.errors import TinySRError

#: Files that --model cannot load, with where they do run.
EXPORTED = {".onnx": "an ONNX export: run it with onnxruntime", ".npz": "a NumPy-runtime export: run it with "
            "tinysr.runtime", ".tflite": "a LiteRT export", ".param": "an ncnn export"}


def weights_file(path: str | os.PathLike) -> Path:
    """`path` as a Path, after checking it is a file and not one of tinysr's exports (one line naming it if not)."""
    path = Path(path)
    if not path.is_file():
        raise TinySRError(f"{path}: no such weights file")
    if path.suffix.lower() in EXPORTED:
        raise TinySRError(f"{path}: {EXPORTED[path.suffix.lower()]}; --model takes tinysr weights (.safetensors or "
                          ".pt), a run folder or a bundled name")
    return path
