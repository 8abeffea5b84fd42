"""tinysr: single-image super-resolution built around EDSR, from 160 M parameters down to under 1,000."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy top-level API, so that `import tinysr` stays light (no torch until it is used)."""
    if name == "upscale":
        from tinysr.infer.upscale import upscale

        return upscale
    raise AttributeError(f"module 'tinysr' has no attribute {name!r}")
