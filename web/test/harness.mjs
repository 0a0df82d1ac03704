// What the browser scripts share: a static server for web/, headless Chromium with
// WebGPU (SwiftShader here), and the demo page opened and ready.
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".png": "image/png", ".txt": "text/plain", ".json": "application/json" };

// Serves web/ on a free local port; returns { server, base }. `mounts` maps URL prefixes
// ("/model/") to more folders; `isolated` sends the COOP/COEP headers that give a page
// SharedArrayBuffer (ONNX Runtime Web's wasm threads need it).
export async function serve({ mounts = {}, isolated = false } = {}) {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const [prefix, root] = Object.entries(mounts).find(([p]) => url.startsWith(p)) ?? ["/", web];
    const file = path.join(root, url === "/" ? "index.html" : url.slice(prefix.length));
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    const headers = { "content-type": types[path.extname(file)] ?? "application/octet-stream" };
    if (isolated) Object.assign(headers, { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, base: `http://127.0.0.1:${server.address().port}/` };
}

// Headless Chromium with WebGPU, precise memory figures and gc() (for the memory checks).
export async function launch() {
  const exe = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!fs.existsSync(exe)) throw new Error(`Chromium not found at ${exe} (apt-get install chromium)`);
  return chromium.launch({
    executablePath: exe,
    headless: true,
    args: ["--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--enable-precise-memory-info", "--js-flags=--expose-gc"],
  });
}

// A new page on the demo, once its engine is ready (page errors go to stderr).
export async function openDemo(browser, base) {
  const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
  page.on("console", (m) => { if (m.type() === "error") console.error(`page: ${m.text()}`); });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(base);
  const hasGpu = await page.evaluate(() => !!navigator.gpu);
  if (!hasGpu) throw new Error("navigator.gpu is missing: this Chromium has no WebGPU");
  await page.waitForFunction(() => ["ready", "error"].includes(document.getElementById("status").dataset.state), null, { timeout: 300000 });
  const state = await page.$eval("#status", (e) => [e.dataset.state, e.textContent]);
  if (state[0] !== "ready") throw new Error(`page did not get ready: ${state[1]}`);
  return page;
}

// The worker's wasm memory and live GPU buffers, and the page's JS heap, after a gc().
export async function memory(page) {
  return page.evaluate(async () => {
    globalThis.gc?.();
    const w = await window.vitrineCall("memory");
    return { wasm: w.wasm, gpuBuffers: w.gpuBuffers, heap: performance.memory?.usedJSHeapSize ?? 0 };
  });
}
