"""The showcase: `tinysr demo` on the core install (`demo`: the bundled nets on the embedded photos, clean and sent as
a JPEG) and its figures drawn with Pillow (`figure`). Torch-free, like everything the core install runs."""
