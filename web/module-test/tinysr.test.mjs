// The package's public API (src/tinysr/web/page/tinysr.js, the entry of `npm pack`'s tarball), its pure parts under
// Node.js: model checks, arguments refused before any Worker starts, cropping to a record, tiling, and the `auto`
// choice from a File against Python's answers (../test/contracts.json, written by tools/web_contracts.py).
// TINYSR_MODULE names another copy of the entry (tests/test_web_module.py runs these tests on the packed tarball's).
// Run: `npm test` in web/, or `node --test web/module-test` from the repository root.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";

const entry = process.env.TINYSR_MODULE ? pathToFileURL(process.env.TINYSR_MODULE)
  : new URL("../../src/tinysr/web/page/tinysr.js", import.meta.url);
const api = await import(entry);
const { tileGrid } = await import(new URL("./upscaler.js", entry));
const contracts = JSON.parse(readFileSync(new URL("../test/contracts.json", import.meta.url), "utf8"));

/** The smallest model JSON the checks accept: a one-conv Y-only net's header (no weights are read here). */
const lumaModel = { format: "tinysr-web-model", version: 1, name: "m", scale: 2, radius: 1, kind: "luma-anchor" };
const image = (width, height) => ({ width, height, data: new Uint8ClampedArray(width * height * 4) });

describe("model files", () => {
  test("a Y-only net and a program of known ops pass", () => {
    assert.equal(api.modelError(lumaModel), null);
    const program = { ...lumaModel, kind: "program", program: { ops: [{ op: "conv2d" }, { op: "pixel_shuffle" }] } };
    assert.equal(api.modelError(program), null);
  });

  test("each refusal names what is wrong, and parseModel puts the source first", () => {
    const cases = [
      [{ format: "other" }, 'not a tinysr web model (expected "format": "tinysr-web-model")'],
      [{ ...lumaModel, version: 7 }, "model file version 7; this page reads 1"],
      [{ ...lumaModel, scale: 8 }, "unsupported scale 8"],
      [{ ...lumaModel, kind: "onnx" }, 'unsupported model kind "onnx"'],
      [{ ...lumaModel, kind: "program", program: { ops: [{ op: "gelu" }, { op: "relu" }, { op: "gelu" }] } },
        "unsupported ops in the model: gelu"],
    ];
    for (const [json, why] of cases) {
      assert.equal(api.modelError(json), why);
      assert.throws(() => api.parseModel(JSON.stringify(json), "m.json"), { message: `m.json: ${why}` });
    }
    const notJson = "m.json: not a tinysr web model (not JSON)";
    assert.throws(() => api.parseModel("{not json", "m.json"), { message: notJson });
    assert.deepEqual(api.parseModel(JSON.stringify(lumaModel), "m.json"), lumaModel);
  });

  test("a bundled model's URL sits under models/ beside the entry", () => {
    assert.equal(api.bundledModelUrl("tiny-1k-x2").href, new URL("./models/tiny-1k-x2.json", entry).href);
  });
});

describe("upscale refuses bad arguments before starting a worker", () => {
  const refuses = (args, message) => assert.rejects(() => api.upscale(...args), { message });

  test("a model that is not one", () =>
    refuses([image(4, 4), { ...lumaModel, scale: 5 }], "m: unsupported scale 5"));
  test("an image whose data is not width x height RGBA", () =>
    refuses([{ width: 4, height: 4, data: new Uint8ClampedArray(4 * 4 * 3) }, lumaModel],
      "the image must be ImageData or {width, height, data} with width x height RGBA bytes"));
  test("an image too small for bicubic's mirror", () =>
    refuses([image(1, 5), lumaModel], "the image is 1 x 5: it needs at least 2 x 2 pixels"));
  test("an output over the budget", () =>
    refuses([image(5001, 5001), lumaModel], "the image is too large: 5001 x 5001 at x2 gives 100.0 MP, over this "
      + "page's budget of 50.0 MP (a 12 MP photo at x2 fits)"));
  test("a worker count that is not one", () => {
    for (const workers of [0, 1.5, "4"]) {
      refuses([image(4, 4), lumaModel, { workers }],
        `workers: expected a count of 1 or more, or a WorkerPool (got ${workers})`);
    }
  });
});

describe("cropToRecord", () => {
  test("keeps the top-left width x height, row by row", () => {
    const data = Uint8ClampedArray.from({ length: 4 * 3 * 4 }, (_, i) => i);
    const out = api.cropToRecord({ width: 4, height: 3, data }, { scale: 2, width: 3, height: 2 });
    assert.deepEqual([out.width, out.height], [3, 2]);
    assert.deepEqual([...out.data], [...data.subarray(0, 12), ...data.subarray(16, 28)]);
  });

  test("refuses a record larger than the image", () => {
    assert.throws(() => api.cropToRecord(image(4, 3), { scale: 2, width: 5, height: 3 }), {
      message: "the file records an original of 5 x 3, larger than its upscaled 4 x 3: it was not made by tinysr "
        + "encode",
    });
  });
});

describe("tiles", () => {
  test("cores cover every pixel once; windows add the radius, clamped to the image", () => {
    const [h, w, radius, tile] = [37, 50, 3, 16];
    const tiles = tileGrid(h, w, radius, tile);
    assert.equal(tiles.length, 3 * 4);
    const seen = new Uint8Array(h * w);
    for (const { core: [y0, y1, x0, x1], window } of tiles) {
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) seen[y * w + x] += 1;
      assert.deepEqual(window, [Math.max(y0 - 3, 0), Math.min(y1 + 3, h), Math.max(x0 - 3, 0), Math.min(x1 + 3, w)]);
    }
    assert.ok(seen.every((n) => n === 1));
    assert.deepEqual(tiles.at(-1), { core: [32, 37, 48, 50], window: [29, 37, 45, 50] });
  });
});

describe("autoChoice reads a File as Python reads the same bytes", () => {
  const families = new Map(contracts.families.map((family) => [family.name, family]));
  const file = (name, bytes) => new File([Buffer.from(bytes, "base64")], name);

  test("files without a record: the band net of a JPEG's quality, the lossy net of a lossy WebP, else the clean net",
    async () => {
      const bundled = new Set(contracts.catalogs.bundled), has = (name) => bundled.has(name);
      let checks = 0;
      for (const { family, catalog, scale, lossless, lossy, jpeg } of contracts.choices) {
        if (catalog !== "bundled" || scale !== null) continue;
        for (const { name, bytes, python, case: { size: [width, height] } } of contracts.files) {
          if (python.record || python.ignored) continue;
          const band = jpeg.find(([first, last]) => python.quality >= first && python.quality <= last);
          const want = python.format === "JPEG" ? band[2] : python.lossy ? lossy : lossless;
          const pick = await api.autoChoice(file(name, bytes), families.get(family), { size: { width, height }, has });
          assert.deepEqual([pick.name, pick.scale, pick.record], [want, 2, null], `${family}: ${name}`);
          checks += 1;
        }
      }
      assert.ok(checks >= 18, `${checks} checks`); // 2 families x (at least 6 JPEGs, 2 WebPs, a PNG)
    });

  test("records: kept or ignored, with Python's reason, for each decoded size", async () => {
    let checks = 0;
    for (const { name, bytes, decoded } of contracts.files) {
      for (const { size: [width, height], family, record, ignored } of decoded) {
        const pick = await api.autoChoice(file(name, bytes), families.get(family), { size: { width, height } });
        assert.deepEqual(pick.record, record, `${name} at ${width}x${height}`);
        if (ignored) assert.ok(pick.line.endsWith(`, ${ignored} -> ${pick.name}`), `${name}: ${pick.line}`);
        if (record && record.scale === 1) assert.equal(pick.name, api.IDENTITY);
        checks += 1;
      }
    }
    assert.ok(checks >= 20, `${checks} checks`);
  });

  test("has(name) leaves out the nets the app cannot load", async () => {
    const { bytes } = contracts.files.find((f) => f.name === "q10.jpg");
    const has = (name) => !name.includes("jpeg-low");
    const pick = await api.autoChoice(file("q10.jpg", bytes), families.get("auto"), { size: { width: 16, height: 16 },
      has });
    assert.equal(pick.name, "tiny-1k-x2-jpeg");
  });
});
