// The page's WebAssembly kernels for the Y-only bicubic-anchored nets ("luma-anchor"): a port of
// tinysr/infer/_fused_kernel.py in float32 with the same arithmetic order (no FMA, no reassociation), four lanes
// at a time (v128). Built by `npm run build` in this folder into src/tinysr/web/page/kernels.wasm.
//
// No allocator: every buffer is an offset into linear memory that the caller (page/wasm_engine.js) lays out above
// heapBase(). Layouts (as engine.js):
// * rgba: a window, RGBA uint8, row-major, 4 bytes per pixel;
// * planes: float32, channel-major (C, h + 2 pad, w + 2 pad), a zero border of `pad` pixels ("same" convs);
// * reads may run up to 16 bytes past a plane's end: the caller leaves slack after each buffer.

/** Where the caller's buffers may start. */
export function heapBase(): usize {
  return __heap_base;
}

// ------------------------------------------------------------------------------------------------ convs at LR

/** Luma of the window into the interior of a 1-channel plane padded by `pad`: (c . rgb + offset) / 255, in
 *  float32 and in `_fused_kernel.luma`'s order. */
export function luma(rgba: usize, w: i32, h: i32, c0: f32, c1: f32, c2: f32, offset: f32, out: usize,
  pad: i32): void {
  const stride = w + 2 * pad;
  for (let y = 0; y < h; y++) {
    let src = rgba + <usize>(y * w * 4);
    let dst = out + (<usize>((y + pad) * stride + pad) << 2);
    for (let x = 0; x < w; x++) {
      const v = c0 * <f32>load<u8>(src) + c1 * <f32>load<u8>(src, 1) + c2 * <f32>load<u8>(src, 2);
      store<f32>(dst, (v + offset) / <f32>255.0);
      src += 4;
      dst += 4;
    }
  }
}

/** One conv, stride 1, 'same' size, as `_fused_kernel.conv`: inp (nIn planes padded by k >> 1), weight
 *  (nOut, nIn, k, k) float32, bias (nOut,); out: nOut planes of h x w padded by outPad (its border untouched),
 *  ReLU'd if relu. acc: a scratch row of w + 4 float32. Per output row and channel the accumulator row takes each
 *  input channel's taps: a 3x3 kernel in one pass, acc += (w00 r0[x] + ... + w22 r2[x + 2]), other sizes one pass
 *  per tap. */
export function conv(inp: usize, nIn: i32, k: i32, weight: usize, bias: usize, nOut: i32, relu: bool, h: i32,
  w: i32, out: usize, outPad: i32, acc: usize): void {
  const pad = k >> 1;
  const inStride = <usize>(w + 2 * pad) << 2, inPlane = inStride * <usize>(h + 2 * pad);
  const outStride = <usize>(w + 2 * outPad) << 2, outPlane = outStride * <usize>(h + 2 * outPad);
  for (let y = 0; y < h; y++) {
    for (let o = 0; o < nOut; o++) {
      const b = f32x4.splat(load<f32>(bias + (<usize>o << 2)));
      for (let x = 0; x < w; x += 4) v128.store(acc + (<usize>x << 2), b);
      for (let c = 0; c < nIn; c++) {
        const row = inp + <usize>c * inPlane + <usize>y * inStride;
        const wk = weight + (<usize>((o * nIn + c) * k * k) << 2);
        if (k == 3) addTaps3(acc, row, inStride, wk, w);
        else addTaps(acc, row, inStride, wk, k, w);
      }
      storeRow(acc, out + <usize>o * outPlane + <usize>(y + outPad) * outStride + (<usize>outPad << 2), relu, w);
    }
  }
}

// @ts-ignore: decorator
@inline
function addTaps3(acc: usize, r0: usize, stride: usize, wk: usize, w: i32): void {
  const w00 = v128.load32_splat(wk), w01 = v128.load32_splat(wk, 4), w02 = v128.load32_splat(wk, 8);
  const w10 = v128.load32_splat(wk, 12), w11 = v128.load32_splat(wk, 16), w12 = v128.load32_splat(wk, 20);
  const w20 = v128.load32_splat(wk, 24), w21 = v128.load32_splat(wk, 28), w22 = v128.load32_splat(wk, 32);
  const r1 = r0 + stride, r2 = r1 + stride;
  for (let x: usize = 0, end = <usize>w << 2; x < end; x += 16) {
    let t = f32x4.mul(w00, v128.load(r0 + x));
    t = f32x4.add(t, f32x4.mul(w01, v128.load(r0 + x, 4)));
    t = f32x4.add(t, f32x4.mul(w02, v128.load(r0 + x, 8)));
    t = f32x4.add(t, f32x4.mul(w10, v128.load(r1 + x)));
    t = f32x4.add(t, f32x4.mul(w11, v128.load(r1 + x, 4)));
    t = f32x4.add(t, f32x4.mul(w12, v128.load(r1 + x, 8)));
    t = f32x4.add(t, f32x4.mul(w20, v128.load(r2 + x)));
    t = f32x4.add(t, f32x4.mul(w21, v128.load(r2 + x, 4)));
    t = f32x4.add(t, f32x4.mul(w22, v128.load(r2 + x, 8)));
    v128.store(acc + x, f32x4.add(v128.load(acc + x), t));
  }
}

function addTaps(acc: usize, row: usize, stride: usize, wk: usize, k: i32, w: i32): void {
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) {
      const t = v128.load32_splat(wk + (<usize>(ky * k + kx) << 2));
      const src = row + <usize>ky * stride + (<usize>kx << 2);
      for (let x: usize = 0, end = <usize>w << 2; x < end; x += 16) {
        v128.store(acc + x, f32x4.add(v128.load(acc + x), f32x4.mul(t, v128.load(src + x))));
      }
    }
  }
}

/** dst[0..w) = acc (ReLU'd if relu): whole vectors, then the last 1..3 values one at a time, so that the border
 *  of the output plane stays zero. */
// @ts-ignore: decorator
@inline
function storeRow(acc: usize, dst: usize, relu: bool, w: i32): void {
  const zero = f32x4.splat(0);
  const whole = <usize>(w & ~3) << 2;
  for (let x: usize = 0; x < whole; x += 16) {
    const v = v128.load(acc + x);
    v128.store(dst + x, relu ? f32x4.max(v, zero) : v);
  }
  for (let x = whole, end = <usize>w << 2; x < end; x += 4) {
    const v = load<f32>(acc + x);
    store<f32>(dst + x, relu ? max(v, <f32>0) : v);
  }
}

// ------------------------------------------------------------------------------------------------ the HR stage

/** MATLAB's half-sample symmetric index for -2 <= j <= n + 1, n >= 2. */
// @ts-ignore: decorator
@inline
function mirror(j: i32, n: i32): i32 {
  return j < 0 ? -j - 1 : j >= n ? 2 * n - 1 - j : j;
}

/** The horizontal bicubic pass of window row `row` over the core's columns cx0..cx0 + coreW, as
 *  `_fused_kernel.horizontal`: out (3, s, coreW4) float32, out[c][q][j] for output column j * s + q.
 *  padded: scratch (3, w + 4) float32, the row's channels with MATLAB's mirror, 2 pixels each side. */
function horizontal(rgba: usize, w: i32, row: i32, s: i32, offsets: usize, taps: usize, cx0: i32, coreW: i32,
  coreW4: i32, padded: usize, out: usize): void {
  const pw = <usize>(w + 4) << 2, base = rgba + <usize>(row * w * 4);
  for (let x = -2; x < w + 2; x++) {
    const src = base + <usize>(mirror(x, w) * 4), dst = padded + (<usize>(x + 2) << 2);
    store<f32>(dst, <f32>load<u8>(src));
    store<f32>(dst + pw, <f32>load<u8>(src, 1));
    store<f32>(dst + 2 * pw, <f32>load<u8>(src, 2));
  }
  for (let c = 0; c < 3; c++) {
    const pc = padded + <usize>c * pw + (<usize>(cx0 + 2) << 2);
    for (let q = 0; q < s; q++) {
      const t0 = v128.load32_splat(taps + (<usize>(q * 4) << 2)), t1 = v128.load32_splat(taps + (<usize>(q * 4 + 1) << 2));
      const t2 = v128.load32_splat(taps + (<usize>(q * 4 + 2) << 2)), t3 = v128.load32_splat(taps + (<usize>(q * 4 + 3) << 2));
      const a0 = pc + (<usize>load<i32>(offsets + (<usize>(q * 4) << 2)) << 2);
      const a1 = pc + (<usize>load<i32>(offsets + (<usize>(q * 4 + 1) << 2)) << 2);
      const a2 = pc + (<usize>load<i32>(offsets + (<usize>(q * 4 + 2) << 2)) << 2);
      const a3 = pc + (<usize>load<i32>(offsets + (<usize>(q * 4 + 3) << 2)) << 2);
      const dst = out + (<usize>((c * s + q) * coreW4) << 2);
      for (let x: usize = 0, end = <usize>coreW << 2; x < end; x += 16) {
        let v = f32x4.mul(t0, v128.load(a0 + x));
        v = f32x4.add(v, f32x4.mul(t1, v128.load(a1 + x)));
        v = f32x4.add(v, f32x4.mul(t2, v128.load(a2 + x)));
        v = f32x4.add(v, f32x4.mul(t3, v128.load(a3 + x)));
        v128.store(dst + x, v);
      }
    }
  }
}

/** The core's output, RGBA uint8 at scale s (alpha 255), as `_fused_kernel.fused`: rint(clip(bicubic(rgb) +
 *  gain[c] * residual)); grey: the mean of the three unclipped values, then clip and rint. core [cy0, cy1) x
 *  [cx0, cx1) in window coordinates; phases: the last conv's (s * s, h, w) planes (no border), phase p * s + q of
 *  LR pixel (y, x) being HR pixel (y * s + p, x * s + q). offsets (s, 4) int32, taps (s, 4) float32, gain (3,).
 *  Scratch: ring 8 x (3, s, coreW4) float32, padded (3, w + 4) float32, row (3, s, coreW4) float32, where coreW4
 *  is coreW rounded up to 4. */
export function anchor(rgba: usize, w: i32, h: i32, cy0: i32, cy1: i32, cx0: i32, cx1: i32, s: i32,
  offsets: usize, taps: usize, gain: usize, phases: usize, grey: bool, ring: usize, padded: usize, row: usize,
  out: usize): void {
  const coreW = cx1 - cx0, coreW4 = (coreW + 3) & ~3, outW = coreW * s;
  const slot = <usize>(3 * s * coreW4) << 2, qRow = <usize>coreW4 << 2, plane = <usize>(h * w) << 2;
  const zero = f32x4.splat(0), top = f32x4.splat(255);
  let done = cy0 - 3; // last LR row whose horizontal pass sits in the ring (slot (r - cy0 + 8) % 8 for row r)
  for (let i = cy0; i < cy1; i++) {
    while (done < i + 2) {
      done++;
      horizontal(rgba, w, mirror(done, h), s, offsets, taps, cx0, coreW, coreW4, padded,
        ring + <usize>((done - cy0 + 8) & 7) * slot);
    }
    for (let p = 0; p < s; p++) {
      const v0 = v128.load32_splat(taps + (<usize>(p * 4) << 2)), v1 = v128.load32_splat(taps + (<usize>(p * 4 + 1) << 2));
      const v2 = v128.load32_splat(taps + (<usize>(p * 4 + 2) << 2)), v3 = v128.load32_splat(taps + (<usize>(p * 4 + 3) << 2));
      const s0 = ring + <usize>((i + load<i32>(offsets + (<usize>(p * 4) << 2)) - cy0 + 8) & 7) * slot;
      const s1 = ring + <usize>((i + load<i32>(offsets + (<usize>(p * 4 + 1) << 2)) - cy0 + 8) & 7) * slot;
      const s2 = ring + <usize>((i + load<i32>(offsets + (<usize>(p * 4 + 2) << 2)) - cy0 + 8) & 7) * slot;
      const s3 = ring + <usize>((i + load<i32>(offsets + (<usize>(p * 4 + 3) << 2)) - cy0 + 8) & 7) * slot;
      for (let c = 0; c < 3; c++) {
        const g = v128.load32_splat(gain + (<usize>c << 2));
        for (let q = 0; q < s; q++) {
          const at = <usize>((c * s + q) * coreW4) << 2;
          const res = phases + <usize>(p * s + q) * plane + (<usize>(i * w + cx0) << 2);
          const dst = row + at;
          for (let x: usize = 0, end = <usize>coreW << 2; x < end; x += 16) {
            let v = f32x4.mul(v0, v128.load(s0 + at + x));
            v = f32x4.add(v, f32x4.mul(v1, v128.load(s1 + at + x)));
            v = f32x4.add(v, f32x4.mul(v2, v128.load(s2 + at + x)));
            v = f32x4.add(v, f32x4.mul(v3, v128.load(s3 + at + x)));
            v = f32x4.add(v, f32x4.mul(g, v128.load(res + x)));
            v128.store(dst + x, grey ? v : f32x4.nearest(f32x4.min(f32x4.max(v, zero), top)));
          }
        }
      }
      if (grey) greyRows(row, s, coreW, coreW4, zero, top);
      interleave(row, s, coreW, coreW4, out + <usize>(((i - cy0) * s + p) * outW * 4));
    }
  }
}

/** Grey input: channel 0 of `row` (3, s, coreW4) = rint(clip((r + g + b) / 3)) of the three channels' values. */
function greyRows(row: usize, s: i32, coreW: i32, coreW4: i32, zero: v128, top: v128): void {
  const third = f32x4.splat(3);
  const chan = <usize>(s * coreW4) << 2;
  for (let x: usize = 0, end = <usize>(s * coreW4) << 2; x < end; x += 16) {
    const sum = f32x4.add(f32x4.add(v128.load(row + x), v128.load(row + chan + x)), v128.load(row + 2 * chan + x));
    const v = f32x4.nearest(f32x4.min(f32x4.max(f32x4.div(sum, third), zero), top));
    v128.store(row + x, v);
    v128.store(row + chan + x, v);
    v128.store(row + 2 * chan + x, v);
  }
}

/** One HR row from row (3, s, coreW4) of whole numbers 0..255 into RGBA uint8 (alpha 255). */
function interleave(row: usize, s: i32, coreW: i32, coreW4: i32, dst: usize): void {
  const chan = <usize>(s * coreW4) << 2;
  for (let q = 0; q < s; q++) {
    const r = row + (<usize>(q * coreW4) << 2);
    let o = dst + <usize>(q * 4);
    for (let x: usize = 0, end = <usize>coreW << 2; x < end; x += 4) {
      const px = <u32>load<f32>(r + x) | (<u32>load<f32>(r + chan + x) << 8) | (<u32>load<f32>(r + 2 * chan + x) << 16)
        | 0xff000000;
      store<u32>(o, px);
      o += <usize>(s * 4);
    }
  }
}
