"""Numba kernels of `tinysr.fused` (imported only when Numba is installed; see that module for the contract).

Module-level functions so that Numba can cache their machine code on disk (`cache=True`): the first call in a new
environment compiles (a few seconds), later processes load it.
"""

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, error_model="numpy")
def mirror(j, n):
    # MATLAB's half-sample symmetric index, valid for -2 <= j <= n + 1 and n >= 2
    if j < 0:
        return -j - 1
    if j >= n:
        return 2 * n - 1 - j
    return j


@numba.njit(nogil=True, cache=True, error_model="numpy")
def horizontal(lr, row, offsets, taps, out):
    # one LR row (w, 3) uint8 -> out (s * w * 3,) float32: the horizontal bicubic pass, HWC order
    w = lr.shape[1]
    s = offsets.shape[0]
    padded = np.empty((w + 2 * 2) * 3, np.float32)
    for x in range(-2, w + 2):
        src = mirror(x, w)
        for c in range(3):
            padded[(x + 2) * 3 + c] = np.float32(lr[row, src, c])
    for x in range(w):
        for q in range(s):
            base = (x * s + q) * 3
            for c in range(3):
                acc = taps[q, 0] * padded[(x + 2 + offsets[q, 0]) * 3 + c]
                for t in range(1, 4):
                    acc += taps[q, t] * padded[(x + 2 + offsets[q, t]) * 3 + c]
                out[base + c] = acc


@numba.njit(nogil=True, cache=True, error_model="numpy")
def fused(lr, phases, gain, offsets, taps, out):
    h, w = lr.shape[0], lr.shape[1]
    s = offsets.shape[0]
    ring = np.empty((8, s * w * 3), np.float32)  # horizontal passes of padded rows j, slot (j + 2) % 8
    done = -3  # last padded row computed
    for i in range(h):
        while done < i + 2:
            done += 1
            horizontal(lr, mirror(done, h), offsets, taps, ring[(done + 2) % 8])
        for p in range(s):
            r0 = ring[(i + offsets[p, 0] + 2) % 8]
            r1 = ring[(i + offsets[p, 1] + 2) % 8]
            r2 = ring[(i + offsets[p, 2] + 2) % 8]
            r3 = ring[(i + offsets[p, 3] + 2) % 8]
            v0, v1, v2, v3 = taps[p, 0], taps[p, 1], taps[p, 2], taps[p, 3]
            y = i * s + p
            for x in range(w):
                for q in range(s):
                    res = phases[p * s + q, i, x]
                    X = x * s + q
                    for c in range(3):
                        k = X * 3 + c
                        v = v0 * r0[k] + v1 * r1[k] + v2 * r2[k] + v3 * r3[k] + gain[c] * res
                        v = min(max(v, np.float32(0.0)), np.float32(255.0))
                        out[y, X, c] = np.uint8(np.rint(v))


@numba.njit(nogil=True, cache=True, error_model="numpy")
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


@numba.njit(nogil=True, cache=True, error_model="numpy")
def conv(inp, weight, bias, relu, out):
    # one conv, stride 1, 'same' size: inp (C, h + k - 1, w + k - 1) zero-padded, weight (O, C, k, k), bias (O,);
    # out (O, h, w) (a view into the next layer's padded buffer is fine), ReLU applied if `relu`.
    # Row by row: each (c, ky, kx) tap is a multiply-add of a contiguous input row into O accumulator rows that
    # stay in L1, which the compiler vectorises across x.
    n_out, n_in, k = weight.shape[0], weight.shape[1], weight.shape[2]
    h, w = out.shape[1], out.shape[2]
    acc = np.empty((n_out, w), np.float32)
    for y in range(h):
        for o in range(n_out):
            b = bias[o]
            for x in range(w):
                acc[o, x] = b
        for c in range(n_in):
            for ky in range(k):
                row = inp[c, y + ky]
                for kx in range(k):
                    seg = row[kx:kx + w]
                    for o in range(n_out):
                        wt = weight[o, c, ky, kx]
                        a = acc[o]
                        for x in range(w):
                            a[x] += wt * seg[x]
        for o in range(n_out):
            dst = out[o, y]
            a = acc[o]
            if relu:
                for x in range(w):
                    dst[x] = max(a[x], np.float32(0.0))
            else:
                for x in range(w):
                    dst[x] = a[x]
