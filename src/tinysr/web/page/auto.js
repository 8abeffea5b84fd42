// "auto" in the page: what a file is, read from its bytes, and which model a family picks for it; the same rules as
// tinysr.delivery.auto (`tinysr upscale --model auto`), whose tables the site writes into models/index.json:
//   family = {name, budget, models: {scale: [clean, lossy|null]}, bands: {scale: [[lowest quality, model], ...]}}.
// A JPEG's quality is estimated from its luminance quantisation table (table 0), `tinysr encode`'s record
// ("tinysr:scale=2;size=WxH") is read from a JPEG comment or a WebP's EXIF chunk, and a WebP is lossy when its
// image chunk is "VP8 " (lossless: "VP8L").

/** ITU-T T.81 Annex K.1 luminance table (libjpeg's std_luminance_quant_tbl). */
const STD_LUMINANCE = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
  14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
  49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
const RECORD = /tinysr:scale=(\d+);size=(\d+)x(\d+)/;
const DEFAULT_SCALE = 2;
export const IDENTITY = "none (x1: sent at full size)";

/** Sum of the luminance table libjpeg writes at `quality` (its scaling, rounding and baseline clamp). */
export function libjpegTableSum(quality) {
  const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - 2 * quality;
  return STD_LUMINANCE.reduce((sum, q) => sum + Math.min(Math.max(Math.floor((q * scale + 50) / 100), 1), 255), 0);
}

/** The libjpeg quality (1..100) whose table sum is nearest `sum`; a tie goes to the higher quality. */
export function estimateQuality(sum) {
  let best = 1;
  for (let q = 2; q <= 100; q++) {
    if (Math.abs(libjpegTableSum(q) - sum) <= Math.abs(libjpegTableSum(best) - sum)) best = q;
  }
  return best;
}

function parseRecord(text) {
  const m = RECORD.exec(text);
  return m ? { scale: +m[1], width: +m[2], height: +m[3] } : null;
}

const latin1 = (bytes) => new TextDecoder("latin1").decode(bytes);

/** {format, quality, record} of a JPEG: walks the segments up to the scan. */
function inspectJpeg(bytes) {
  let quality = null, record = null;
  for (let i = 2; i + 4 <= bytes.length && bytes[i] === 0xff;) {
    const marker = bytes[i + 1];
    if (marker === 0xff) { i += 1; continue; } // fill bytes before a marker
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { i += 2; continue; }
    if (marker === 0xda || marker === 0xd9) break;
    const end = i + 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
    if (marker === 0xdb) {
      for (let p = i + 4; p < end;) {
        const precision = bytes[p] >> 4, id = bytes[p] & 15, size = precision ? 2 : 1;
        let sum = 0;
        for (let k = 0; k < 64; k++) sum += size === 2 ? (bytes[p + 1 + 2 * k] << 8) | bytes[p + 2 + 2 * k] : bytes[p + 1 + k];
        if (id === 0) quality = estimateQuality(sum);
        p += 1 + 64 * size;
      }
    } else if (marker === 0xfe && !record) {
      record = parseRecord(latin1(bytes.subarray(i + 4, end)));
    }
    i = end;
  }
  return { format: "JPEG", lossy: true, quality, record };
}

/** {format, lossy, record} of a WebP: walks the RIFF chunks. */
function inspectWebp(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let lossy = null, record = null;
  for (let i = 12; i + 8 <= bytes.length;) {
    const fourcc = latin1(bytes.subarray(i, i + 4)), size = view.getUint32(i + 4, true);
    if (lossy === null && (fourcc === "VP8 " || fourcc === "VP8L")) lossy = fourcc === "VP8 ";
    if (fourcc === "EXIF") record = parseRecord(latin1(bytes.subarray(i + 8, i + 8 + size)));
    i += 8 + size + (size & 1);
  }
  return { format: "WEBP", lossy: lossy === true, quality: null, record };
}

/** What the file is: {format: "JPEG" | "WEBP" | "PNG" | other, lossy, quality (JPEG) | null, record | null}. */
export function inspectBytes(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return inspectJpeg(bytes);
  if (latin1(bytes.subarray(0, 4)) === "RIFF" && latin1(bytes.subarray(8, 12)) === "WEBP") return inspectWebp(bytes);
  const png = bytes[0] === 0x89 && latin1(bytes.subarray(1, 4)) === "PNG";
  return { format: png ? "PNG" : "image", lossy: false, quality: null, record: null };
}

/** {name, scale, line} the family picks for `info` among the models the page has (`has(name)`); name is IDENTITY
 *  for a record of scale 1. Throws a readable Error for a recorded scale the family has no model for. */
export function chooseModel(family, info, has) {
  const scale = info.record ? info.record.scale : DEFAULT_SCALE;
  const what = info.format + (info.quality !== null ? ` q~${info.quality}` : "") + (info.lossy ? " (lossy)" : " (lossless)")
    + (info.record ? `, tinysr:scale=${info.record.scale};size=${info.record.width}x${info.record.height}` : "");
  if (scale === 1) return { name: IDENTITY, scale: 1, line: `${what} -> ${IDENTITY}` };
  const models = family.models[String(scale)];
  if (!models) {
    throw new Error(`the file records scale x${scale} but ${family.name} has models for `
      + `${Object.keys(family.models).map((s) => `x${s}`).join(", ")} only`);
  }
  const [clean, lossy] = models;
  let name = clean;
  if (info.lossy) {
    const band = info.quality === null ? null
      : (family.bands[String(scale)] || []).find(([lowest, model]) => info.quality >= lowest && has(model));
    name = band ? band[1] : (lossy && has(lossy) ? lossy : clean);
  }
  return { name, scale, line: `${what} -> ${name}` };
}
