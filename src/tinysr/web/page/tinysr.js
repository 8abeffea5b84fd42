// tinysr for web apps: the public API of the page's modules, and the entry point of the npm package (web/, whose
// `npm pack` copies these files byte for byte). The demo page (app.js) is its first client.
// Conventions:
// * an image is an ImageData, or any {width, height, data}: RGBA uint8, row-major, straight (not premultiplied)
//   alpha; results are ImageData (a plain {width, height, data: Uint8ClampedArray} where ImageData does not exist).
//   A canvas's getImageData premultiplies alpha < 255, so read files with readImage for their exact pixels;
// * a model is the JSON `tinysr web --build` writes (tinysr/web/model_file.py); the package bundles every bundled
//   model under models/ beside this file, with models/index.json (menu rows and the `auto` families);
// * the output equals `tinysr.upscale`'s (grey input gets the channels' mean, alpha is MATLAB-bicubic upscaled).
import { IDENTITY, checkedRecord, chooseModel, inspectBytes } from "./auto.js";
import { PROGRAM_OPS } from "./engine.js";
import { decodeFile, encodePng, hasTransparency, imageSize, isGrey } from "./image_io.js";
import { MAX_OUTPUT_PIXELS, WorkerPool, sizeError, upscaleImage } from "./upscaler.js";

export { IDENTITY, MAX_OUTPUT_PIXELS, WorkerPool, sizeError };

export const MODEL_FORMAT = "tinysr-web-model";
export const MODEL_VERSION = 1;

// ------------------------------------------------------------------------------------------------ models

/** The reason a model JSON cannot run here, or null: its format, version, scale, kind and ops. */
export function modelError(json) {
  if (!json || json.format !== MODEL_FORMAT) return `not a tinysr web model (expected "format": "${MODEL_FORMAT}")`;
  if (json.version !== MODEL_VERSION) return `model file version ${json.version}; this page reads ${MODEL_VERSION}`;
  if (![2, 3, 4].includes(json.scale)) return `unsupported scale ${json.scale}`;
  if (json.kind === "luma-anchor") return null;
  if (json.kind !== "program") return `unsupported model kind ${JSON.stringify(json.kind)}`;
  const unknown = json.program.ops.map((op) => op.op).filter((op) => !PROGRAM_OPS.includes(op));
  return unknown.length ? `unsupported ops in the model: ${[...new Set(unknown)].join(", ")}` : null;
}

/** The model in the JSON `text`; throws "SOURCE: why" for anything else. */
export function parseModel(text, source) {
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${source}: not a tinysr web model (not JSON)`);
  }
  const why = modelError(json);
  if (why) throw new Error(`${source}: ${why}`);
  return json;
}

async function fetchText(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`${url}: cannot fetch the ${what} (${err.message})`);
  }
  if (!response.ok) throw new Error(`${url}: cannot fetch the ${what} (HTTP ${response.status})`);
  return response.text();
}

/** The model JSON at `url` (a URL or string), checked (parseModel). */
export async function loadModel(url) {
  return parseModel(await fetchText(url, "model"), String(url));
}

/** The URL of a bundled model's JSON (models/NAME.json beside this module). */
export function bundledModelUrl(name) {
  return new URL(`./models/${encodeURIComponent(name)}.json`, import.meta.url);
}

/** models/index.json: {models: [{name, file, scale, params, set5_psnr}], families: [{name, budget, models, bands}]}. */
export async function loadIndex(url = new URL("./models/index.json", import.meta.url)) {
  return JSON.parse(await fetchText(url, "model index"));
}

// ------------------------------------------------------------------------------------------------ images

/** ImageData where the platform has it, else a plain {width, height, data}. */
function imageData(data, width, height) {
  return typeof ImageData === "function" ? new ImageData(data, width, height) : { width, height, data };
}

/** A File's exact pixels as ImageData (EXIF orientation applied, straight alpha); rejects with a readable error for
 *  a file the browser cannot decode. */
export async function readImage(file) {
  let decoded;
  try {
    decoded = await decodeFile(file);
  } catch {
    throw new Error(`${file.name || "the file"} is not an image this browser can decode (PNG, JPEG or WebP)`);
  }
  const { w, h, rgba } = decoded;
  return imageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), w, h);
}

/** A File's {width, height} from its header (EXIF orientation applied), before its pixels are decoded. */
export async function readSize(file) {
  const { w, h } = await imageSize(file);
  return { width: w, height: h };
}

/** The top-left record.width x record.height of an upscaled image: the original size `tinysr encode` recorded. */
export function cropToRecord(image, record) {
  const { width: w, height: h, data } = image, { width, height } = record;
  if (width > w || height > h) throw new Error(`the file records an original of ${width} x ${height}, larger than `
    + `its upscaled ${w} x ${h}: it was not made by tinysr encode`);
  const out = new Uint8ClampedArray(width * height * 4);
  for (let r = 0; r < height; r++) out.set(data.subarray(r * w * 4, (r * w + width) * 4), r * width * 4);
  return imageData(out, width, height);
}

/** A PNG Blob of an image's exact pixels. */
export function toPng(image) {
  return encodePng(image.width, image.height, image.data);
}

// ------------------------------------------------------------------------------------------------ upscaling

/** `image` upscaled by `model` on Web Workers, tiled (tiles equal an untiled run); resolves to ImageData at
 *  model.scale. workers: how many (default: the cores, at most 8), or a WorkerPool to reuse across calls (one call at
 *  a time; it keeps the last model's workers, and a failed call ends them). engine: "js" runs the plain JavaScript
 *  engine only (a new pool's choice; default: the WebAssembly kernels for the Y-only nets where the browser runs
 *  them). progress(done, total) after each tile. */
export async function upscale(image, model, { workers, engine = null, progress } = {}) {
  const why = modelError(model);
  if (why) throw new Error(`${model && model.name || "model"}: ${why}`);
  const { width: w, height: h, data } = image;
  if (!Number.isInteger(w) || !Number.isInteger(h) || !data || data.length !== w * h * 4) {
    throw new Error("the image must be ImageData or {width, height, data} with width x height RGBA bytes");
  }
  const tooBig = sizeError(w, h, model.scale);
  if (tooBig) throw new Error(tooBig);
  const pool = workers instanceof WorkerPool ? workers : new WorkerPool(poolOptions(workers, engine));
  const rgba = new Uint8Array(data.buffer, data.byteOffset, data.length);
  try {
    await pool.load(model);
    const out = await upscaleImage(pool, { w, h, rgba, grey: isGrey(rgba), alpha: hasTransparency(rgba) },
      { scale: model.scale, radius: model.radius, progress });
    return imageData(out.rgba, out.w, out.h);
  } catch (err) {
    pool.terminate(); // a worker may still be busy; the next call starts fresh ones
    throw err;
  } finally {
    if (pool !== workers) pool.terminate();
  }
}

function poolOptions(workers, engine) {
  if (workers === undefined) return { engine };
  if (!Number.isInteger(workers) || workers < 1) {
    throw new Error(`workers: expected a count of 1 or more, or a WorkerPool (got ${workers})`);
  }
  return { size: workers, engine };
}

// ------------------------------------------------------------------------------------------------ auto

/** What `tinysr upscale --model FAMILY` picks for `file` (a File or Blob of a PNG, JPEG or WebP), read from its
 *  bytes (JPEG quality, WebP lossiness, `tinysr encode`'s record): {name: a model name, or IDENTITY when the record
 *  says x1 (nothing to upscale), scale, line (what the file is -> the model, and why a record was ignored), record:
 *  {scale, width, height} or null (crop the upscaled image to it with cropToRecord)}.
 *  family: a family of models/index.json, or its name in the bundled index ("auto", "auto-5k"). size: the decoded
 *  {width, height} (default: readSize). has(name): whether the app can load that model (default: all of them). */
export async function autoChoice(file, family = "auto", { size, has = () => true } = {}) {
  const chosen = typeof family === "string" ? await bundledFamily(family) : family;
  const { width, height } = size || await readSize(file);
  const info = checkedRecord(inspectBytes(new Uint8Array(await file.arrayBuffer())), width, height, chosen);
  return { ...chooseModel(chosen, info, has), record: info.record };
}

async function bundledFamily(name) {
  const { families } = await loadIndex();
  const family = families.find((f) => f.name === name);
  if (!family) throw new Error(`no family ${JSON.stringify(name)} (the bundled ones: `
    + `${families.map((f) => f.name).join(", ")})`);
  return family;
}
