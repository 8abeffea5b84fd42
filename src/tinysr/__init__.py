"""tinysr: single-image super-resolution built around EDSR, from 160 M parameters down to under 1,000.

The top-level API is lazy, so that `import tinysr` stays light (no torch until it is used):
`tinysr.upscale(image, model, ...)`, `tinysr.load_model(name_or_path)` (`tinysr.api`) and
`tinysr.upscale_video(src, dst, model, ...)` (`tinysr.video.upscale`).
"""

__version__ = "0.1.0"

#: public name -> (module, attribute), imported on first use.
_API = {"upscale": ("tinysr.api", "upscale"), "load_model": ("tinysr.api", "load_model"),
        "upscale_video": ("tinysr.video.upscale", "upscale_video")}


def __getattr__(name: str):
    if name in _API:
        import importlib  # the only import the package root makes, on first use of the API

        module, attribute = _API[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'tinysr' has no attribute {name!r}")
