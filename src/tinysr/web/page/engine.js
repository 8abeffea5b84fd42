// The tinysr nets on one window, in plain JavaScript: a port of tinysr/infer/_fused_kernel.py (the Y-only nets)
// and of the NumPy runtime's ops (tinysr/export/runtime.py, for the RGB nets such as edsr-tiny-x2).
//
// Conventions (as tinysr.upscale):
// * images are RGBA uint8, row-major, 4 bytes per pixel (the canvas ImageData layout); alpha is never seen by a net;
// * feature planes are Float32Array, channel-major (C, H, W), zero "same" padding as torch's convs;
// * colour out = clip(value, 0, 255) rounded half to even (np.rint); a grey image (R = G = B everywhere) gets the
//   mean of the net's three output channels before rounding, as tinysr.upscale does for grey input;
// * alpha out = MATLAB bicubic of alpha (float64 here), clipped and rounded half away from zero (tinysr.resize.to_uint8);
// * the bicubic is MATLAB's imresize for an integer scale as periodic taps (tinysr.resize.phase_taps): output
//   i * s + p = sum_t weight[p][t] * in[mirror(i + offset[p][t])], half-sample-symmetric mirror at the borders.
// A window is the image crop a tile needs (its core plus `radius` LR pixels of context, clamped to the image), so
// every core pixel sees what it would see in a whole-image run: tiled equals untiled.

/** Model JSON (written by tinysr.web.model_file) -> the arrays the kernels use. */
export function prepareModel(json) {
  const taps = {
    offsets: json.taps.offsets,
    weights: json.taps.weights.map((row) => row.map(Math.fround)), // float32, as the fused kernel's taps
    exactWeights: json.taps.weights, // float64, for alpha (imresize's float path)
  };
  if (json.kind === "luma-anchor") {
    const convs = json.convs.map((c) => ({
      shape: c.shape, weight: floats(c.weight), bias: floats(c.bias),
    }));
    return { ...json, taps, convs, luma: json.luma.map(Math.fround), gain: json.gain.map(Math.fround) };
  }
  const tensors = {};
  for (const [name, t] of Object.entries(json.tensors)) tensors[name] = { shape: t.shape, data: floats(t.data) };
  return { ...json, taps, tensors };
}

/** base64 of little-endian float32 -> Float32Array. */
function floats(b64) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

/** MATLAB's half-sample symmetric index for -2 <= j <= n + 1, n >= 2. */
function mirror(j, n) {
  if (j < 0) return -j - 1;
  if (j >= n) return 2 * n - 1 - j;
  return j;
}

/** Round half to even (np.rint) of v already clipped to 0..255. */
function rint(v) {
  const r = Math.round(v); // half up
  return r - v === 0.5 && (r & 1) === 1 ? r - 1 : r;
}

function clip255(v) {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// ------------------------------------------------------------------------------------------------ convs at LR

/** A zeroed (C, h + 2 pad, w + 2 pad) plane set: the conv input with its zero border. */
function padded(channels, h, w, pad) {
  return { data: new Float32Array(channels * (h + 2 * pad) * (w + 2 * pad)), channels, h, w, pad };
}

/** Luma of an RGBA window into the interior of a 1-channel padded plane: (c . rgb + offset) / 255, in float32 as
 *  the fused kernel's `luma`. */
function luma(rgba, w, h, coeffs, offset, plane) {
  const stride = w + 2 * plane.pad;
  const [c0, c1, c2] = coeffs;
  for (let y = 0; y < h; y++) {
    const dst = (y + plane.pad) * stride + plane.pad;
    for (let x = 0, i = y * w * 4; x < w; x++, i += 4) {
      const v = Math.fround(Math.fround(Math.fround(c0 * rgba[i]) + Math.fround(c1 * rgba[i + 1]))
        + Math.fround(c2 * rgba[i + 2]));
      plane.data[dst + x] = Math.fround(v + offset) / 255;
    }
  }
}

/** One conv, stride 1, 'same' size: input `inp` padded by k // 2, weight (O, C, k, k), bias (O,); writes channel
 *  o, row y into `out` (padded by out.pad, or 0), ReLU'd if `relu`. Per output row an accumulator row (float32)
 *  takes each input channel's taps, as the fused kernel's `conv`. */
export function conv(inp, weight, shape, bias, relu, out) {
  const [nOut, nIn, k] = shape;
  const { h, w } = out;
  const inStride = w + 2 * inp.pad;
  const outStride = w + 2 * out.pad;
  const inPlane = inStride * (h + 2 * inp.pad);
  const outPlane = outStride * (h + 2 * out.pad);
  const acc = new Float32Array(w);
  for (let o = 0; o < nOut; o++) {
    for (let y = 0; y < h; y++) {
      acc.fill(bias[o]);
      for (let c = 0; c < nIn; c++) {
        const base = c * inPlane + y * inStride;
        const wk = (o * nIn + c) * k * k;
        if (k === 3) addTaps3(acc, inp.data, base, inStride, weight, wk, w);
        else addTaps(acc, inp.data, base, inStride, weight, wk, k, w);
      }
      const dst = o * outPlane + (y + out.pad) * outStride + out.pad;
      for (let x = 0; x < w; x++) out.data[dst + x] = relu && acc[x] < 0 ? 0 : acc[x];
    }
  }
}

/** acc[x] += the 3x3 taps at rows base, base + stride, base + 2 stride (9 multiply-adds per load and store). */
function addTaps3(acc, src, base, stride, wt, wk, w) {
  const w00 = wt[wk], w01 = wt[wk + 1], w02 = wt[wk + 2];
  const w10 = wt[wk + 3], w11 = wt[wk + 4], w12 = wt[wk + 5];
  const w20 = wt[wk + 6], w21 = wt[wk + 7], w22 = wt[wk + 8];
  const r0 = base, r1 = base + stride, r2 = base + 2 * stride;
  for (let x = 0; x < w; x++) {
    acc[x] += w00 * src[r0 + x] + w01 * src[r0 + x + 1] + w02 * src[r0 + x + 2]
      + w10 * src[r1 + x] + w11 * src[r1 + x + 1] + w12 * src[r1 + x + 2]
      + w20 * src[r2 + x] + w21 * src[r2 + x + 1] + w22 * src[r2 + x + 2];
  }
}

/** acc[x] += the k x k taps, one pass per tap (any odd k). */
function addTaps(acc, src, base, stride, wt, wk, k, w) {
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) {
      const t = wt[wk + ky * k + kx];
      const row = base + ky * stride + kx;
      for (let x = 0; x < w; x++) acc[x] += t * src[row + x];
    }
  }
}

// ------------------------------------------------------------------------------------------------ the HR stage

/** The horizontal bicubic pass of one LR row, channel `ch`, over the core's columns: dst[j * s + q] for core
 *  column j (float32). The row is first copied with MATLAB's mirror, 2 pixels each side, into `padded` (w + 4). */
function horizontal(rgba, w, row, ch, taps, s, cx0, coreW, padded, dst) {
  const base = row * w * 4 + ch;
  for (let x = -2; x < w + 2; x++) padded[x + 2] = rgba[base + 4 * mirror(x, w)];
  for (let q = 0; q < s; q++) {
    const [o0, o1, o2, o3] = taps.offsets[q], [t0, t1, t2, t3] = taps.weights[q];
    for (let j = 0, x = cx0 + 2; j < coreW; j++, x++) {
      dst[j * s + q] = Math.fround(t0 * padded[x + o0]) + Math.fround(t1 * padded[x + o1])
        + Math.fround(t2 * padded[x + o2]) + Math.fround(t3 * padded[x + o3]);
    }
  }
}

/** The horizontal passes of every LR row the core's HR rows reach (core rows - 2 .. + 2, mirrored), per channel:
 *  rows[ch][r] for LR row cy0 - 2 + r. */
function horizontalRows(rgba, w, h, taps, s, core) {
  const [cy0, cy1, cx0, cx1] = core;
  const padded = new Float32Array(w + 4);
  return [0, 1, 2].map((ch) => {
    const list = [];
    for (let r = cy0 - 2; r < cy1 + 2; r++) {
      const dst = new Float32Array((cx1 - cx0) * s);
      horizontal(rgba, w, mirror(r, h), ch, taps, s, cx0, cx1 - cx0, padded, dst);
      list.push(dst);
    }
    return list;
  });
}

/** dst[X] = the vertical bicubic pass of HR row i * s + p from the horizontal rows (index relative to cy0 - 2). */
function vertical(rows, i, p, taps, dst) {
  const [o0, o1, o2, o3] = taps.offsets[p], [t0, t1, t2, t3] = taps.weights[p];
  const a0 = rows[i + 2 + o0], a1 = rows[i + 2 + o1], a2 = rows[i + 2 + o2], a3 = rows[i + 2 + o3];
  for (let X = 0; X < dst.length; X++) {
    dst[X] = Math.fround(t0 * a0[X]) + Math.fround(t1 * a1[X]) + Math.fround(t2 * a2[X]) + Math.fround(t3 * a3[X]);
  }
}

/** RGBA uint8 of the core at scale s: bicubic(rgb) + gain[c] * residual, clipped and rounded (grey: the channels'
 *  mean first); alpha by bicubic, or 255. residualRow(i, p, dst): the residual of HR row i * s + p over the core's
 *  columns (i relative to the core). Row by row: every inner loop runs over contiguous float32 rows. */
function anchorAddRound(rgba, w, h, core, s, taps, gain, residualRow, grey, alpha) {
  const [cy0, cy1, cx0, cx1] = core;
  const outW = (cx1 - cx0) * s, outH = (cy1 - cy0) * s;
  const out = new Uint8ClampedArray(outW * outH * 4);
  const rows = horizontalRows(rgba, w, h, taps, s, core);
  const res = new Float32Array(outW), up = [0, 1, 2].map(() => new Float32Array(outW));
  const value = new Float32Array(3);
  for (let i = 0; i < cy1 - cy0; i++) {
    for (let p = 0; p < s; p++) {
      residualRow(i, p, res);
      for (let c = 0; c < 3; c++) vertical(rows[c], i, p, taps, up[c]);
      const [u0, u1, u2] = up, [g0, g1, g2] = gain;
      for (let X = 0, o = (i * s + p) * outW * 4; X < outW; X++, o += 4) {
        const r = res[X];
        value[0] = u0[X] + Math.fround(g0 * r);
        value[1] = u1[X] + Math.fround(g1 * r);
        value[2] = u2[X] + Math.fround(g2 * r);
        store(out, o, value, grey);
      }
    }
  }
  writeAlpha(out, rgba, w, h, core, s, taps, alpha);
  return out;
}

/** Store three float32 channel values at out[o..o+2], rounded; grey: their mean in all three. */
function store(out, o, value, grey) {
  if (grey) {
    const g = rint(clip255(Math.fround(Math.fround(value[0] + value[1] + value[2]) / 3)));
    out[o] = out[o + 1] = out[o + 2] = g;
    return;
  }
  out[o] = rint(clip255(value[0]));
  out[o + 1] = rint(clip255(value[1]));
  out[o + 2] = rint(clip255(value[2]));
}

/** The 4th channel of the core's output: MATLAB bicubic of alpha in float64, rounded half away from zero; 255 for
 *  an opaque image. */
export function writeAlpha(out, rgba, w, h, core, s, taps, alpha) {
  if (!alpha) {
    for (let o = 3; o < out.length; o += 4) out[o] = 255;
    return;
  }
  const [cy0, cy1, cx0, cx1] = core;
  const outW = (cx1 - cx0) * s;
  const exact = { offsets: taps.offsets, weights: taps.exactWeights };
  const rows = [];
  for (let r = cy0 - 2; r < cy1 + 2; r++) {
    const dst = new Float64Array(outW);
    horizontalExact(rgba, w, mirror(r, h), exact, s, cx0, cx1 - cx0, dst);
    rows.push(dst);
  }
  for (let Y = 0; Y < (cy1 - cy0) * s; Y++) {
    const i = Math.floor(Y / s), p = Y % s;
    const off = exact.offsets[p], wt = exact.weights[p];
    for (let X = 0; X < outW; X++) {
      let v = 0;
      for (let t = 0; t < off.length; t++) v += wt[t] * rows[i + 2 + off[t]][X];
      out[(Y * outW + X) * 4 + 3] = Math.floor(clip255(v + 0.49999999999999994)); // half away from zero
    }
  }
}

/** `horizontal` on alpha in float64 (no float32 rounding), as imresize's float path. */
function horizontalExact(rgba, w, row, taps, s, cx0, coreW, dst) {
  const base = row * w * 4 + 3;
  for (let j = 0; j < coreW; j++) {
    for (let q = 0; q < s; q++) {
      const off = taps.offsets[q], wt = taps.weights[q];
      let v = 0;
      for (let t = 0; t < off.length; t++) v += wt[t] * rgba[base + 4 * mirror(cx0 + j + off[t], w)];
      dst[j * s + q] = v;
    }
  }
}

// ------------------------------------------------------------------------------------------------ the two nets

/** A Y-only bicubic-anchored net ("luma-anchor"): luma -> convs at LR -> residual phases -> anchorAddRound. */
function runLumaAnchor(model, rgba, w, h, core, grey, alpha) {
  const s = model.scale;
  let plane = padded(1, h, w, model.convs[0].shape[2] >> 1);
  luma(rgba, w, h, model.luma, model.luma_offset, plane);
  model.convs.forEach((c, n) => {
    const last = n === model.convs.length - 1;
    const nextPad = last ? 0 : model.convs[n + 1].shape[2] >> 1;
    const out = padded(c.shape[0], h, w, nextPad);
    conv(plane, c.weight, c.shape, c.bias, model.relu && !last, out);
    plane = out;
  });
  // phase p * s + q of LR pixel (y, x) is HR pixel (y * s + p, x * s + q) (torch's pixel_shuffle order)
  const phases = plane.data, [cy0, , cx0] = core;
  const residualRow = (i, p, dst) => {
    for (let q = 0; q < s; q++) {
      const src = ((p * s + q) * h + cy0 + i) * w + cx0;
      for (let j = q, k = 0; j < dst.length; j += s, k++) dst[j] = phases[src + k];
    }
  };
  return anchorAddRound(rgba, w, h, core, s, model.taps, model.gain, residualRow, grey, alpha);
}

/** An RGB net given as a program of ops (the NumPy export's, tinysr/export/numpy_export.py). */
function runProgram(model, rgba, w, h, core, grey, alpha) {
  const env = { [model.program.input]: rgbPlanes(rgba, w, h) };
  for (const op of model.program.ops) env[op.out] = OPS[op.op](op, op.in.map((n) => env[n]), model.tensors);
  const sr = env[model.program.output];
  const s = model.scale, [cy0, cy1, cx0, cx1] = core;
  const outW = (cx1 - cx0) * s, outH = (cy1 - cy0) * s, plane = sr.h * sr.w;
  const out = new Uint8ClampedArray(outW * outH * 4);
  const value = new Float32Array(3);
  for (let Y = 0; Y < outH; Y++) {
    for (let X = 0; X < outW; X++) {
      const src = (cy0 * s + Y) * sr.w + cx0 * s + X;
      for (let c = 0; c < 3; c++) value[c] = sr.data[c * plane + src];
      store(out, (Y * outW + X) * 4, value, grey);
    }
  }
  writeAlpha(out, rgba, w, h, core, s, model.taps, alpha);
  return out;
}

/** RGBA uint8 -> (3, h, w) float32 planes 0..255. */
function rgbPlanes(rgba, w, h) {
  const t = { c: 3, h, w, data: new Float32Array(3 * h * w) };
  for (let i = 0, n = h * w; i < n; i++) {
    for (let c = 0; c < 3; c++) t.data[c * n + i] = rgba[4 * i + c];
  }
  return t;
}

function like(t, c = t.c, h = t.h, w = t.w) {
  return { c, h, w, data: new Float32Array(c * h * w) };
}

/** The ops an RGB program may use, each (op, inputs, tensors) -> tensor {c, h, w, data}. */
const OPS = {
  conv2d(op, [x], tensors) {
    const weight = tensors[op.weight], pad = op.padding;
    const inp = padded(x.c, x.h, x.w, pad);
    const stride = x.w + 2 * pad;
    for (let c = 0; c < x.c; c++) {
      for (let y = 0; y < x.h; y++) {
        const dst = c * stride * (x.h + 2 * pad) + (y + pad) * stride + pad;
        inp.data.set(x.data.subarray((c * x.h + y) * x.w, (c * x.h + y + 1) * x.w), dst);
      }
    }
    const out = padded(weight.shape[0], x.h, x.w, 0);
    conv(inp, weight.data, weight.shape, tensors[op.bias].data, false, out);
    return { c: weight.shape[0], h: x.h, w: x.w, data: out.data };
  },
  relu(op, [x]) {
    const y = like(x);
    for (let i = 0; i < x.data.length; i++) y.data[i] = x.data[i] < 0 ? 0 : x.data[i];
    return y;
  },
  leaky_relu(op, [x]) {
    const y = like(x), slope = Math.fround(op.slope);
    for (let i = 0; i < x.data.length; i++) y.data[i] = x.data[i] < 0 ? slope * x.data[i] : x.data[i];
    return y;
  },
  prelu(op, [x], tensors) {
    const y = like(x), slopes = tensors[op.weight].data, n = x.h * x.w;
    for (let i = 0; i < x.data.length; i++) {
      y.data[i] = x.data[i] < 0 ? slopes[Math.floor(i / n)] * x.data[i] : x.data[i];
    }
    return y;
  },
  repeat_channels(op, [x]) {
    // channel o of the output is channel floor(o / repeats) of the input (numpy.repeat on axis 0: a compact
    // net's nearest anchor, before its pixel shuffle)
    const r = op.repeats, n = x.h * x.w, y = like(x, x.c * r);
    for (let o = 0; o < x.c * r; o++) y.data.set(x.data.subarray(Math.floor(o / r) * n, (Math.floor(o / r) + 1) * n), o * n);
    return y;
  },
  scale(op, [x]) {
    const y = like(x), f = Math.fround(op.factor);
    for (let i = 0; i < x.data.length; i++) y.data[i] = x.data[i] * f;
    return y;
  },
  add(op, [a, b]) {
    const y = like(a);
    for (let i = 0; i < a.data.length; i++) y.data[i] = a.data[i] + b.data[i];
    return y;
  },
  channel_shift(op, [x], tensors) {
    const y = like(x), value = tensors[op.value].data, n = x.h * x.w;
    for (let i = 0; i < x.data.length; i++) y.data[i] = x.data[i] + op.sign * value[Math.floor(i / n)];
    return y;
  },
  pixel_shuffle(op, [x]) {
    const f = op.factor, c = x.c / (f * f), y = like(x, c, x.h * f, x.w * f);
    for (let o = 0; o < c; o++) {
      for (let p = 0; p < f; p++) {
        for (let q = 0; q < f; q++) {
          const src = ((o * f + p) * f + q) * x.h * x.w;
          for (let i = 0; i < x.h; i++) {
            for (let j = 0; j < x.w; j++) {
              y.data[(o * y.h + i * f + p) * y.w + j * f + q] = x.data[src + i * x.w + j];
            }
          }
        }
      }
    }
    return y;
  },
};

/** The op names an RGB program may use (a model file with another op is refused when it is opened). */
export const PROGRAM_OPS = Object.keys(OPS);

/** Run a prepared model on one window: rgba (w x h RGBA uint8), core [y0, y1, x0, x1] in window coordinates;
 *  returns the core's output, RGBA uint8 at scale x. */
export function runWindow(model, rgba, w, h, core, { grey, alpha }) {
  const run = model.kind === "luma-anchor" ? runLumaAnchor : runProgram;
  return run(model, rgba, w, h, core, grey, alpha);
}
