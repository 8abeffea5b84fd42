"""The public path of the torch-free NumPy runtime (`import tinysr.runtime as rt`); it lives in
`tinysr.export.runtime`, beside the NumPy export that writes its files."""

from tinysr.export.runtime import load, upscale

__all__ = ["load", "upscale"]
