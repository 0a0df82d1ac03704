// The browser soak: N classifications (default 2,000) through the web API in headless
// Chromium, batch sizes cycling 1, 2, 3, 5, 8 (classifyMany), the model switching between
// the built-in one and a second (a hub folder) every 100 images. The worker's wasm memory and
// live GPU buffers and the page's JS heap are read after a gc() once the warm-up is over (both
// models and every batch size run twice) and at the end; fails when one grew over 10 %.
//
//   node web/test/soak.mjs MODEL_DIR IMAGE [N]        (web/test/soak.sh builds and runs it)
import fs from "node:fs";
import path from "node:path";
import { serve, launch, openDemo, memory } from "./harness.mjs";

const [modelDir, image, nArg] = process.argv.slice(2);
const total = Number(nArg ?? 2000);
const config = fs.readFileSync(path.join(modelDir, "config.json"), "utf8");
const weights = [...fs.readFileSync(path.join(modelDir, "model.safetensors"))];
const bytes = [...fs.readFileSync(image)];
const { server, base } = await serve();
const browser = await launch();
let ok = false;
try {
  const page = await openDemo(browser, base);
  await page.evaluate(([config, weights, bytes]) => {
    window.soak = { config, weights: new Uint8Array(weights), bytes: new Uint8Array(bytes), done: 0, model: 0 };
  }, [config, weights, bytes]);
  // Runs classifications up to `until`, switching models every 100; returns the seconds taken.
  const run = (until) => page.evaluate(async (until) => {
    const s = window.soak;
    const sizes = [1, 2, 3, 5, 8];
    const t0 = performance.now();
    for (let call = 0; s.done < until; call++) {
      const model = Math.floor(s.done / 100) % 2;
      if (model !== s.model) {
        if (model === 1) await window.vitrineCall("load", { config: s.config, weights: s.weights });
        else await window.vitrineCall("default");
        s.model = model;
      }
      const n = Math.min(sizes[(s.done + call) % sizes.length], until - s.done);
      const rows = await window.vitrineCall("classifyMany", { images: Array.from({ length: n }, () => s.bytes) });
      if (rows.length !== n) throw new Error(`classifyMany returned ${rows.length} rows for ${n} images`);
      s.done += n;
    }
    return (performance.now() - t0) / 1000;
  }, until);
  const warm = Math.max(400, Math.round(total * 0.2));
  const warmSecs = await run(warm);
  const first = await memory(page);
  const rows = [[warm, first]];
  let secs = warmSecs;
  for (const at of [Math.round((warm + total) / 2), total]) {
    secs += await run(at);
    rows.push([at, await memory(page)]);
  }
  for (const [at, m] of rows) {
    console.log(`${String(at).padStart(6)} classifications: wasm ${m.wasm} B, GPU buffers ${m.gpuBuffers}, JS heap ${m.heap} B`);
  }
  const last = rows[rows.length - 1][1];
  const grew = (k) => (last[k] - first[k]) / first[k];
  ok = ["wasm", "gpuBuffers", "heap"].every((k) => first[k] > 0 && grew(k) <= 0.1);
  console.log(`${ok ? "ok  " : "FAIL"} ${total} classifications in ${secs.toFixed(1)} s: wasm ${(grew("wasm") * 100).toFixed(1)} %, ` +
    `GPU buffers ${(grew("gpuBuffers") * 100).toFixed(1)} %, JS heap ${(grew("heap") * 100).toFixed(1)} % after the warm-up`);
} finally {
  await browser.close();
  server.close();
}
process.exit(ok ? 0 : 1);
