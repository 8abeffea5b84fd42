"""The browser page: the tiny nets run on the user's device, pixel-equal to `tinysr.upscale`.

`page/` holds the static page (HTML, CSS, ES modules; no third-party code, nothing loaded from a network);
`model_file` turns a net into the JSON the page runs; `site` writes a servable folder (page + models);
`server` serves one on 127.0.0.1 with the standard library. `tinysr web` (cli/web.py) composes them.
Torch-free: this package imports only leaves (`tinysr.resize`, `tinysr.errors`); the CLI passes nets in as arrays.
"""
