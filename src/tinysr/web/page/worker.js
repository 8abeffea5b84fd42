// A Web Worker running tiles: one model, then windows in and core outputs out (see engine.js for the layouts).
// A luma-anchor model runs on the WebAssembly kernels (wasm_engine.js) where this browser runs them; other models,
// and every model where it does not, on the JS engine (engine.js).
// Messages in:  {type: "model", model: <model JSON>, engine: "js" | null ("js": the JS engine for every model)}
//               {type: "tile", id, rgba: ArrayBuffer (w x h RGBA uint8), w, h, core: [y0, y1, x0, x1], grey, alpha}
// Messages out: {type: "ready", engine: "wasm" | "js"} | {type: "tile", id, out: ArrayBuffer (core at scale x, RGBA
//               uint8)} | {type: "error", id, message}
import { prepareModel, runWindow } from "./engine.js";
import { loadKernels, placeModel, runWindowWasm } from "./wasm_engine.js";

let run = null;
let kernels; // undefined until the first model: kernels.wasm's exports, or null without WebAssembly SIMD

/** The window runner for a prepared model: the WebAssembly kernels where they apply, else the JS engine. */
async function runner(model, want) {
  if (want !== "js" && kernels === undefined) kernels = await loadKernels();
  if (want !== "js" && kernels && model.kind === "luma-anchor") {
    const placed = placeModel(kernels, model);
    return { engine: "wasm", run: (...args) => runWindowWasm(kernels, placed, model, ...args) };
  }
  return { engine: "js", run: (...args) => runWindow(model, ...args) };
}

self.onmessage = async ({ data }) => {
  try {
    if (data.type === "model") {
      const chosen = await runner(prepareModel(data.model), data.engine);
      run = chosen.run;
      self.postMessage({ type: "ready", engine: chosen.engine });
      return;
    }
    const rgba = new Uint8Array(data.rgba);
    const out = run(rgba, data.w, data.h, data.core, { grey: data.grey, alpha: data.alpha });
    self.postMessage({ type: "tile", id: data.id, out: out.buffer }, [out.buffer]);
  } catch (err) {
    self.postMessage({ type: "error", id: data.id, message: String(err && err.message || err) });
  }
};
