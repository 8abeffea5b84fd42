"""The YUV path of `tinysr.video.upscale`: a Y-only tiny net runs on the decoded luma plane, chroma by MATLAB bicubic.

A Y-only, bicubic-anchored tiny net computes luma as ``Y_hr = bicubic(Y) + 255 * residual(Y / 255)``
(`TinySR.forward_luma`) and its Cb/Cr as plain bicubic. A 4:2:0 video already holds Y, Cb and Cr, so nothing needs
converting:
1. the decoder hands over the frame's planes as stored (yuv420p: Y at W x H, U and V at W/2 x H/2);
2. the net runs on Y: the compiled convs of `tinysr.infer.fused`, then `_video_kernel.plane_anchor_add_round`, the
   fused HR stage for one plane -> Y at 2W x 2H;
3. U and V are upscaled x2 by the same kernel with no residual (MATLAB bicubic, as the nets' own Cb/Cr);
4. the planes go to the encoder as yuv420p at 2W x 2H.
No RGB image is made: no YUV -> RGB at decode, no RGB -> YUV at encode, half the bytes through the pipes, and
the HR stage works on 1.5 planes instead of 3 channels.

Convention: planes are uint8 in the video's own range (limited 16..235 or full), as decoded; chroma is resampled
as an image (pixel centres), without regard to its siting. The nets were trained on MATLAB's BT.601
studio-range luma of RGB: for an untagged or BT.601 limited-range video the decoded Y is that luma rounded to
uint8; for BT.709 it is BT.709's luma. benchmarks/RESULTS.md ("video") measures this path against RGB.
"""

from __future__ import annotations

import numpy as np

from tinysr.infer import fused as fused_stage
from tinysr.infer.network import Network

#: Decoded pixel formats the YUV path takes (4:2:0, 8-bit); others go through RGB.
YUV_PIX_FMTS = ("yuv420p", "yuvj420p")


def luma_net(model: Network) -> fused_stage.FusedNet | None:
    """The model as compiled-kernel arrays when it can run on a luma plane (a Y-only, bicubic-anchored ReLU tiny
    net, and Numba installed); None otherwise."""
    return model.fused if fused_stage.available() else None


def eligible(net: fused_stage.FusedNet | None, *, pix_fmt: str, width: int, height: int, out_pix_fmt: str) -> bool:
    """Whether a video takes the YUV path: a `luma_net`, scale 2, a 4:2:0 8-bit source of even size, 4:2:0 out."""
    return (net is not None and net.scale == 2 and pix_fmt in YUV_PIX_FMTS and width % 2 == 0
            and height % 2 == 0 and out_pix_fmt in YUV_PIX_FMTS)


def upscale_luma(net: fused_stage.FusedNet, y: np.ndarray) -> np.ndarray:
    """HW uint8 luma -> (H*s)x(W*s) uint8: ``bicubic(Y) + 255 * residual(Y / 255)``, clipped, rounded half to even
    (MATLAB bicubic, `tinysr.infer.fused`'s arithmetic)."""
    from tinysr.infer import _fused_kernel as kernel
    from tinysr.video._kernel import plane_anchor_add_round

    h, w = y.shape
    pad = net.weights[0].shape[2] // 2
    plane = fused_stage._padded(1, h, w, pad)
    np.divide(y, np.float32(255.0), out=plane[0, pad:pad + h, pad:pad + w], dtype=np.float32)
    for i, (weight, bias) in enumerate(zip(net.kernel_weights, net.kernel_biases)):
        if i == len(net.weights) - 1:
            out = fused_stage._padded(net.weights[i].shape[0], h, w, 0, spare=1)[:, :, :w]  # one layout
            kernel.conv(plane, weight, bias, False, out)
        else:
            nxt_pad = net.weights[i + 1].shape[2] // 2
            nxt = fused_stage._padded(net.weights[i].shape[0], h, w, nxt_pad)
            kernel.conv(plane, weight, bias, net.relu, nxt[:, nxt_pad:nxt_pad + h, nxt_pad:nxt_pad + w])
            plane = nxt
    offsets, taps = fused_stage.phase_taps(net.scale)
    hr = np.empty((h * net.scale, w * net.scale), np.uint8)
    plane_anchor_add_round(np.ascontiguousarray(y), out, np.float32(255.0), offsets, taps, hr)
    return hr


def upscale_plane(net: fused_stage.FusedNet, plane: np.ndarray) -> np.ndarray:
    """HW uint8 -> (H*s)x(W*s) uint8 by MATLAB bicubic alone (the anchor kernel with a zero residual)."""
    from tinysr.video._kernel import plane_anchor_add_round

    h, w = plane.shape
    offsets, taps = fused_stage.phase_taps(net.scale)
    hr = np.empty((h * net.scale, w * net.scale), np.uint8)
    zeros = np.zeros((net.scale * net.scale, h, w + 1), np.float32)[:, :, :w]  # upscale_luma's layout: one compile
    plane_anchor_add_round(np.ascontiguousarray(plane), zeros, np.float32(0.0), offsets, taps, hr)
    return hr


def upscale_yuv420_frame(net: fused_stage.FusedNet, frame: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """One raw yuv420p frame (flat uint8: Y, then U, then V) -> the raw yuv420p frame at s x the size (flat uint8):
    Y through the net, U and V by MATLAB bicubic."""
    luma, quarter = width * height, width * height // 4
    chroma = (height // 2, width // 2)
    planes = [upscale_luma(net, frame[:luma].reshape(height, width)),
              upscale_plane(net, frame[luma:luma + quarter].reshape(chroma)),
              upscale_plane(net, frame[luma + quarter:].reshape(chroma))]
    return np.concatenate([plane.reshape(-1) for plane in planes])
