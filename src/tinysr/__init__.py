"""tinysr: single-image super-resolution built around EDSR, from 160 M parameters down to under 1,000.

The top-level API is lazy, so that `import tinysr` stays light (no torch until it is used):
`tinysr.upscale(image, model, ...)` and `tinysr.load_model(name_or_path)` (`tinysr.infer.api`).
"""

__version__ = "0.1.0"

_API = {"upscale": "upscale", "load_model": "load_model"}


def __getattr__(name: str):
    if name in _API:
        from tinysr.infer import api  # the one import the package root makes, on first use of the API

        return getattr(api, _API[name])
    raise AttributeError(f"module 'tinysr' has no attribute {name!r}")
