// The page's "auto" (src/tinysr/web/page/auto.js) against tinysr's Python (tinysr.delivery.auto), on the cases and
// answers that tools/web_contracts.py wrote into contracts.json: JPEG quality estimation, the band table, and what
// is read from a file (format, lossy or not, quality, the `tinysr:` record, checked against the header's size and
// then the decoded pixels' size). Run: `npm test` in web/, or
// `node --test web/test` from the repository root (tests/test_web_contracts.py does, and checks the fixture).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  checkedRecord, chooseModel, estimateQuality, inspectBytes, libjpegTableSum,
} from "../../src/tinysr/web/page/auto.js";

// TINYSR_CONTRACTS names another fixture (tests/test_web_contracts.py feeds one altered answer to see a failure).
const contracts = JSON.parse(readFileSync(process.env.TINYSR_CONTRACTS || new URL("./contracts.json", import.meta.url),
  "utf8"));
const sum = (values) => values.reduce((total, v) => total + v, 0);

/** A JPEG's first segments as auto.js walks them: SOI, one DQT with 8-bit tables 0 (luma) and 1, then SOS. */
function jpegWithTables(luma, chroma) {
  const dqt = [0xff, 0xdb, 0, 2 + 2 * 65, 0x00, ...luma, 0x01, ...chroma];
  return Uint8Array.from([0xff, 0xd8, ...dqt, 0xff, 0xda, 0, 2]);
}

describe("JPEG quality from the luminance table", () => {
  const { tables, sums } = contracts.quality;

  test("libjpeg's table sum at q = 1..100 is Pillow's libjpeg table and Python's libjpeg_table_sum", () => {
    assert.equal(tables.length, 100);
    for (const { quality, table, sum: tableSum, libjpeg_sum: pythonSum } of tables) {
      assert.equal(sum(table), tableSum, `q${quality}`);
      assert.equal(libjpegTableSum(quality), pythonSum, `q${quality}`);
      assert.equal(libjpegTableSum(quality), tableSum, `q${quality}`);
    }
  });

  test("the estimate from each libjpeg table is Python's estimate_jpeg_quality", () => {
    for (const { quality, sum: tableSum, estimate } of tables) {
      assert.equal(estimateQuality(tableSum), estimate, `q${quality} (sum ${tableSum})`);
    }
  });

  test("sums between libjpeg's go to Python's nearest quality, ties to the higher one", () => {
    assert.ok(sums.length > 300);
    for (const { sum: tableSum, estimate } of sums) {
      assert.equal(estimateQuality(tableSum), estimate, `sum ${tableSum}`);
    }
  });

  test("inspectBytes reads table 0 of a DQT segment, not table 1", () => {
    for (const { quality, table, estimate } of tables) {
      const chroma = tables[100 - quality].table; // another quality's table as table 1
      const info = inspectBytes(jpegWithTables(table, chroma));
      assert.deepEqual([info.format, info.lossy, info.quality], ["JPEG", true, estimate], `q${quality}`);
    }
  });
});

describe("the band table: the model each family picks", () => {
  const families = new Map(contracts.families.map((family) => [family.name, family]));

  for (const { family, catalog, scale, lossless, lossy, jpeg } of contracts.choices) {
    test(`${family}, page with ${catalog}, ${scale === null ? "no record" : `recorded x${scale}`}`, () => {
      const names = new Set(contracts.catalogs[catalog]);
      const record = scale === null ? null : { scale, width: 16 * scale, height: 16 * scale };
      const pick = (format, isLossy, quality) => {
        const info = { format, lossy: isLossy, quality, record };
        try {
          return chooseModel(families.get(family), info, (name) => names.has(name)).name;
        } catch (error) {
          if (!(error instanceof Error)) throw error;
          return null; // refused, as Python's TinySRError
        }
      };
      assert.equal(pick("PNG", false, null), lossless, "lossless");
      assert.equal(pick("WEBP", true, null), lossy, "lossy, quality unknown");
      for (const [first, last, model] of jpeg) {
        for (let q = first; q <= last; q++) assert.equal(pick("JPEG", true, q), model, `JPEG q${q}`);
      }
    });
  }
});

describe("files: format, lossy, quality and the tinysr: record", () => {
  const families = new Map(contracts.families.map((family) => [family.name, family]));
  for (const { name, bytes, python, decoded } of contracts.files) {
    test(name, () => {
      // the header, as inspect_source reads it (the record checked against the header's size)
      const info = inspectBytes(new Uint8Array(Buffer.from(bytes, "base64")));
      const read = { format: info.format, lossy: info.lossy, quality: info.quality, record: info.record,
        ignored: info.ignored };
      assert.deepEqual(read, python); // `ignored`: the warning, word for word
      // then the decoded pixels, as checked_record: their own size, and turned a quarter
      for (const { size: [width, height], family, record, ignored } of decoded) {
        const checked = checkedRecord(info, width, height, families.get(family));
        assert.deepEqual({ record: checked.record, ignored: checked.ignored }, { record, ignored },
          `${family}, decoded ${width}x${height}`);
      }
    });
  }
});
