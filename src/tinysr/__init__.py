"""tinysr: single-image super-resolution built around EDSR, from 160 M parameters down to under 1,000."""

__version__ = "0.1.0"
