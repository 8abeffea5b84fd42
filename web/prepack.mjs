// npm pack's first step (package.json "prepack"): dist/ becomes the package's files, rebuilt on every pack (git
// ignores it; never edit it).
// 1. The modules the entry (tinysr.js) reaches: imports, and the files named by `new URL("./x", import.meta.url)`
//    (worker.js, kernels.wasm), copied byte for byte from src/tinysr/web/page/, their one source: the page that
//    `tinysr web` serves runs the same files.
// 2. models/: every bundled model's JSON and index.json, as `tinysr web --build` writes them, by the checkout's own
//    Python package (src/ first on PYTHONPATH; $PYTHON names the interpreter, default python3).
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = join(HERE, "..", "src");
const PAGE = join(SRC, "tinysr", "web", "page");
const DIST = join(HERE, "dist");
const ENTRY = "tinysr.js";
/** A relative module or file a module names: `from "./x"`, `import("./x")`, `new URL("./x", ...)`. */
const REFERENCE = /(?:from\s+|import\s*\(\s*|new URL\(\s*)"\.\/([^"]+)"/g;
/** Names under models/ come from Python (step 2), not from the page folder. */
const MODELS = "models/";

/** The entry and every file it reaches, in the order found. */
function moduleFiles(entry) {
  const found = [entry];
  for (let k = 0; k < found.length; k++) {
    if (!found[k].endsWith(".js")) continue;
    for (const [, name] of readFileSync(join(PAGE, found[k]), "utf8").matchAll(REFERENCE)) {
      if (!name.startsWith(MODELS) && !found.includes(name)) found.push(name);
    }
  }
  return found;
}

/** `tinysr web --build` into a temporary folder; its models/ goes to dist/models. */
function writeModels() {
  const temp = mkdtempSync(join(tmpdir(), "tinysr-web-pack-"));
  try {
    const env = { ...process.env, PYTHONPATH: [SRC, process.env.PYTHONPATH].filter(Boolean).join(delimiter) };
    execFileSync(process.env.PYTHON || "python3", ["-m", "tinysr", "web", "--build", join(temp, "site")],
      { env, stdio: ["ignore", 2, 2] }); // its lines on stderr: `npm pack --json` keeps stdout for its answer
    cpSync(join(temp, "site", "models"), join(DIST, "models"), { recursive: true });
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST);
const files = moduleFiles(ENTRY);
for (const name of files) copyFileSync(join(PAGE, name), join(DIST, name));
writeModels();
console.error(`prepack: dist/ holds ${files.join(", ")} (from src/tinysr/web/page) and models/ (tinysr web --build)`);
