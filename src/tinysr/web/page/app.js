// The page: pick an image and a model, upscale on this device (upscaler.js), compare before/after at 1:1, download.
// Models come from models/index.json and models/<name>.json (written by `tinysr web`), or from a model file the
// user opens; the index's families ("auto", "auto-5k") pick a model per file, as `tinysr upscale --model auto`
// does (auto.js). Status for people and for tests: #status (data-state idle | working | done | error), #error.
// The page is the first client of tinysr.js, the public API that the npm package (web/) exports.
import {
  IDENTITY, WorkerPool, autoChoice, bundledModelUrl, cropToRecord, loadIndex, loadModel, parseModel, readImage,
  readSize, sizeError, toPng, upscale,
} from "./tinysr.js";

const $ = (id) => document.getElementById(id);

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

function addModel(json, label) {
  state.models.set(json.name, json);
  const option = new Option(label, json.name);
  $("model").add(option);
  return option;
}

async function loadBundledModels() {
  const index = await loadIndex();
  for (const entry of index.models) {
    const json = await loadModel(bundledModelUrl(entry.name));
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
  let json = parseModel(await file.text(), file.name);
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
 *  chosen file, whose decoded size is `size` ({width, height}): a record that does not fit it is ignored. */
async function pickModel(size) {
  const chosen = $("model").value;
  if (!state.families.has(chosen)) return { model: state.models.get(chosen), auto: null, record: null };
  const has = (name) => state.models.has(name);
  const pick = await autoChoice(state.file, state.families.get(chosen), { size, has });
  return { model: pick.name === IDENTITY ? null : state.models.get(pick.name), auto: `${chosen}: ${pick.line}`,
    record: pick.record };
}

async function runOnce(mine) {
  const current = () => mine === state.generation;
  clearError();
  $("download").disabled = true;
  const started = performance.now();
  try {
    setStatus("Reading the image…", "working");
    const size = await readSize(state.file);
    const { model, auto, record } = await pickModel(size);
    const tooBig = model && sizeError(size.width, size.height, model.scale);
    if (tooBig) throw new Error(tooBig);
    const image = await readImage(state.file);
    const canvas = canvasOf(image);
    const decoded = performance.now();
    let result = image;
    if (model) {
      setStatus(`Upscaling ${image.width} x ${image.height} x${model.scale} with ${model.name}…`, "working");
      const progress = (done, total) => { $("progress").value = done / total; };
      result = await upscale(image, model, { workers: state.pool, progress });
    }
    if (record) result = cropToRecord(result, record);
    if (!current()) return;
    state.image = { imageData: image, canvas };
    state.result = result;
    state.scale = model ? model.scale : 1;
    const name = model ? model.name : IDENTITY;
    const ms = performance.now() - decoded;
    state.lastRun = { model: name, auto, ms, decodeMs: decoded - started, workers: state.pool.size,
      engine: state.pool.engine };
    setStatus(`${auto ? `${auto}. ` : ""}${image.width} x ${image.height} -> ${result.width} x `
      + `${result.height} with ${name} in ${(ms / 1000).toFixed(2)} s (${state.pool.engine}, `
      + `${state.pool.size} workers).`, "done");
    $("download").disabled = false;
    showCompare();
  } catch (err) {
    state.pool.terminate(); // a failed run may leave a worker busy; the next run starts fresh ones
    if (current()) showError(err.message || String(err));
  }
}

async function download() {
  const blob = await toPng(state.result);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${state.file.name.replace(/\.[^.]*$/, "")}-x${state.scale}.png`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// ------------------------------------------------------------------------------------------------ before / after

/** The image on a canvas: the "before" view's source, scaled by the browser. */
function canvasOf(image) {
  const canvas = new OffscreenCanvas(image.width, image.height);
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}

/** Canvases the size of the view, at one canvas pixel per CSS pixel (1:1 zoom on a DPR-1 screen). */
function showCompare() {
  $("compare").hidden = false;
  const { width: w, height: h } = state.result, view = $("view");
  state.view = { x: Math.max(0, (w - view.clientWidth) >> 1), y: Math.max(0, (h - view.clientHeight) >> 1) };
  drawCompare();
}

function drawCompare() {
  const view = $("view"), { width: w, height: h, data: rgba } = state.result;
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
