// Decoding the user's file to exact RGBA pixels, and encoding the result as PNG.
// Layout: {w, h, rgba: Uint8Array (RGBA uint8, row-major), grey: R = G = B everywhere, alpha: some alpha < 255,
// canvas: the image drawn on an OffscreenCanvas (for the page's "before" view)}.
// Pixels are the file's own values, not premultiplied: an opaque image goes through a 2D canvas (exact when alpha is
// 255 everywhere), EXIF orientation applied; an image with transparency is decoded again, because a 2D canvas
// stores premultiplied alpha and would lose colour there: a PNG here (exact), another format by ImageDecoder.

/** Width and height (EXIF orientation applied) from the header, before the pixels are decoded; rejects with a
 *  readable error for a file the browser cannot decode. */
export function imageSize(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file), img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve({ w: img.naturalWidth, h: img.naturalHeight }); };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error(`${file.name} is not an image this browser can decode (PNG, JPEG or WebP)`));
    };
    img.src = url;
  });
}

/** The file's pixels as {w, h, rgba, grey, alpha}. */
export async function decodeFile(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image", premultiplyAlpha: "none",
    colorSpaceConversion: "none" });
  const { width: w, height: h } = bitmap;
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  let rgba = new Uint8Array(ctx.getImageData(0, 0, w, h).data.buffer);
  const alpha = hasTransparency(rgba);
  if (alpha) rgba = await unpremultipliedPixels(file, w, h);
  return { w, h, rgba, grey: isGrey(rgba), alpha, canvas };
}

/** Some alpha < 255 (RGBA bytes). */
export function hasTransparency(rgba) {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return true;
  return false;
}

/** R = G = B on every pixel: tinysr.upscale's grey path (the net's channels averaged). */
export function isGrey(rgba) {
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i] !== rgba[i + 1] || rgba[i] !== rgba[i + 2]) return false;
  return true;
}

/** Straight-alpha RGBA of an image with transparency: a PNG (8-bit, not interlaced) is decoded here, exactly;
 *  anything else (WebP, 16-bit PNG) by the browser through ImageDecoder with premultiplyAlpha "none". */
async function unpremultipliedPixels(file, w, h) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const png = await decodePng(bytes);
  if (png && png.w === w && png.h === h) return png.rgba;
  const decoder = new ImageDecoder({ data: bytes, type: file.type || "image/webp", premultiplyAlpha: "none",
    colorSpaceConversion: "none" });
  const { image } = await decoder.decode();
  try {
    const rgba = new Uint8Array(w * h * 4);
    await image.copyTo(rgba, { format: "RGBA" });
    return rgba;
  } finally {
    image.close();
    decoder.close();
  }
}

// ------------------------------------------------------------------------------------------------ PNG in

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const PNG_CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }; // colour type -> samples per pixel

/** {w, h, rgba} of an 8-bit non-interlaced PNG, or null for any other file (the caller falls back). */
async function decodePng(bytes) {
  if (!PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  let header = null, palette = null, transparency = null;
  const idat = [];
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at), type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") header = { w: view.getUint32(at + 8), h: view.getUint32(at + 12), depth: data[8],
      colour: data[9], interlace: data[12] };
    else if (type === "PLTE") palette = data;
    else if (type === "tRNS") transparency = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    at += 12 + length;
  }
  if (!header || header.depth !== 8 || header.interlace !== 0 || !(header.colour in PNG_CHANNELS)) return null;
  const raw = new Uint8Array(await new Response(new Blob(idat).stream()
    .pipeThrough(new DecompressionStream("deflate"))).arrayBuffer());
  const samples = unfilter(raw, header.w, header.h, PNG_CHANNELS[header.colour]);
  return { w: header.w, h: header.h, rgba: toRgba(samples, header, palette, transparency) };
}

/** Undo PNG's per-row filters (none, sub, up, average, Paeth) in place; returns the samples without filter bytes. */
function unfilter(raw, w, h, bpp) {
  const stride = w * bpp, out = new Uint8Array(stride * h);
  for (let y = 0; y < h; y++) {
    const filter = raw[y * (stride + 1)], src = y * (stride + 1) + 1, row = y * stride, prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[row + x - bpp] : 0, b = y > 0 ? out[prev + x] : 0;
      const c = x >= bpp && y > 0 ? out[prev + x - bpp] : 0;
      const predict = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      out[row + x] = (raw[src + x] + predict) & 0xff;
    }
  }
  return out;
}

function paeth(a, b, c) {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** PNG samples (grey, RGB, palette, grey + alpha or RGBA) -> RGBA. */
function toRgba(samples, { w, h, colour }, palette, transparency) {
  const rgba = new Uint8Array(w * h * 4), n = PNG_CHANNELS[colour];
  for (let i = 0; i < w * h; i++) {
    const s = i * n, o = i * 4;
    if (colour === 3) {
      const k = samples[s];
      rgba.set(palette.subarray(3 * k, 3 * k + 3), o);
      rgba[o + 3] = transparency && k < transparency.length ? transparency[k] : 255;
    } else {
      const grey = colour === 0 || colour === 4;
      rgba[o] = samples[s];
      rgba[o + 1] = samples[grey ? s : s + 1];
      rgba[o + 2] = samples[grey ? s : s + 2];
      rgba[o + 3] = colour === 4 ? samples[s + 1] : colour === 6 ? samples[s + 3] : 255;
    }
  }
  return rgba;
}

// ------------------------------------------------------------------------------------------------ PNG out

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes, crc = 0xffffffff) {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return crc;
}

/** One PNG chunk: length, type, data, CRC of type + data. */
function chunk(type, data) {
  const out = new Uint8Array(12 + data.length), view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

/** An RGBA (colour type 6, 8 bits) PNG of the exact pixels, as a Blob: rows with filter 0, zlib-compressed by the
 *  browser's CompressionStream ("deflate" is the zlib format PNG wants), fed a band of rows at a time. */
export async function encodePng(w, h, rgba) {
  const header = new Uint8Array(13), view = new DataView(header.buffer);
  view.setUint32(0, w);
  view.setUint32(4, h);
  header.set([8, 6, 0, 0, 0], 8);
  const stream = new CompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const compressed = new Response(stream.readable).arrayBuffer();
  const rowBytes = w * 4 + 1, band = Math.max(1, Math.floor((1 << 22) / rowBytes));
  for (let y0 = 0; y0 < h; y0 += band) {
    const rows = Math.min(band, h - y0), buf = new Uint8Array(rows * rowBytes);
    for (let r = 0; r < rows; r++) buf.set(rgba.subarray((y0 + r) * w * 4, (y0 + r + 1) * w * 4), r * rowBytes + 1);
    await writer.write(buf);
  }
  await writer.close();
  const idat = new Uint8Array(await compressed);
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, chunk("IHDR", header), chunk("IDAT", idat), chunk("IEND", new Uint8Array())],
    { type: "image/png" });
}
