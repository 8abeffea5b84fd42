// The page: pick an image and a model, upscale on this device (upscaler.js), compare before/after at 1:1, download.
// Models come from models/index.json and models/<name>.json (written by `tinysr web`), or from a model file the
// user opens; the index's families ("auto", "auto-5k") pick a model per file, as `tinysr upscale --model auto`
// does (auto.js). Status for people and for tests: #status (data-state idle | working | done | error), #error.
import { IDENTITY, checkedRecord, chooseModel, inspectBytes } from "./auto.js";
import { decodeFile, encodePng, imageSize } from "./image_io.js";
import { PROGRAM_OPS } from "./engine.js";
import { WorkerPool, sizeError, upscaleImage } from "./upscaler.js";

const $ = (id) => document.getElementById(id);
const MODEL_FORMAT = "tinysr-web-model";
const MODEL_VERSION = 1;

const state = {
  models: new Map(), families: new Map(), file: null, image: null, result: null, scale: 1, view: { x: 0, y: 0 },
  pool: new WorkerPool({ engine: new URLSearchParams(location.search).get("engine") }), // ?engine=js: no wasm
  queue: Promise.resolve(), generation: 0, lastRun: null,
};
window.tinysr = state; // for tests and benchmarks: the last run's timing sits in state.lastRun

// ------------------------------------------------------------------------------------------------ status

function setStatus(text, kind = "idle") {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  setStatus("Something went wrong; choose another image or model.", "error");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// ------------------------------------------------------------------------------------------------ models

/** The reason a model JSON cannot run here, or null: its format, version, kind and ops are checked on opening. */
function modelError(json) {
  if (!json || json.format !== MODEL_FORMAT) return `not a tinysr web model (expected "format": "${MODEL_FORMAT}")`;
  if (json.version !== MODEL_VERSION) return `model file version ${json.version}; this page reads ${MODEL_VERSION}`;
  if (![2, 3, 4].includes(json.scale)) return `unsupported scale ${json.scale}`;
  if (json.kind === "luma-anchor") return null;
  if (json.kind !== "program") return `unsupported model kind ${JSON.stringify(json.kind)}`;
  const unknown = json.program.ops.map((op) => op.op).filter((op) => !PROGRAM_OPS.includes(op));
  return unknown.length ? `unsupported ops in the model: ${[...new Set(unknown)].join(", ")}` : null;
}

function addModel(json, label) {
  state.models.set(json.name, json);
  const option = new Option(label, json.name);
  $("model").add(option);
  return option;
}

async function loadBundledModels() {
  const index = await (await fetch("models/index.json")).json();
  for (const entry of index.models) {
    const json = await (await fetch(`models/${entry.file}`)).json();
    const psnr = entry.set5_psnr ? `, Set5 ${entry.set5_psnr.toFixed(2)} dB` : "";
    addModel(json, `${entry.name} (x${entry.scale}, ${entry.params} parameters${psnr})`);
  }
  // a family goes first (the default, as in `tinysr upscale`) when the page has every model it names outright
  for (const family of [...(index.families || [])].reverse()) {
    if (!Object.values(family.models).flat().every((name) => !name || state.models.has(name))) continue;
    state.families.set(family.name, family);
    $("model").add(new Option(`${family.name}: per file, the clean net or the JPEG-aware net of its quality `
      + `(<= ${family.budget.toLocaleString("en")} parameters)`, family.name), 0);
  }
  $("model").selectedIndex = 0;
}

async function openModelFile(file) {
  let json;
  try {
    json = JSON.parse(await file.text());
  } catch {
    throw new Error(`${file.name}: not a tinysr web model (not JSON)`);
  }
  const why = modelError(json);
  if (why) throw new Error(`${file.name}: ${why}`);
  json = { ...json, name: `${json.name} (${file.name})` };
  addModel(json, json.name).selected = true;
}

// ------------------------------------------------------------------------------------------------ running

/** Upscale the chosen file with the chosen model. Runs go one at a time: a request made while one runs waits, and
 *  only the latest request's outcome reaches the status (an older one still running is left to finish unseen). */
function run() {
  const chosen = $("model").value;
  if (!state.file || !(state.models.has(chosen) || state.families.has(chosen))) return Promise.resolve();
  const mine = ++state.generation;
  setStatus("Starting…", "working");
  state.queue = state.queue.then(() => (mine === state.generation ? runOnce(mine) : undefined));
  return state.queue;
}

/** {model or null (x1: the decoded pixels as they are), auto: the family's line or null, record or null} for the
 *  chosen file, whose decoded size is `size` ({w, h}): a record that does not fit it is ignored (auto.js). */
async function pickModel(size) {
  const chosen = $("model").value;
  if (!state.families.has(chosen)) return { model: state.models.get(chosen), auto: null, record: null };
  const family = state.families.get(chosen);
  const info = checkedRecord(inspectBytes(new Uint8Array(await state.file.arrayBuffer())), size.w, size.h, family);
  const pick = chooseModel(family, info, (name) => state.models.has(name));
  return { model: pick.name === IDENTITY ? null : state.models.get(pick.name), auto: `${chosen}: ${pick.line}`,
    record: info.record };
}

/** The top-left width x height of an RGBA image: the original size `tinysr encode` recorded. */
function cropTo({ w, h, rgba }, width, height) {
  if (width > w || height > h) throw new Error(`the file records an original of ${width} x ${height}, larger than `
    + `its upscaled ${w} x ${h}: it was not made by tinysr encode`);
  const out = new Uint8Array(width * height * 4);
  for (let r = 0; r < height; r++) out.set(rgba.subarray(r * w * 4, (r * w + width) * 4), r * width * 4);
  return { w: width, h: height, rgba: out };
}

async function runOnce(mine) {
  const current = () => mine === state.generation;
  clearError();
  $("download").disabled = true;
  const started = performance.now();
  try {
    setStatus("Reading the image…", "working");
    const size = await imageSize(state.file);
    const { model, auto, record } = await pickModel(size);
    const tooBig = model && sizeError(size.w, size.h, model.scale);
    if (tooBig) throw new Error(tooBig);
    state.image = await decodeFile(state.file);
    const decoded = performance.now();
    let result = { w: state.image.w, h: state.image.h, rgba: state.image.rgba };
    if (model) {
      setStatus(`Upscaling ${state.image.w} x ${state.image.h} x${model.scale} with ${model.name}…`, "working");
      await state.pool.load(model);
      const progress = (done, total) => { $("progress").value = done / total; };
      result = await upscaleImage(state.pool, state.image, { scale: model.scale, radius: model.radius, progress });
    }
    if (record) result = cropTo(result, record.width, record.height);
    if (!current()) return;
    state.result = result;
    state.scale = model ? model.scale : 1;
    const name = model ? model.name : IDENTITY;
    const ms = performance.now() - decoded;
    state.lastRun = { model: name, auto, ms, decodeMs: decoded - started, workers: state.pool.size,
      engine: state.pool.engine };
    setStatus(`${auto ? `${auto}. ` : ""}${state.image.w} x ${state.image.h} -> ${state.result.w} x `
      + `${state.result.h} with ${name} in ${(ms / 1000).toFixed(2)} s (${state.pool.engine}, `
      + `${state.pool.size} workers).`, "done");
    $("download").disabled = false;
    showCompare();
  } catch (err) {
    state.pool.terminate(); // a failed run may leave a worker busy; the next run starts fresh ones
    if (current()) showError(err.message || String(err));
  }
}

async function download() {
  const { w, h, rgba } = state.result;
  const blob = await encodePng(w, h, rgba);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${state.file.name.replace(/\.[^.]*$/, "")}-x${state.scale}.png`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// ------------------------------------------------------------------------------------------------ before / after

/** Canvases the size of the view, at one canvas pixel per CSS pixel (1:1 zoom on a DPR-1 screen). */
function showCompare() {
  $("compare").hidden = false;
  const { w, h } = state.result, view = $("view");
  state.view = { x: Math.max(0, (w - view.clientWidth) >> 1), y: Math.max(0, (h - view.clientHeight) >> 1) };
  drawCompare();
}

function drawCompare() {
  const view = $("view"), { w, h, rgba } = state.result;
  const vw = Math.min(view.clientWidth, w), vh = Math.min(view.clientHeight, h);
  const x = Math.min(Math.max(0, state.view.x), w - vw), y = Math.min(Math.max(0, state.view.y), h - vh);
  state.view = { x, y };
  const after = $("after"), before = $("before");
  for (const c of [after, before]) { c.width = vw; c.height = vh; }
  const crop = new ImageData(vw, vh);
  for (let r = 0; r < vh; r++) crop.data.set(rgba.subarray(((y + r) * w + x) * 4, ((y + r) * w + x + vw) * 4), r * vw * 4);
  after.getContext("2d").putImageData(crop, 0, 0);
  const s = state.scale, ctx = before.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(state.image.canvas, x / s, y / s, vw / s, vh / s, 0, 0, vw, vh);
  const split = Math.round(vw * $("split").value / 100);
  before.style.clipPath = `inset(0 ${vw - split}px 0 0)`;
  Object.assign($("divider").style, { left: `${split}px`, height: `${vh}px` });
}

function enablePanning() {
  const view = $("view");
  let last = null;
  view.addEventListener("pointerdown", (e) => { last = [e.clientX, e.clientY]; view.setPointerCapture(e.pointerId); });
  view.addEventListener("pointerup", () => { last = null; });
  view.addEventListener("pointermove", (e) => {
    if (!last || !state.result) return;
    state.view.x -= e.clientX - last[0];
    state.view.y -= e.clientY - last[1];
    last = [e.clientX, e.clientY];
    drawCompare();
  });
}

// ------------------------------------------------------------------------------------------------ wiring

function pickFile(file) {
  if (!file) return;
  state.file = file;
  run();
}

function wire() {
  $("file").addEventListener("change", (e) => pickFile(e.target.files[0]));
  $("model").addEventListener("change", run);
  $("model-file").addEventListener("change", async (e) => {
    if (!e.target.files[0]) return;
    try {
      clearError();
      await openModelFile(e.target.files[0]);
      await run();
    } catch (err) {
      showError(err.message);
    }
  });
  $("download").addEventListener("click", download);
  $("split").addEventListener("input", () => state.result && drawCompare());
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pickFile(e.dataTransfer.files[0]); });
  enablePanning();
}

wire();
loadBundledModels().then(
  () => setStatus("Choose an image to start.", "ready"),
  (err) => showError(location.protocol === "file:"
    ? "this page cannot load its models from file://: serve its folder (tinysr web, or python3 -m http.server) "
      + "and open it over http://"
    : `cannot load the models: ${err.message}`),
);
