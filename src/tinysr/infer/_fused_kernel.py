"""Numba kernels of `tinysr.infer.fused` (imported only when Numba is installed; see that module for the contract).

Module-level functions so that Numba can cache their machine code on disk (`cache=True`): the first call in a new
environment compiles (a few seconds), later processes load it.
"""

import numba
import numpy as np


def jit(fn):
    """`numba.njit` releasing the GIL, cached on disk where Numba finds a writable place (next to this file, or
    its user-wide cache); compiled per process where it finds none (Numba refuses ``cache=True`` there)."""
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy")(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, error_model="numpy")(fn)


@jit
def mirror(j, n):
    # MATLAB's half-sample symmetric index, valid for -2 <= j <= n + 1 and n >= 2
    if j < 0:
        return -j - 1
    if j >= n:
        return 2 * n - 1 - j
    return j


@jit
def horizontal(lr, row, offsets, taps, padded, out):
    # LR row `row` of lr (h, w, C) uint8 -> out (C, s, w) float32: the horizontal bicubic pass, channel- and
    # phase-major (out[c, q, x] is output column x * s + q), so that every loop below is contiguous.
    # padded: (C, w + 4) scratch for the row's channels with MATLAB's mirror, 2 pixels each side. C is 3 here and
    # 1 for a video's luma plane (`_video_kernel`).
    w, channels = lr.shape[1], lr.shape[2]
    s = offsets.shape[0]
    for x in range(-2, w + 2):
        src = mirror(x, w)
        for c in range(channels):
            padded[c, x + 2] = np.float32(lr[row, src, c])
    for c in range(channels):
        for q in range(s):
            t0, t1, t2, t3 = taps[q, 0], taps[q, 1], taps[q, 2], taps[q, 3]
            a0 = padded[c, 2 + offsets[q, 0]:2 + offsets[q, 0] + w]
            a1 = padded[c, 2 + offsets[q, 1]:2 + offsets[q, 1] + w]
            a2 = padded[c, 2 + offsets[q, 2]:2 + offsets[q, 2] + w]
            a3 = padded[c, 2 + offsets[q, 3]:2 + offsets[q, 3] + w]
            dst = out[c, q]
            for x in range(w):
                dst[x] = t0 * a0[x] + t1 * a1[x] + t2 * a2[x] + t3 * a3[x]


@jit
def fused(lr, phases, gain, offsets, taps, out):
    # out (h * s, w * s, 3) uint8 = round(clip(bicubic(lr) + gain[c] * shuffle(phases))), row by row: the
    # horizontal passes of the 5 LR rows an HR row needs sit in a ring; the vertical pass, the residual and the
    # rounding run on (3, s, w) rows (contiguous loops), and only the final uint8 store interleaves to HWC.
    h, w = lr.shape[0], lr.shape[1]
    s = offsets.shape[0]
    ring = np.empty((8, 3, s, w), np.float32)  # horizontal passes of padded rows j, slot (j + 2) % 8
    padded = np.empty((3, w + 4), np.float32)
    row = np.empty((3, s, w), np.float32)
    done = -3  # last padded row computed
    for i in range(h):
        while done < i + 2:
            done += 1
            horizontal(lr, mirror(done, h), offsets, taps, padded, ring[(done + 2) % 8])
        for p in range(s):
            v0, v1, v2, v3 = taps[p, 0], taps[p, 1], taps[p, 2], taps[p, 3]
            for c in range(3):
                g = gain[c]
                for q in range(s):
                    r0 = ring[(i + offsets[p, 0] + 2) % 8, c, q]
                    r1 = ring[(i + offsets[p, 1] + 2) % 8, c, q]
                    r2 = ring[(i + offsets[p, 2] + 2) % 8, c, q]
                    r3 = ring[(i + offsets[p, 3] + 2) % 8, c, q]
                    res = phases[p * s + q, i]
                    dst = row[c, q]
                    for x in range(w):
                        v = v0 * r0[x] + v1 * r1[x] + v2 * r2[x] + v3 * r3[x] + g * res[x]
                        dst[x] = np.rint(min(max(v, np.float32(0.0)), np.float32(255.0)))
            hr = out[i * s + p]
            for x in range(w):
                for q in range(s):
                    for c in range(3):
                        hr[x * s + q, c] = np.uint8(row[c, q, x])


@jit
def luma(lr, coeffs, offset, out):
    # (h, w, 3) uint8 -> out (h + 2p, w + 2p) float32, its interior (p = (out.shape - lr.shape) / 2) set to
    # (coeffs . rgb + offset) / 255 in `rgb_to_luma`'s order; the border is left to the caller (zeros)
    h, w = lr.shape[0], lr.shape[1]
    p = (out.shape[0] - h) // 2
    for y in range(h):
        for x in range(w):
            v = coeffs[0] * np.float32(lr[y, x, 0]) + coeffs[1] * np.float32(lr[y, x, 1]) \
                + coeffs[2] * np.float32(lr[y, x, 2])
            out[y + p, x + p] = (v + offset) / np.float32(255.0)


@jit
def conv(inp, weight, bias, relu, out):
    # one conv, stride 1, 'same' size: inp (C, h + k - 1, w + k - 1) zero-padded, weight (O, C, k, k) with odd k,
    # bias (O,); out (O, h, w) (a view into the next layer's padded buffer is fine), ReLU applied if `relu`.
    # Per output row and channel, an accumulator row in L1 takes each input channel's taps; a 3x3 kernel adds its
    # 9 taps in one pass (9 multiply-adds per accumulator load and store), other sizes one pass per tap. The
    # compiler vectorises these contiguous loops across x.
    n_out, n_in, k = weight.shape[0], weight.shape[1], weight.shape[2]
    h, w = out.shape[1], out.shape[2]
    acc = np.empty(w, np.float32)
    for y in range(h):
        for o in range(n_out):
            b = bias[o]
            for x in range(w):
                acc[x] = b
            for c in range(n_in):
                if k == 3:
                    _add_3x3(acc, inp[c, y], inp[c, y + 1], inp[c, y + 2], weight[o, c])
                    continue
                for ky in range(k):
                    row = inp[c, y + ky]
                    for kx in range(k):
                        wt = weight[o, c, ky, kx]
                        seg = row[kx:kx + w]
                        for x in range(w):
                            acc[x] += wt * seg[x]
            _store(acc, relu, out[o, y])


@jit
def _add_3x3(acc, r0, r1, r2, k):
    w00, w01, w02 = k[0, 0], k[0, 1], k[0, 2]
    w10, w11, w12 = k[1, 0], k[1, 1], k[1, 2]
    w20, w21, w22 = k[2, 0], k[2, 1], k[2, 2]
    for x in range(acc.shape[0]):
        acc[x] += (w00 * r0[x] + w01 * r0[x + 1] + w02 * r0[x + 2]
                   + w10 * r1[x] + w11 * r1[x + 1] + w12 * r1[x + 2]
                   + w20 * r2[x] + w21 * r2[x + 1] + w22 * r2[x + 2])


@jit
def _store(acc, relu, dst):
    if relu:
        for x in range(acc.shape[0]):
            dst[x] = max(acc[x], np.float32(0.0))
    else:
        for x in range(acc.shape[0]):
            dst[x] = acc[x]
