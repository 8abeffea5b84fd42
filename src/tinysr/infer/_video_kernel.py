"""Numba kernel of `tinysr.infer.video_yuv`: the HR stage of a Y-only tiny net on one plane (`tinysr.infer._fused_kernel.fused`
for one channel instead of RGB). Imported only when Numba is installed; compiled code cached like the other
kernels."""

import numpy as np

from tinysr.infer._fused_kernel import jit, mirror


@jit
def horizontal(plane, row, offsets, taps, padded, out):
    # row `row` of plane (h, w) uint8 -> out (s, w) float32, out[q, x] being output column x * s + q: the
    # horizontal bicubic pass on the row padded by MATLAB's mirror (padded: (w + 4,) scratch)
    w = plane.shape[1]
    s = offsets.shape[0]
    for x in range(-2, w + 2):
        padded[x + 2] = np.float32(plane[row, mirror(x, w)])
    for q in range(s):
        t0, t1, t2, t3 = taps[q, 0], taps[q, 1], taps[q, 2], taps[q, 3]
        a0 = padded[2 + offsets[q, 0]:2 + offsets[q, 0] + w]
        a1 = padded[2 + offsets[q, 1]:2 + offsets[q, 1] + w]
        a2 = padded[2 + offsets[q, 2]:2 + offsets[q, 2] + w]
        a3 = padded[2 + offsets[q, 3]:2 + offsets[q, 3] + w]
        dst = out[q]
        for x in range(w):
            dst[x] = t0 * a0[x] + t1 * a1[x] + t2 * a2[x] + t3 * a3[x]


@jit
def plane_anchor_add_round(plane, phases, gain, offsets, taps, out):
    # out (h * s, w * s) uint8 = round(clip(bicubic(plane) + gain * shuffle(phases))), rounded half to even: the
    # arithmetic of `_fused_kernel.fused` in its order, for one channel
    h, w = plane.shape[0], plane.shape[1]
    s = offsets.shape[0]
    ring = np.empty((8, s, w), np.float32)  # horizontal passes of padded rows j, slot (j + 2) % 8
    padded = np.empty(w + 4, np.float32)
    done = -3
    for i in range(h):
        while done < i + 2:
            done += 1
            horizontal(plane, mirror(done, h), offsets, taps, padded, ring[(done + 2) % 8])
        for p in range(s):
            v0, v1, v2, v3 = taps[p, 0], taps[p, 1], taps[p, 2], taps[p, 3]
            hr = out[i * s + p]
            for q in range(s):
                r0 = ring[(i + offsets[p, 0] + 2) % 8, q]
                r1 = ring[(i + offsets[p, 1] + 2) % 8, q]
                r2 = ring[(i + offsets[p, 2] + 2) % 8, q]
                r3 = ring[(i + offsets[p, 3] + 2) % 8, q]
                res = phases[p * s + q, i]
                for x in range(w):
                    v = v0 * r0[x] + v1 * r1[x] + v2 * r2[x] + v3 * r3[x] + gain * res[x]
                    hr[x * s + q] = np.uint8(np.rint(min(max(v, np.float32(0.0)), np.float32(255.0))))
