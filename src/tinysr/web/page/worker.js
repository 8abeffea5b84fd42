// A Web Worker running tiles: one model, then windows in and core outputs out (see engine.js for the layouts).
// Messages in:  {type: "model", model: <model JSON>}
//               {type: "tile", id, rgba: ArrayBuffer (w x h RGBA uint8), w, h, core: [y0, y1, x0, x1], grey, alpha}
// Messages out: {type: "ready"} | {type: "tile", id, out: ArrayBuffer (core at scale x, RGBA uint8)}
//               | {type: "error", id, message}
import { prepareModel, runWindow } from "./engine.js";

let model = null;

self.onmessage = ({ data }) => {
  try {
    if (data.type === "model") {
      model = prepareModel(data.model);
      self.postMessage({ type: "ready" });
      return;
    }
    const rgba = new Uint8Array(data.rgba);
    const out = runWindow(model, rgba, data.w, data.h, data.core, { grey: data.grey, alpha: data.alpha });
    self.postMessage({ type: "tile", id: data.id, out: out.buffer }, [out.buffer]);
  } catch (err) {
    self.postMessage({ type: "error", id: data.id, message: String(err && err.message || err) });
  }
};
