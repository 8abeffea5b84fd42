// Records the SHA-256 of the kernel source and of the built .wasm in kernels.sha256 (sha256sum's format), so that
// tests/test_web.py can tell a committed kernels.wasm that is not what kernels.ts builds to.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const files = { "web/kernels.ts": "kernels.ts", "src/tinysr/web/page/kernels.wasm": "../src/tinysr/web/page/kernels.wasm" };
const lines = Object.entries(files).map(([name, path]) =>
  `${createHash("sha256").update(readFileSync(path)).digest("hex")}  ${name}`);
writeFileSync("kernels.sha256", lines.join("\n") + "\n");
console.log(lines.join("\n"));
