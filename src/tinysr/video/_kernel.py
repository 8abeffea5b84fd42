"""Numba kernel of `tinysr.video.yuv`: the HR stage of a Y-only tiny net on one plane
(`tinysr.infer._fused_kernel.fused` for one channel instead of RGB). Imported only when Numba is installed;
compiled code cached like the other kernels."""

import numpy as np

from tinysr.infer._fused_kernel import horizontal, jit, mirror


@jit
def plane_anchor_add_round(plane, phases, gain, offsets, taps, out):
    # out (h * s, w * s) uint8 = round(clip(bicubic(plane) + gain * shuffle(phases))), rounded half to even: the
    # arithmetic of `_fused_kernel.fused` in its order, for one channel
    h, w = plane.shape[0], plane.shape[1]
    s = offsets.shape[0]
    ring = np.empty((8, 1, s, w), np.float32)  # horizontal passes of padded rows j, slot (j + 2) % 8
    padded = np.empty((1, w + 4), np.float32)
    channel = plane.reshape(h, w, 1)  # the plane as a 1-channel image: `_fused_kernel.horizontal` serves it
    done = -3
    for i in range(h):
        while done < i + 2:
            done += 1
            horizontal(channel, mirror(done, h), offsets, taps, padded, ring[(done + 2) % 8])
        for p in range(s):
            v0, v1, v2, v3 = taps[p, 0], taps[p, 1], taps[p, 2], taps[p, 3]
            hr = out[i * s + p]
            for q in range(s):
                r0 = ring[(i + offsets[p, 0] + 2) % 8, 0, q]
                r1 = ring[(i + offsets[p, 1] + 2) % 8, 0, q]
                r2 = ring[(i + offsets[p, 2] + 2) % 8, 0, q]
                r3 = ring[(i + offsets[p, 3] + 2) % 8, 0, q]
                res = phases[p * s + q, i]
                for x in range(w):
                    v = v0 * r0[x] + v1 * r1[x] + v2 * r2[x] + v3 * r3[x] + gain * res[x]
                    hr[x * s + q] = np.uint8(np.rint(min(max(v, np.float32(0.0)), np.float32(255.0))))
