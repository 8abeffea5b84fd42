"""The top-level API, `tinysr.upscale` and `tinysr.load_model`: a model by name, run folder, weights file or object.

    import tinysr
    model = tinysr.load_model("tiny-1k-x2")            # a bundled name, a run folder or a weights file
    sr = tinysr.upscale(image, model)                  # HWC uint8 in and out; grey stays grey, alpha is kept
    sr = tinysr.upscale(image, "tiny-1k-x2", tile=512)  # the same, loading the model on the way
    sr = tinysr.upscale(image, "auto", source="photo.jpg")  # the model --model auto picks for that file
    sr = tinysr.upscale(image, "auto-5k", source="photo.jpg")  # the same among the <= 5k-parameter nets

A thin layer over `tinysr.infer.load.load_network` and `tinysr.infer.upscale.upscale`, which it does not change.
Torch-free: `load_model` returns a `tinysr.infer.network.Network`, which runs on the compiled kernels, NumPy or
(where installed) torch; `model.to_torch()` is the explicit step to a torch `nn.Module`. `upscale` also takes a
torch module.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from tinysr.delivery.auto import AUTO_FAMILIES, describe_choice, inspect_source, upscale_auto
from tinysr.errors import TinySRError
from tinysr.infer import upscale as engine
from tinysr.infer.load import load_network
from tinysr.infer.network import Network

log = logging.getLogger("tinysr")


def load_model(spec: str | os.PathLike, *, scale: int | None = None, trust: bool = False) -> Network:
    """The deployed network that `spec` names (bundled name, run folder or weights file); `scale`, when given, must
    be the model's. Runs without torch; `.to_torch()` gives the torch module.

    A weights file must carry its sha256 digest (tinysr writes one into every file); `trust=True` loads one without,
    with a warning, for a file whose origin you know. Bundled models are always checked."""
    return load_network(os.fspath(spec), scale=scale, trust=trust)[0]


def upscale(image: np.ndarray, model: Network | str | os.PathLike, *, source: str | os.PathLike | None = None,
            **options) -> np.ndarray:
    """`tinysr.infer.upscale.upscale` with `model` given as a network or as anything `load_model` takes; the
    keyword options (tile, overlap, self_ensemble, device, workers, fused, progress) are passed on.

    model "auto": the bundled model `tinysr upscale --model auto` picks for the file `source` the image was read
    from (its format, JPEG quality and `tinysr encode` record decide; `tinysr.delivery.auto`); the choice is logged on
    the "tinysr" logger, and `tinysr.delivery.auto.upscale_file` returns it with the image. "auto-5k": the same among
    the <= 5,000-parameter nets."""
    if isinstance(model, str) and model in AUTO_FAMILIES:
        if source is None:
            raise TinySRError(f"model {model!r} needs source=, the file the image was read from: its format and JPEG "
                              "quality decide the model")
        result = upscale_auto(image, info=inspect_source(source), family=model, **options)
        log.info(describe_choice(result.info, result.model))
        return result.image
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    elif not isinstance(model, Network) and not engine.is_torch_module(model):
        raise TinySRError(f"model must be a network, a bundled name, a run folder or a weights file; got "
                          f"{type(model).__name__}")
    return engine.upscale(image, model, **options)
