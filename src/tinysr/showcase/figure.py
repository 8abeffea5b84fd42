"""The demo's figures, drawn with Pillow: per photo, a row of crops side by side, enlarged, each labelled under it.

Steps: 1. find the busiest window of the HR photo (`busiest_crop`); 2. cut that window from every image and enlarge
it by pixel replication (nearest neighbour, so no blur is added); 3. paste the panels on a white canvas with a
title above and up to three label lines under each (`crop_row`); 4. stack the rows and write the PNG atomically
(`write_rows`, through `tinysr.data.io.write_image`).

Convention: images are HWC RGB uint8 of one shape (the HR's); the figure is an RGB PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tinysr.data.io import write_image

CROP, ZOOM = 96, 2  # HR pixels of the crop's side (enough to see an eye and its blocks), and the enlargement
GAP, TITLE_H, LABEL_H, FONT_SIZE = 8, 28, 56, 13  # layout, in figure pixels; labels get up to three lines


def busiest_crop(hr: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner (y, x) of the size x size window of `hr` with the most gradient energy (stride size/2)."""
    grey = hr.astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    corners = [(y, x) for y in range(0, max(1, energy.shape[0] - size), size // 2)
               for x in range(0, max(1, energy.shape[1] - size), size // 2)]
    return max(corners, key=lambda c: energy[c[0]:c[0] + size, c[1]:c[1] + size].sum())


def enlarge(img: np.ndarray, zoom: int) -> np.ndarray:
    """Each pixel repeated zoom x zoom times (nearest neighbour): what a viewer's zoom shows, nothing smoothed."""
    return np.repeat(np.repeat(img, zoom, axis=0), zoom, axis=1)


def font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at `size` (no font file needed)."""
    return ImageFont.load_default(size=size)


def draw_panels(panels: list[tuple[str, np.ndarray]], *, title: str) -> Image.Image:
    """The panels (label, image crop) in a row on a white canvas, `title` above, each label (up to three lines,
    split at newlines) centred under its crop."""
    side = panels[0][1].shape[0]
    width = len(panels) * side + (len(panels) + 1) * GAP
    canvas = Image.new("RGB", (width, TITLE_H + side + LABEL_H), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((GAP, TITLE_H // 2), title, fill="black", font=font(), anchor="lm")
    for i, (label, crop) in enumerate(panels):
        left = GAP + i * (side + GAP)
        canvas.paste(Image.fromarray(np.ascontiguousarray(crop)), (left, TITLE_H))
        draw.multiline_text((left + side // 2, TITLE_H + side + 4), label, fill="black", font=font(), anchor="ma",
                            align="center", spacing=3)
    return canvas


def crop_row(hr: np.ndarray, srs: dict[str, np.ndarray], *, title: str, crop: int = CROP, zoom: int = ZOOM
             ) -> Image.Image:
    """One row: the crops of `srs` (label -> SR, HR's shape) and then of the HR, at the busiest window of `hr`.
    Labels may hold newlines (e.g. the upscaler, then its PSNR)."""
    y, x = busiest_crop(hr, crop)
    images = {**srs, "HR (original)": hr}
    panels = [(label, enlarge(img[y:y + crop, x:x + crop], zoom)) for label, img in images.items()]
    return draw_panels(panels, title=f"{title}, crop at ({x}, {y}), {zoom}x")


def write_rows(path: str | Path, rows: list[Image.Image]) -> Path:
    """The rows one under the other (left-aligned, white where one is narrower), written as a PNG atomically."""
    canvas = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        canvas.paste(row, (0, top))
        top += row.height
    write_image(path, np.asarray(canvas))
    return Path(path)
