// The Y-only nets ("luma-anchor") on WebAssembly SIMD: kernels.wasm (built from web/kernels.ts, a float32 port of
// tinysr/infer/_fused_kernel.py in its arithmetic order) runs luma, the convs and the bicubic + residual + rounding
// stage of a window; engine.js stays the fallback (no WebAssembly SIMD, RGB nets) and adds alpha.
// Layouts as engine.js: windows in and core outputs out are RGBA uint8; inside linear memory, feature planes are
// float32 (C, h + 2 pad, w + 2 pad) with a zero border, laid out by `layout` above the kernels' heapBase.
import { writeAlpha } from "./engine.js";

/** kernels.wasm's exports, or null where this browser cannot compile or run it (then the JS engine runs). */
export async function loadKernels() {
  try {
    const bytes = await (await fetch(new URL("./kernels.wasm", import.meta.url))).arrayBuffer();
    const abort = () => { throw new Error("kernels.wasm aborted"); };
    const { instance } = await WebAssembly.instantiate(bytes, { env: { abort } });
    return instance.exports;
  } catch {
    return null;
  }
}

/** Bytes kept free after each buffer: vector reads run up to 16 bytes past a row's last value. */
const SLACK = 64;

/** Offsets of named buffers of the given byte sizes, 16-byte aligned, from `base`; .end is the first free byte. */
function layout(base, sizes) {
  const at = {};
  let next = base;
  for (const [name, bytes] of Object.entries(sizes)) {
    at[name] = next;
    next = (next + bytes + SLACK + 15) & ~15;
  }
  at.end = next;
  return at;
}

/** Grow the kernels' memory to at least `bytes`. */
function reserve(memory, bytes) {
  const missing = bytes - memory.buffer.byteLength;
  if (missing > 0) memory.grow(Math.ceil(missing / 65536));
}

/** The model's constants in linear memory (once per worker): weights, biases, taps, offsets and gain. Returns
 *  {at, end} with each conv's weight and bias offsets. */
export function placeModel(kernels, model) {
  const s = model.scale, sizes = { offsets: 16 * s, taps: 16 * s, gain: 12 };
  model.convs.forEach((c, n) => { sizes[`w${n}`] = c.weight.byteLength; sizes[`b${n}`] = c.bias.byteLength; });
  const at = layout(kernels.heapBase(), sizes);
  reserve(kernels.memory, at.end);
  const buf = kernels.memory.buffer;
  new Int32Array(buf, at.offsets, 4 * s).set(model.taps.offsets.flat());
  new Float32Array(buf, at.taps, 4 * s).set(model.taps.weights.flat());
  new Float32Array(buf, at.gain, 3).set(model.gain);
  model.convs.forEach((c, n) => {
    new Float32Array(buf, at[`w${n}`], c.weight.length).set(c.weight);
    new Float32Array(buf, at[`b${n}`], c.bias.length).set(c.bias);
  });
  return at;
}

/** runWindow for a luma-anchor model on the kernels (`placed`: placeModel's answer): rgba (w x h RGBA uint8),
 *  core [y0, y1, x0, x1] in window coordinates; returns the core's output, RGBA uint8 at scale x. */
export function runWindowWasm(kernels, placed, model, rgba, w, h, core, { grey, alpha }) {
  const s = model.scale, [cy0, cy1, cx0, cx1] = core;
  const coreW4 = (cx1 - cx0 + 3) & ~3, outBytes = (cy1 - cy0) * (cx1 - cx0) * s * s * 4;
  const pads = model.convs.map((c) => c.shape[2] >> 1).concat([0]); // pads[n]: conv n's input border
  const planeBytes = (n) => 4 * (h + 2 * pads[n]) * (w + 2 * pads[n]);
  const widest = Math.max(...model.convs.map((c, n) => c.shape[0] * planeBytes(n + 1)));
  const at = layout(placed.end, {
    rgba: w * h * 4, a: Math.max(widest, planeBytes(0)), b: widest, acc: 4 * (w + 8), ring: 8 * 3 * s * coreW4 * 4,
    padded: 3 * (w + 4) * 4, row: 3 * s * coreW4 * 4, out: outBytes,
  });
  reserve(kernels.memory, at.end);
  const buf = kernels.memory.buffer;
  new Uint8Array(buf, at.rgba, rgba.length).set(rgba);
  new Uint8Array(buf, at.a, planeBytes(0)).fill(0);
  const [l0, l1, l2] = model.luma;
  kernels.luma(at.rgba, w, h, l0, l1, l2, model.luma_offset, at.a, pads[0]);
  let src = at.a, dst = at.b;
  model.convs.forEach((c, n) => {
    const [nOut, nIn, k] = c.shape, last = n === model.convs.length - 1;
    new Uint8Array(buf, dst, nOut * planeBytes(n + 1)).fill(0);
    kernels.conv(src, nIn, k, placed[`w${n}`], placed[`b${n}`], nOut, model.relu && !last, h, w, dst, pads[n + 1],
      at.acc);
    [src, dst] = [dst, src];
  });
  kernels.anchor(at.rgba, w, h, cy0, cy1, cx0, cx1, s, placed.offsets, placed.taps, placed.gain, src, grey ? 1 : 0,
    at.ring, at.padded, at.row, at.out);
  const out = new Uint8ClampedArray(kernels.memory.buffer.slice(at.out, at.out + outBytes));
  if (alpha) writeAlpha(out, rgba, w, h, core, s, model.taps, alpha);
  return out;
}
