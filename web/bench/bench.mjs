// vitrine in the browser beside ONNX Runtime Web, in one headless Chromium run (SwiftShader
// WebGPU here): the same timm weights (scripts/export_onnx.py writes the hub folder vitrine
// loads and the ONNX file ORT loads), batch 1, one image. Run by web/bench/run.sh.
//
//   node web/bench/bench.mjs MODEL_DIR [RUNS] [OUT.json] [BASE_PKG]
//
// vitrine: the demo page's engine (web worker), `classify` on the image's PNG bytes
// (decode + preprocess + GPU + readback), timed in the page; its own gpu_ms beside it.
// ORT: `session.run` on the preprocessed tensor (input.bin), wasm backend (SIMD, threads =
// the CPU's, the page being cross-origin isolated) and WebGPU backend. Each: 2 warm-up
// runs, then RUNS timed (ORT's WebGPU and vitrine's other kernel family: at most 3); the median and the best are reported, and
// each one's logits are checked against timm's (reference.json). BASE_PKG: another build's
// web/pkg folder (wasm-bindgen output), timed in rounds alternating with this one's.
import fs from "node:fs";
import path from "node:path";
import { serve, launch, openDemo } from "../test/harness.mjs";

const [dir, runsArg, outFile, basePkg] = process.argv.slice(2);
if (!dir || !fs.existsSync(path.join(dir, "model.onnx"))) {
  console.error("usage: node web/bench/bench.mjs MODEL_DIR [RUNS] [OUT.json] [BASE_PKG]  (MODEL_DIR from scripts/export_onnx.py)");
  process.exit(2);
}
const runs = Number(runsArg ?? 10);
const ref = JSON.parse(fs.readFileSync(path.join(dir, "reference.json"), "utf8"));
const imageDir = path.dirname(ref.image);
const mounts = { "/model/": path.resolve(dir), "/image/": imageDir };
const { server, base } = await serve({ mounts, isolated: true });
const baseServer = basePkg ? await serve({ mounts: { ...mounts, "/pkg/": path.resolve(basePkg) }, isolated: true }) : null;
const browser = await launch();
const stats = (ts) => {
  const s = [...ts].sort((a, b) => a - b);
  return { median_ms: +s[Math.floor(s.length / 2)].toFixed(1), best_ms: +s[0].toFixed(1), runs: s.length };
};
const maxDiff = (a) => Math.max(...ref.logits.map((v, i) => Math.abs(v - a[i])));
const maxAbs = Math.max(...ref.logits.map(Math.abs));
const rows = [];
let failed = false;
// One vitrine page: loads the model at a precision and kernel choice, then times `classify`
// (2 warm-up runs first) in rounds of `n`.
async function vitrinePage(baseUrl, precision, kernel, image) {
  const page = await openDemo(browser, baseUrl);
  await page.evaluate(async ({ precision, kernel }) => {
    const [config, weights] = await Promise.all([
      fetch("/model/config.json").then((x) => x.text()),
      fetch("/model/model.safetensors").then((x) => x.arrayBuffer()).then((b) => new Uint8Array(b)),
    ]);
    await window.vitrineCall("load", { config, weights });
    await window.vitrineCall("precision", { precision });
    if (kernel !== "auto") await window.vitrineCall("matmul", { kernel }); // (a base build may predate setMatmul)
  }, { precision, kernel });
  const acc = { times: [], gpu: [], logits: null };
  const round = async (n, warm = 0) => {
    const r = await page.evaluate(async ({ n, warm, image }) => {
      const bytes = new Uint8Array(await (await fetch(`/image/${image}`)).arrayBuffer());
      const times = [], gpu = [];
      let last;
      for (let i = 0; i < n + warm; i++) {
        const t0 = performance.now();
        last = await window.vitrineCall("classify", { bytes: bytes.slice(), name: image });
        if (i >= warm) { times.push(performance.now() - t0); gpu.push(last.timings.gpu_ms); }
      }
      return { times, gpu, logits: last.logits };
    }, { n, warm, image });
    acc.times.push(...r.times);
    acc.gpu.push(...r.gpu);
    acc.logits = r.logits;
  };
  await round(0, 2);
  return { page, round, acc };
}

const vitrineRow = (label, acc) => ({ engine: label, ...stats(acc.times), gpu_median_ms: stats(acc.gpu).median_ms,
  max_logit_diff: maxDiff(acc.logits), times: acc.times.map((t) => +t.toFixed(1)) });

try {
  const page = await openDemo(browser, base);
  // init's adapter: { adapter: wgpu's AdapterInfo, max_storage_binding_bytes, matmul }.
  const { adapter } = await page.evaluate(() => window.vitrineCall("init"));
  await page.close();
  const image = path.basename(ref.image);
  // The adapter's own kernel choice with f32 weights, beside an older build (basePkg) in
  // alternating rounds when one is given: before / after in one run.
  const cur = await vitrinePage(base, "f32", "auto", image);
  const old = baseServer ? await vitrinePage(baseServer.base, "f32", "auto", image) : null;
  for (let r = 0; r < 3; r++) {
    await cur.round(Math.ceil(runs / 3));
    if (old) await old.round(Math.ceil(runs / 3));
  }
  rows.push(vitrineRow(`vitrine (${adapter.matmul} matmul, f32 weights)`, cur.acc));
  // Where vitrine's GPU time goes: every op in its own timed pass, by kind (timestamp queries).
  const profile = await cur.page.evaluate(async (image) => {
    const bytes = new Uint8Array(await (await fetch(`/image/${image}`)).arrayBuffer());
    return window.vitrineCall("profileOps", { bytes }).catch((e) => String(e.message ?? e));
  }, image);
  if (old) rows.push(vitrineRow(`vitrine before: ${basePkg} (${adapter.matmul} matmul, f32 weights)`, old.acc));
  await cur.page.close();
  await old?.page.close();
  // f16 weights, and the other kernel family (far slower on SwiftShader, 8x: a few runs say so).
  const other = adapter.matmul === "tiled" ? "register" : "tiled";
  for (const [precision, kernel, n] of [["f16", "auto", runs], ["f32", other, Math.min(runs, 3)]]) {
    const v = await vitrinePage(base, precision, kernel, image);
    await v.round(n);
    rows.push(vitrineRow(`vitrine (${kernel === "auto" ? adapter.matmul : kernel} matmul, ${precision} weights)`, v.acc));
    await v.page.close();
  }

  const ortPage = await browser.newPage();
  ortPage.on("console", (m) => { if (m.type() === "error") console.error(`ort page: ${m.text()}`); });
  // wasm with one thread and with the CPU's threads (a fresh page each: ORT fixes its
  // thread count at its first session), then WebGPU.
  for (const [ep, threads] of [["wasm", 1], ["wasm", 0], ["webgpu", 1]]) {
    const n = ep === "webgpu" ? Math.min(runs, 3) : runs;
    await ortPage.goto(base + "bench/ort.html");
    const r = await ortPage.evaluate(async ({ ep, n, shape, threads }) => {
      const ort = await import("/bench/node_modules/onnxruntime-web/dist/ort.all.min.mjs");
      ort.env.wasm.wasmPaths = "/bench/node_modules/onnxruntime-web/dist/";
      ort.env.wasm.numThreads = threads || navigator.hardwareConcurrency;
      const model = new Uint8Array(await (await fetch("/model/model.onnx")).arrayBuffer());
      const session = await ort.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: "all" });
      const data = new Float32Array(await (await fetch("/model/input.bin")).arrayBuffer());
      const times = [];
      let logits;
      for (let i = 0; i < n + 2; i++) {
        const t0 = performance.now();
        const out = await session.run({ input: new ort.Tensor("float32", data, shape) });
        logits = Array.from(await out.logits.getData());
        if (i >= 2) times.push(performance.now() - t0);
      }
      await session.release();
      return { times, logits, threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated };
    }, { ep, n, shape: ref.input_shape, threads });
    rows.push({ engine: `ONNX Runtime Web 1.30 ${ep}${ep === "wasm" ? ` (${r.threads} threads, isolated ${r.isolated})` : ""}`,
      ...stats(r.times), max_logit_diff: maxDiff(r.logits), times: r.times.map((t) => +t.toFixed(1)) });
  }
  if (Array.isArray(profile)) {
    const total = profile.reduce((t, k) => t + k.ms, 0);
    console.log(`vitrine, f32, GPU time per op kind (each op timed alone), total ${total.toFixed(1)} ms:`);
    for (const k of profile) console.log(`  ${k.kind.padEnd(14)} ${k.ms.toFixed(1).padStart(8)} ms  ${(100 * k.ms / total).toFixed(1).padStart(5)} %  (${k.dispatches} dispatches)`);
  } else {
    console.log(`vitrine: no per-op profile (${profile})`);
  }
  const vit = rows[0].median_ms;
  console.log(`${ref.arch}, batch 1, ${path.basename(ref.image)}; adapter: ${JSON.stringify(adapter.adapter)}`);
  console.log("| engine | median ms | best ms | runs | vitrine's median / this | max |logit - timm| |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.engine} | ${r.median_ms}${r.gpu_median_ms !== undefined ? ` (GPU ${r.gpu_median_ms})` : ""} | ${r.best_ms} | ${r.runs} | ${(vit / r.median_ms).toFixed(2)} | ${r.max_logit_diff.toExponential(2)} |`);
    // Same weights, same input: every engine must give timm's logits (f16 weights: 1e-2 of max |logit|).
    const tol = (r.engine.includes("f16") ? 1e-2 : 1e-3) * maxAbs;
    if (!(r.max_logit_diff <= tol)) {
      console.error(`FAIL ${r.engine}: logits off timm's by ${r.max_logit_diff} (tolerance ${tol.toExponential(2)})`);
      failed = true;
    }
  }
  if (outFile) fs.writeFileSync(outFile, JSON.stringify({ arch: ref.arch, adapter: adapter.adapter, rows, profile }, null, 1));
} finally {
  await browser.close();
  server.close();
  baseServer?.server.close();
}
process.exit(failed ? 1 : 0);
