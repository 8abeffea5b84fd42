// "auto" in the page: what a file is, read from its bytes, and which model a family picks for it; the same rules as
// tinysr.delivery.auto (`tinysr upscale --model auto`), whose tables the site writes into models/index.json:
//   family = {name, budget, models: {scale: [clean, lossy|null]}, bands: {scale: [[lowest quality, model], ...]}}.
// A JPEG's quality is estimated from its luminance quantisation table (table 0), `tinysr encode`'s record
// ("tinysr:scale=2;size=WxH") is read from a JPEG comment (the last, as Pillow keeps it) or else the EXIF
// ImageDescription (a JPEG's APP1, a WebP's EXIF chunk), and a WebP is lossy when its image chunk is "VP8 "
// (lossless: "VP8L"). A record counts only as tinysr.delivery.record rules: the whole text, exactly as encode writes
// it; scale 1-4; and a size that gives the image's (ceil(size / scale)). Any other text naming tinysr is ignored,
// and the line says why.

/** ITU-T T.81 Annex K.1 luminance table (libjpeg's std_luminance_quant_tbl). */
const STD_LUMINANCE = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
  14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
  49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
const RECORD = /^tinysr:scale=([0-9]+);size=([0-9]+)x([0-9]+)$/;
const MARK = "tinysr:";
const RECORD_SCALES = [1, 2, 3, 4];
const EXIF_IMAGE_DESCRIPTION = 0x010e;
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

const recordText = (r) => `tinysr:scale=${r.scale};size=${r.width}x${r.height}`;

/** The record that `text` is, exactly (as `Record.text()` writes it), or null. */
export function parseRecord(text) {
  const m = RECORD.exec(text);
  if (!m) return null;
  const record = { scale: Number(m[1]), width: Number(m[2]), height: Number(m[3]) };
  return recordText(record) === text ? record : null;
}

/** Why `record` cannot be what `tinysr encode` wrote for a width x height image, or null (record.check_record). */
export function checkRecord(record, width, height) {
  if (!RECORD_SCALES.includes(record.scale)) {
    return `scale x${record.scale} is not one of ${RECORD_SCALES.map((s) => `x${s}`).join(", ")}`;
  }
  const w = Math.ceil(record.width / record.scale), h = Math.ceil(record.height / record.scale);
  if (w !== width || h !== height) {
    return `an original of ${record.width}x${record.height} sent at x${record.scale} is ${w}x${h}, not this `
      + `${width}x${height} image`;
  }
  return null;
}

/** {record, ignored} of the texts in file order for an image of the header's `size` ({w, h}; record.find_record):
 *  the first text that names tinysr is the record if it is exact and fits the size; else it is ignored, and
 *  `ignored` says why. */
function findRecord(texts, size) {
  for (const text of texts) {
    if (text === null || !text.includes(MARK)) continue;
    const record = parseRecord(text);
    if (!record) {
      const shown = text.length <= 60 ? text : `${text.slice(0, 57)}...`;
      return { record: null, ignored: `record ignored (${JSON.stringify(shown)} is not exactly a tinysr record)` };
    }
    const problem = size ? checkRecord(record, size.w, size.h) : null;
    return problem ? { record: null, ignored: `record ignored (${recordText(record)}: ${problem})` }
      : { record, ignored: null };
  }
  return { record: null, ignored: null };
}

const latin1 = (bytes) => new TextDecoder("latin1").decode(bytes);

/** The EXIF ImageDescription (IFD0 tag 0x010E, ASCII) of a TIFF-structured EXIF block, as Pillow reads it (one
 *  trailing NUL dropped), or null. `bytes` may start with "Exif\0\0". */
export function exifDescription(bytes) {
  if (latin1(bytes.subarray(0, 6)) === "Exif\0\0") bytes = bytes.subarray(6);
  if (bytes.length < 8) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const order = latin1(bytes.subarray(0, 2));
  if (order !== "II" && order !== "MM") return null;
  const little = order === "II";
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > bytes.length) return null;
  const n = view.getUint16(ifd, little);
  for (let k = 0; k < n && ifd + 2 + 12 * (k + 1) <= bytes.length; k++) {
    const entry = ifd + 2 + 12 * k;
    if (view.getUint16(entry, little) !== EXIF_IMAGE_DESCRIPTION || view.getUint16(entry + 2, little) !== 2) continue;
    const count = view.getUint32(entry + 4, little);
    const start = count <= 4 ? entry + 8 : view.getUint32(entry + 8, little);
    if (start + count > bytes.length) return null;
    let value = bytes.subarray(start, start + count);
    if (value.length && value[value.length - 1] === 0) value = value.subarray(0, value.length - 1);
    return latin1(value);
  }
  return null;
}

/** {format, lossy, quality, record, ignored} of a JPEG: walks the segments up to the scan. */
function inspectJpeg(bytes) {
  let quality = null, comment = null, description = null, size = null;
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
    } else if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      size = { w: (bytes[i + 7] << 8) | bytes[i + 8], h: (bytes[i + 5] << 8) | bytes[i + 6] }; // a frame header
    } else if (marker === 0xfe) {
      comment = latin1(bytes.subarray(i + 4, end)); // the last comment, as Pillow keeps it
    } else if (marker === 0xe1 && description === null && latin1(bytes.subarray(i + 4, i + 10)) === "Exif\0\0") {
      description = exifDescription(bytes.subarray(i + 4, end));
    }
    i = end;
  }
  return { format: "JPEG", lossy: true, quality, ...findRecord([comment, description], size) };
}

/** {format, lossy, quality, record, ignored} of a WebP: walks the RIFF chunks. */
function inspectWebp(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let lossy = null, description = null, canvas = null, frame = null;
  for (let i = 12; i + 8 <= bytes.length;) {
    const fourcc = latin1(bytes.subarray(i, i + 4)), size = view.getUint32(i + 4, true), at = i + 8;
    if (lossy === null && (fourcc === "VP8 " || fourcc === "VP8L")) lossy = fourcc === "VP8 ";
    if (fourcc === "EXIF") description = exifDescription(bytes.subarray(at, at + size));
    if (fourcc === "VP8X" && at + 10 <= bytes.length) { // the canvas: 24-bit width - 1 and height - 1
      canvas = { w: 1 + (view.getUint32(at + 4, true) & 0xffffff), h: 1 + (view.getUint32(at + 6, true) >>> 8) };
    } else if (fourcc === "VP8 " && frame === null && at + 10 <= bytes.length) { // key frame: 14-bit sizes
      frame = { w: view.getUint16(at + 6, true) & 0x3fff, h: view.getUint16(at + 8, true) & 0x3fff };
    } else if (fourcc === "VP8L" && frame === null && at + 5 <= bytes.length) { // 14 bits each, minus 1
      const bits = view.getUint32(at + 1, true);
      frame = { w: 1 + (bits & 0x3fff), h: 1 + ((bits >>> 14) & 0x3fff) };
    }
    i += 8 + size + (size & 1);
  }
  return { format: "WEBP", lossy: lossy === true, quality: null, ...findRecord([description], canvas || frame) };
}

/** What the file is: {format: "JPEG" | "WEBP" | "PNG" | other, lossy, quality (JPEG) | null, record | null,
 *  ignored: why a text naming tinysr is no record | null}, the record checked against the header's size, as
 *  tinysr.delivery.auto.inspect_source reads it (checkedRecord checks it against the decoded pixels). */
export function inspectBytes(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return inspectJpeg(bytes);
  if (latin1(bytes.subarray(0, 4)) === "RIFF" && latin1(bytes.subarray(8, 12)) === "WEBP") return inspectWebp(bytes);
  const png = bytes[0] === 0x89 && latin1(bytes.subarray(1, 4)) === "PNG";
  return { format: png ? "PNG" : "image", lossy: false, quality: null, record: null, ignored: null };
}

/** `info` for a decoded width x height image in `family`: its record dropped, with why, when it does not fit the
 *  image (checkRecord) or the family has no model of its scale (auto.checked_record). */
export function checkedRecord(info, width, height, family) {
  if (!info.record) return info;
  let problem = checkRecord(info.record, width, height);
  if (!problem && info.record.scale !== 1 && !family.models[String(info.record.scale)]) {
    problem = `--model ${family.name} has models for ${Object.keys(family.models).map((s) => `x${s}`).join(", ")} only`;
  }
  return problem ? { ...info, record: null, ignored: `record ignored (${recordText(info.record)}: ${problem})` } : info;
}

/** {name, scale, line} the family picks for `info` (checked by checkedRecord) among the models the page has
 *  (`has(name)`); name is IDENTITY for a record of scale 1. The line says why a record was ignored. */
export function chooseModel(family, info, has) {
  const scale = info.record ? info.record.scale : DEFAULT_SCALE;
  const what = info.format + (info.quality !== null ? ` q~${info.quality}` : "") + (info.lossy ? " (lossy)" : " (lossless)")
    + (info.record ? `, ${recordText(info.record)}` : "") + (info.ignored ? `, ${info.ignored}` : "");
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
