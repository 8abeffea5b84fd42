"""Delivery: what a sender did to an image and what a receiver picks for it.

`record` (the `tinysr:` record a sender writes into a file), `encode` (the sender: downscale, compress under a byte
budget, record) and `auto` (the receiver's one policy: which bundled model a file, a clip or a degradation gets).
Torch-free: everything here runs on the core install.
"""
