// Tiled upscaling on a pool of Web Workers (one per core): the image is cut into cores of TILE x TILE LR pixels,
// each sent with `radius` LR pixels of context (the model's receptive radius, clamped to the image) as in
// tinysr/infer/tiling.py, so the result equals an untiled run. Memory: the RGBA input, the RGBA output and one
// window per worker; the page refuses an output over MAX_OUTPUT_PIXELS before decoding.
// Layout: RGBA uint8, row-major (ImageData). The output is a Uint8ClampedArray of (w * s) x (h * s) x 4.

/** LR pixels per tile side: a window of ~270 x 270 keeps a worker's planes near 2 MB (tiny-5k-x2: 12 planes). */
export const TILE = 256;
/** Output pixels the page accepts: a 12 MP photo at x2 (48 MP, 192 MB RGBA) fits; x4 of it does not. */
export const MAX_OUTPUT_PIXELS = 50_000_000;

/** The error for an image the page will not take (null when it fits): too small for bicubic's mirror, or an
 *  output over the tile budget. */
export function sizeError(w, h, scale) {
  if (w < 2 || h < 2) return `the image is ${w} x ${h}: it needs at least 2 x 2 pixels`;
  const out = w * h * scale * scale;
  if (out > MAX_OUTPUT_PIXELS) {
    const mp = (n) => (n / 1e6).toFixed(1);
    return `the image is too large: ${w} x ${h} at x${scale} gives ${mp(out)} MP, over this page's budget of `
      + `${mp(MAX_OUTPUT_PIXELS)} MP (a 12 MP photo at x2 fits)`;
  }
  return null;
}

/** Cores of TILE x TILE (the last row and column smaller) with their windows, as [y0, y1, x0, x1]. */
export function tileGrid(h, w, radius, tile = TILE) {
  const tiles = [];
  for (let y0 = 0; y0 < h; y0 += tile) {
    for (let x0 = 0; x0 < w; x0 += tile) {
      const y1 = Math.min(y0 + tile, h), x1 = Math.min(x0 + tile, w);
      const window = [Math.max(y0 - radius, 0), Math.min(y1 + radius, h), Math.max(x0 - radius, 0),
        Math.min(x1 + radius, w)];
      tiles.push({ core: [y0, y1, x0, x1], window });
    }
  }
  return tiles;
}

/** The window's pixels copied out of the image (RGBA rows). */
function crop(rgba, w, [y0, y1, x0, x1]) {
  const cw = x1 - x0, out = new Uint8Array(cw * (y1 - y0) * 4);
  for (let y = y0; y < y1; y++) out.set(rgba.subarray((y * w + x0) * 4, (y * w + x1) * 4), (y - y0) * cw * 4);
  return out;
}

/** Copy a core's output (RGBA at scale s) into the whole output. */
function paste(out, outW, core, s, tileOut) {
  const [y0, y1, x0, x1] = core, cw = (x1 - x0) * s;
  for (let r = 0; r < (y1 - y0) * s; r++) {
    out.set(tileOut.subarray(r * cw * 4, (r + 1) * cw * 4), ((y0 * s + r) * outW + x0 * s) * 4);
  }
}

/** A pool of workers holding one model. */
export class WorkerPool {
  /** engine: "js" runs every model on the JS engine (the page's ?engine=js, for tests and comparisons); else
   *  the workers pick the WebAssembly kernels where they apply. */
  constructor({ size = Math.min(navigator.hardwareConcurrency || 2, 8), engine = null } = {}) {
    this.size = size;
    this.want = engine;
    this.workers = [];
    this.modelName = null;
    this.engine = null; // "wasm" or "js": what the workers run the model on (their "ready" answer)
  }

  /** Send `model` (its JSON) to every worker, once per model. */
  async load(model) {
    if (this.modelName === model.name) return;
    this.terminate();
    this.workers = Array.from({ length: this.size }, () => new Worker(new URL("./worker.js", import.meta.url),
      { type: "module" }));
    const ready = await Promise.all(this.workers.map((wk) => ask(wk, { type: "model", model, engine: this.want })));
    this.engine = ready[0].engine;
    this.modelName = model.name;
  }

  terminate() {
    this.workers.forEach((wk) => wk.terminate());
    this.workers = [];
    this.modelName = null;
    this.engine = null;
  }
}

/** Post one message to a worker and wait for its answer (a worker runs one job at a time). */
function ask(worker, message, transfer = []) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.type === "error" ? reject(new Error(data.message)) : resolve(data));
    worker.onerror = (e) => reject(new Error(e.message || "worker failed"));
    worker.postMessage(message, transfer);
  });
}

/** Upscale `image` ({w, h, rgba, grey, alpha}) with the pool's model at `scale`, `radius`; progress(done, total)
 *  after each tile. Returns {w, h, rgba} at scale x. */
export async function upscaleImage(pool, image, { scale, radius, progress }) {
  const { w, h, rgba } = image;
  const outW = w * scale, outH = h * scale;
  const out = new Uint8ClampedArray(outW * outH * 4);
  const tiles = tileGrid(h, w, radius);
  let next = 0, done = 0;
  const drain = async (worker) => {
    while (next < tiles.length) {
      const t = tiles[next++];
      const [wy0, wy1, wx0, wx1] = t.window;
      const win = crop(rgba, w, t.window);
      const core = [t.core[0] - wy0, t.core[1] - wy0, t.core[2] - wx0, t.core[3] - wx0];
      const reply = await ask(worker, { type: "tile", id: next, rgba: win.buffer, w: wx1 - wx0, h: wy1 - wy0, core,
        grey: image.grey, alpha: image.alpha }, [win.buffer]);
      paste(out, outW, t.core, scale, new Uint8ClampedArray(reply.out));
      progress?.(++done, tiles.length);
    }
  };
  await Promise.all(pool.workers.map(drain));
  return { w: outW, h: outH, rgba: out };
}
