"""Numba kernels of `tinysr.infer.fused` and `tinysr.infer.fused_compact` (imported only when Numba is installed; see
those modules for the contract).

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
def planes(lr, factor, out):
    # (h, w, 3) uint8 -> out (3, h + 2p, w + 2p) float32, its interior (p = (out.shape[1] - h) / 2) set to
    # float32(lr) * factor, the compact program's first op (a product by float32(1 / 255), not a division by 255);
    # the border is left to the caller (zeros)
    h, w = lr.shape[0], lr.shape[1]
    p = (out.shape[1] - h) // 2
    for c in range(3):
        for y in range(h):
            dst = out[c, y + p]
            for x in range(w):
                dst[x + p] = np.float32(lr[y, x, c]) * factor


@jit
def nearest_add_round(x01, phases, factor, out):
    # out (h * s, w * s, 3) uint8 = rint(clip((shuffle(phases) + nearest(x01)) * factor)): the compact program's
    # tail (add the input repeated s^2 times, pixel shuffle, x255) plus the rounding, in one pass per HR row.
    # x01: (3, h + 2p, w + 2p), the padded input planes of `planes`; phases (3 s^2, h, w), channel c * s^2 + p * s + q
    # giving output pixel (i * s + p, j * s + q) of colour c (torch's `pixel_shuffle` order). As in `fused`, the
    # arithmetic runs on a (3, s, w) row (contiguous loops); only the uint8 store interleaves to HWC.
    h, w = phases.shape[1], phases.shape[2]
    s = out.shape[0] // h
    pad = (x01.shape[1] - h) // 2
    row = np.empty((3, s, w), np.float32)
    for i in range(h):
        for p in range(s):
            for c in range(3):
                anchor = x01[c, i + pad, pad:pad + w]
                for q in range(s):
                    res = phases[(c * s + p) * s + q, i]
                    dst = row[c, q]
                    for x in range(w):
                        v = (res[x] + anchor[x]) * factor
                        dst[x] = np.rint(min(max(v, np.float32(0.0)), np.float32(255.0)))
            hr = out[i * s + p]
            for x in range(w):
                for q in range(s):
                    for c in range(3):
                        hr[x * s + q, c] = np.uint8(row[c, q, x])


@jit
def conv(inp, weight, bias, relu, out):
    # `conv_prelu` with ReLU: a PReLU of slope 0 (max(v, 0) and `v if v >= 0 else 0 * v` differ only in the sign of
    # a zero, which no later sum or rounding sees)
    conv_prelu(inp, weight, bias, relu, np.zeros(weight.shape[0], np.float32), out)


@jit
def conv_prelu(inp, weight, bias, act, slope, out):
    # one conv, stride 1, 'same' size: inp (C, h + k - 1, w + k - 1) zero-padded, weight (O', C, k, k) with odd k and
    # O' >= O output filters (3x3: O' = 4k or 4k + 2, the extra filters zero; `tinysr.infer.fused.blocked`), bias
    # (O',); out (O, h, w) (a view into the next layer's padded buffer is fine). If `act`, a PReLU follows with
    # slope[o] for output o (>= O entries): `v if v >= 0 else v * slope[o]`, the program's `prelu` op exactly.
    if weight.shape[2] == 3 and weight.shape[0] % 4 in (0, 2):
        _conv3x3_by_4(inp, weight, bias, act, slope, out)
        return
    # Other sizes (the 5x5 first conv on one channel): per output row and channel, an accumulator row in L1 takes
    # each input channel's taps, one pass per tap. The compiler vectorises these contiguous loops across x.
    n_in, k = weight.shape[1], weight.shape[2]
    h, w = out.shape[1], out.shape[2]
    acc = np.empty(w, np.float32)
    for y in range(h):
        for o in range(out.shape[0]):
            b = bias[o]
            for x in range(w):
                acc[x] = b
            for c in range(n_in):
                for ky in range(k):
                    row = inp[c, y + ky]
                    for kx in range(k):
                        wt = weight[o, c, ky, kx]
                        seg = row[kx:kx + w]
                        for x in range(w):
                            acc[x] += wt * seg[x]
            _store(acc, act, slope[o], out[o, y])


@jit
def _conv3x3_by_4(inp, weight, bias, act, slope, out):
    # 3x3 convs four output filters at a time: per output row and input channel, one pass over x loads the 9 input
    # taps once and adds them into 4 accumulator rows (36 multiply-adds per 9 + 4 loads and 4 stores, against 9 per
    # 9 + 1 and 1 filter by filter), with the 36 weights held in registers; a remainder of 2 filters (6 = 4 + 2)
    # runs two at a time, 1 or 3 as 4 with zero filters (`tinysr.infer.fused.blocked` pads them). Each output still
    # sums bias, then per input channel its 9 taps in row-major order: the same arithmetic, in the same order, as
    # one filter at a time.
    n_in = weight.shape[1]
    h, w = out.shape[1], out.shape[2]
    a0 = np.empty(w, np.float32)
    a1 = np.empty(w, np.float32)
    a2 = np.empty(w, np.float32)
    a3 = np.empty(w, np.float32)
    for y in range(h):
        for o in range(0, weight.shape[0], 4):
            pair = weight.shape[0] - o == 2
            b0, b1 = bias[o], bias[o + 1]
            for x in range(w):
                a0[x] = b0
                a1[x] = b1
            if pair:
                for c in range(n_in):
                    _add_3x3_by_2(a0, a1, inp[c, y], inp[c, y + 1], inp[c, y + 2], weight[o, c], weight[o + 1, c])
            else:
                b2, b3 = bias[o + 2], bias[o + 3]
                for x in range(w):
                    a2[x] = b2
                    a3[x] = b3
                for c in range(n_in):
                    _add_3x3_by_4(a0, a1, a2, a3, inp[c, y], inp[c, y + 1], inp[c, y + 2], weight[o, c],
                                  weight[o + 1, c], weight[o + 2, c], weight[o + 3, c])
            for j in range(min(4, out.shape[0] - o)):
                _store(a0 if j == 0 else a1 if j == 1 else a2 if j == 2 else a3, act, slope[o + j],
                       out[o + j, y])


@jit
def _add_3x3_by_2(a0, a1, r0, r1, r2, k0, k1):
    p00, p01, p02, p10, p11, p12, p20, p21, p22 = _taps(k0)
    q00, q01, q02, q10, q11, q12, q20, q21, q22 = _taps(k1)
    for x in range(a0.shape[0]):
        v00, v01, v02 = r0[x], r0[x + 1], r0[x + 2]
        v10, v11, v12 = r1[x], r1[x + 1], r1[x + 2]
        v20, v21, v22 = r2[x], r2[x + 1], r2[x + 2]
        a0[x] += (p00 * v00 + p01 * v01 + p02 * v02 + p10 * v10 + p11 * v11 + p12 * v12
                  + p20 * v20 + p21 * v21 + p22 * v22)
        a1[x] += (q00 * v00 + q01 * v01 + q02 * v02 + q10 * v10 + q11 * v11 + q12 * v12
                  + q20 * v20 + q21 * v21 + q22 * v22)


@jit
def _add_3x3_by_4(a0, a1, a2, a3, r0, r1, r2, k0, k1, k2, k3):
    p00, p01, p02, p10, p11, p12, p20, p21, p22 = _taps(k0)
    q00, q01, q02, q10, q11, q12, q20, q21, q22 = _taps(k1)
    s00, s01, s02, s10, s11, s12, s20, s21, s22 = _taps(k2)
    t00, t01, t02, t10, t11, t12, t20, t21, t22 = _taps(k3)
    for x in range(a0.shape[0]):
        v00, v01, v02 = r0[x], r0[x + 1], r0[x + 2]
        v10, v11, v12 = r1[x], r1[x + 1], r1[x + 2]
        v20, v21, v22 = r2[x], r2[x + 1], r2[x + 2]
        a0[x] += (p00 * v00 + p01 * v01 + p02 * v02 + p10 * v10 + p11 * v11 + p12 * v12
                  + p20 * v20 + p21 * v21 + p22 * v22)
        a1[x] += (q00 * v00 + q01 * v01 + q02 * v02 + q10 * v10 + q11 * v11 + q12 * v12
                  + q20 * v20 + q21 * v21 + q22 * v22)
        a2[x] += (s00 * v00 + s01 * v01 + s02 * v02 + s10 * v10 + s11 * v11 + s12 * v12
                  + s20 * v20 + s21 * v21 + s22 * v22)
        a3[x] += (t00 * v00 + t01 * v01 + t02 * v02 + t10 * v10 + t11 * v11 + t12 * v12
                  + t20 * v20 + t21 * v21 + t22 * v22)


@jit
def _taps(k):
    return k[0, 0], k[0, 1], k[0, 2], k[1, 0], k[1, 1], k[1, 2], k[2, 0], k[2, 1], k[2, 2]


@jit
def _store(acc, act, slope, dst):
    if act:
        for x in range(acc.shape[0]):
            v = acc[x]
            dst[x] = v if v >= np.float32(0.0) else v * slope
    else:
        for x in range(acc.shape[0]):
            dst[x] = acc[x]
