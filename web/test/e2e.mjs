// End-to-end test of the demo page in headless Chromium (WebGPU on SwiftShader
// where there is no GPU). Run by web/test/run.sh, which builds the site and
// writes the native engine's logits for the same models and images:
//
//   node web/test/e2e.mjs EXPECTED.json ARTIFACTS_DIR
//
// EXPECTED.json: { "default": {image, logits}, "customs": [{config, weights, images: [{image, logits}]}] }.
// Fails (never skips) when Chromium or WebGPU is missing.
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import zlib from "node:zlib";
import { web, serve, launch, openDemo, memory } from "./harness.mjs";

const [expectedPath, artifacts] = process.argv.slice(2);
const expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
fs.mkdirSync(artifacts, { recursive: true });
const { server, base } = await serve();
const browser = await launch();
let failed = false;
// A grayscale PNG of `pixels` (w x h bytes).
const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
const crc32 = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
const pngChunk = (type, data) => {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
};
const grayPng = (pixels, w, h) => {
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0;
  const raw = Buffer.concat(Array.from({ length: h }, (_, y) => Buffer.concat([Buffer.from([0]), pixels.subarray(y * w, (y + 1) * w)])));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk("IHDR", ihdr), pngChunk("IDAT", zlib.deflateSync(raw)), pngChunk("IEND", Buffer.alloc(0))]);
};
// The tensors of a safetensors file (F32 only) by name.
const safetensors = (buf) => {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [a, b] = t.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    out[name] = Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  }
  return out;
};
const check = (name, got, want) => {
  const m = Math.max(1, ...want.map(Math.abs));
  const tol = 1e-4 * m;
  if (!got || got.length !== want.length) {
    console.error(`FAIL ${name}: ${got?.length} logits, expected ${want.length}`);
    failed = true;
    return;
  }
  const d = Math.max(...got.map((g, i) => Math.abs(g - want[i])));
  const ok = d <= tol;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: max |browser - native| = ${d.toExponential(2)} (tolerance ${tol.toExponential(2)})`);
  failed ||= !ok;
};
try {
  const page = await openDemo(browser, base);
  console.log(`adapter: ${await page.$eval("#adapter", (e) => [...e.children].map((c) => c.textContent).join(" "))}`);

  let count = 0;
  const classify = async (image) => {
    await page.setInputFiles("#file", image);
    count += 1;
    await page.waitForFunction((n) => window.vitrineCount >= n, count, { timeout: 300000 });
    const err = await page.evaluate(() => window.vitrineError);
    if (err) throw new Error(`classifying ${image}: ${err}`);
    return page.evaluate(() => window.vitrineLast);
  };

  // The built-in model, through the file input.
  const d = expected.default;
  const r = await classify(d.image);
  check(`built-in model, ${path.basename(d.image)}`, r.logits, d.logits);
  console.log(`top-5: ${r.top_k.map((p) => `${p.label} ${(p.prob * 100).toFixed(1)}%`).join(", ")}; timings ${JSON.stringify(r.timings)}`);
  await page.screenshot({ path: path.join(artifacts, "web-default.png"), fullPage: true });

  // f16 weights (setPrecision): logits within 1e-2 of max |logit| of timm's f32 ones, same
  // top-1; then back to f32, exact again.
  await page.evaluate(() => window.vitrineCall("precision", { precision: "f16" }));
  const half = await classify(d.image);
  const hm = Math.max(...d.logits.map(Math.abs));
  const hd = Math.max(...half.logits.map((g, i) => Math.abs(g - d.logits[i])));
  const top1 = (v) => v.indexOf(Math.max(...v));
  const halfOk = hd <= 1e-2 * hm && hd > 0 && top1(half.logits) === top1(d.logits);
  console.log(`${halfOk ? "ok  " : "FAIL"} f16 weights: max |diff| ${hd.toExponential(2)} (${(hd / hm).toExponential(2)} of max |logit|), top-1 ${half.top_k[0].label}`);
  failed ||= !halfOk;
  await page.evaluate(() => window.vitrineCall("precision", { precision: "f32" }));
  check("built-in model back at f32", (await classify(d.image)).logits, d.logits);

  // setMatmul: the other kernel family (tiled: workgroup-memory tiles) gives the same logits;
  // an unknown name is refused; "auto" restores the adapter's choice.
  await page.evaluate(() => window.vitrineCall("matmul", { kernel: "tiled" }));
  check("built-in model on the tiled matmul", (await classify(d.image)).logits, d.logits);
  const badKernel = await page.evaluate(() => window.vitrineCall("matmul", { kernel: "fast" }).then(() => "", (e) => String(e.message ?? e)));
  const badOk = badKernel.includes("unknown matmul kernel");
  console.log(`${badOk ? "ok  " : "FAIL"} an unknown matmul kernel is refused (${JSON.stringify(badKernel)})`);
  failed ||= !badOk;
  await page.evaluate(() => window.vitrineCall("matmul", { kernel: "auto" }));
  check("built-in model back on the adapter's matmul", (await classify(d.image)).logits, d.logits);

  // profileOps: GPU time per op kind (timestamp queries, which SwiftShader has): the
  // built-in ViT's kinds, each with its dispatch count (4 blocks: 16 linears + patch embedding + head,
  // 8 attention products, 9 LayerNorms).
  const prof = await page.evaluate(async (bytes) => window.vitrineCall("profileOps", { bytes: new Uint8Array(bytes) }),
    [...fs.readFileSync(d.image)]);
  const kind = (k) => prof.find((p) => p.kind === k) ?? { ms: -1, dispatches: 0 };
  const profOk = kind("linear").dispatches === 18 && kind("bmm").dispatches === 8 && kind("layernorm").dispatches === 9 &&
    prof.every((p) => p.ms >= 0) && prof.reduce((t, p) => t + p.ms, 0) > 0;
  console.log(`${profOk ? "ok  " : "FAIL"} per-op profile: ${prof.map((p) => `${p.kind} ${p.ms.toFixed(2)} ms x${p.dispatches}`).join(", ")}`);
  failed ||= !profOk;

  // Attention maps: the toggle shows the engine's overlay (built-in ViT), pixel for pixel the
  // middle panel of the native `vitrine explain` picture of the same image (within 2 levels).
  const attention = async () => {
    const before = await page.evaluate(() => window.vitrineAttentionCount ?? 0);
    await page.check("#attn");
    await page.waitForFunction((n) => (window.vitrineAttentionCount ?? 0) > n, before, { timeout: 120000 });
    return page.evaluate(() => window.vitrineAttention);
  };
  const drawn = await attention();
  const attn = await page.evaluate(async (nativePng) => {
    const load = (src) => new Promise((res, rej) => { const i = new Image(); i.onload = () => res(i); i.onerror = rej; i.src = src; });
    const shown = document.getElementById("attn-img");
    const native = await load(`data:image/png;base64,${nativePng}`);
    const pixels = (im, x0, y0, w, h) => {
      const c = new OffscreenCanvas(w, h).getContext("2d");
      c.drawImage(im, -x0, -y0);
      return c.getImageData(0, 0, w, h).data;
    };
    const [w, h] = [shown.naturalWidth, shown.naturalHeight];
    const a = pixels(shown, 0, 0, w, h), b = pixels(native, 224 + 4, 28, w, h);
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    return { w, h, max, visible: !document.getElementById("attn-figure").hidden };
  }, fs.readFileSync(d.attention_png).toString("base64"));
  const attnOk = drawn?.ok && attn.visible && attn.w === 224 && attn.h === 224 && attn.max <= 2;
  console.log(`${attnOk ? "ok  " : "FAIL"} attention map shown: ${attn.w} x ${attn.h}, max |browser - native explain| = ${attn.max} levels`);
  failed ||= !attnOk;
  await page.screenshot({ path: path.join(artifacts, "web-attention.png"), fullPage: true });
  await page.uncheck("#attn");

  // A lost GPU device (destroyed through the test hook): the next request fails inside the
  // worker, which re-creates the engine and completes it; the page says so; same logits.
  await page.evaluate(() => window.vitrineCall("destroyDevice"));
  const again = await classify(d.image);
  check("built-in model after a lost device", again.logits, d.logits);
  const said = await page.evaluate(() => (window.vitrineRecovered ?? 0) >= 1 && /device was lost/.test(document.getElementById("notice").textContent));
  console.log(`${said ? "ok  " : "FAIL"} a lost device: the page says so and the engine comes back`);
  failed ||= !said;

  // A corrupt model file: the error is shown and the page keeps classifying with its model.
  let loads = 0;
  await page.setInputFiles("#cfg", expected.customs[0].config);
  await page.setInputFiles("#weights", path.resolve(web, "../tests/fixtures/images/not_an_image.png"));
  await page.click("#load");
  loads += 1;
  await page.waitForFunction((m) => window.vitrineModels >= m, loads, { timeout: 60000 });
  const loadErr = await page.evaluate(() => window.vitrineError);
  const stillWorks = await classify(d.image);
  const usable = /safetensors/i.test(loadErr ?? "");
  console.log(`${usable ? "ok  " : "FAIL"} a corrupt model file is refused (${JSON.stringify(loadErr)})`);
  failed ||= !usable;
  check("built-in model after a corrupt model file", stillWorks.logits, d.logits);

  // A model too large for the adapter (web/test/too_large.py: an activation over SwiftShader's
  // 1 GiB storage binding limit at batch 1): refused at load with the planner's message.
  const big = path.resolve(artifacts, "too-large");
  execFileSync("python3", [path.resolve(web, "test/too_large.py"), big]);
  await page.setInputFiles("#cfg", path.join(big, "config.json"));
  await page.setInputFiles("#weights", path.join(big, "model.safetensors"));
  await page.click("#load");
  loads += 1;
  await page.waitForFunction((m) => window.vitrineModels >= m, loads, { timeout: 120000 });
  const bigErr = await page.evaluate(() => window.vitrineError);
  const refused = /too large for this GPU even at batch 1: tensor \d+ of shape \[1, 525626, 512\] needs 1026 MiB, more than the device's \d+ MiB storage binding limit/.test(bigErr ?? "");
  console.log(`${refused ? "ok  " : "FAIL"} a model too large for the adapter is refused (${JSON.stringify(bigErr)})`);
  failed ||= !refused;
  check("built-in model after a too-large model", (await classify(d.image)).logits, d.logits);

  // 200 classifications in a row: the worker's wasm memory and live GPU buffers and the page's
  // JS heap stay flat (within 10 % between the 20th and the 200th, after a gc()).
  const sampleBytes = [...fs.readFileSync(d.image)];
  const classifyN = (n) => page.evaluate(async ([bytes, n]) => {
    for (let i = 0; i < n; i++) await window.vitrineCall("classify", { bytes: new Uint8Array(bytes), name: "sample" });
  }, [sampleBytes, n]);
  await classifyN(20);
  const first = await memory(page);
  await classifyN(180);
  const last = await memory(page);
  const flat = (a, b) => b <= a * 1.1;
  const memOk = first.wasm > 0 && first.gpuBuffers > 0 && flat(first.wasm, last.wasm) && flat(first.heap, last.heap) && flat(first.gpuBuffers, last.gpuBuffers);
  console.log(`${memOk ? "ok  " : "FAIL"} 200 classifications: wasm memory ${first.wasm} -> ${last.wasm} bytes, ` +
    `GPU buffers ${first.gpuBuffers} -> ${last.gpuBuffers}, JS heap ${first.heap} -> ${last.heap} bytes`);
  failed ||= !memOk;

  // "Load your own timm model": config.json + model.safetensors from disk (a ViT, then a Swin).
  for (const c of expected.customs) {
    await page.setInputFiles("#cfg", c.config);
    await page.setInputFiles("#weights", c.weights);
    await page.click("#load");
    loads += 1;
    count += 1; // the page re-classifies the last image with the new model
    await page.waitForFunction(([m, n]) => window.vitrineModels >= m && window.vitrineCount >= n, [loads, count], { timeout: 300000 });
    const err = await page.evaluate(() => window.vitrineError);
    if (err) throw new Error(`loading ${c.weights}: ${err}`);
    const name = path.basename(path.dirname(c.weights));
    for (const im of c.images) {
      const rr = await classify(im.image);
      check(`custom model ${name}, ${path.basename(im.image)}`, rr.logits, im.logits);
      if (im.exit !== undefined) {
        // DVT: the exit that answered, as native (batch 1).
        const same = rr.exit === im.exit;
        console.log(`${same ? "ok  " : "FAIL"} custom model ${name}, ${path.basename(im.image)}: exit ${rr.exit} (native ${im.exit})`);
        failed ||= !same;
      }
      if (im.kept_tokens) {
        // DynamicViT: the patches kept at each pruning stage, exactly as native.
        const same = JSON.stringify(rr.kept_tokens) === JSON.stringify(im.kept_tokens);
        console.log(`${same ? "ok  " : "FAIL"} custom model ${name}, ${path.basename(im.image)}: kept tokens ${rr.kept_tokens?.map((s) => s.length).join(" -> ")}`);
        failed ||= !same;
      }
    }
    await page.screenshot({ path: path.join(artifacts, `web-custom-${name}.png`), fullPage: true });
  }

  // DVT (the last custom model): a mixed batch through classifyMany, whose images stop at
  // different exits (thresholds set through the API), in input order; then thresholds that
  // send every image to the last exit.
  const batch = expected.dvt_batch ?? [];
  if (batch.length) {
    await page.evaluate((t) => window.vitrineCall("exitThresholds", { thresholds: t }), expected.dvt_thresholds);
    const files = batch.map((b) => [...fs.readFileSync(b.image)]);
    const runBatch = () => page.evaluate((fs_) => window.vitrineCall("classifyMany", { images: fs_.map((f) => new Uint8Array(f)) }), files);
    const rows = await runBatch();
    const exits = rows.map((r) => r.exit);
    const want = batch.map((b) => b.exit);
    const same = JSON.stringify(exits) === JSON.stringify(want) && new Set(want).size === 3;
    console.log(`${same ? "ok  " : "FAIL"} DVT mixed batch: exits ${JSON.stringify(exits)} (native ${JSON.stringify(want)})`);
    failed ||= !same;
    rows.forEach((r, i) => check(`DVT mixed batch, ${path.basename(batch[i].image)}`, r.logits, batch[i].logits));
    const shown = await page.$eval("#exit", (e) => !e.hidden && /Answered by exit \d of 3/.test(e.textContent));
    console.log(`${shown ? "ok  " : "FAIL"} the page shows which exit answered and its cost`);
    failed ||= !shown;
    await page.evaluate(() => window.vitrineCall("exitThresholds", { thresholds: [Infinity, Infinity] }));
    const all = await runBatch();
    const last = all.every((r) => r.exit === 2 && r.exit_logits.length === 3);
    console.log(`${last ? "ok  " : "FAIL"} DVT thresholds set to Infinity: every image runs all three exits`);
    failed ||= !last;
  }

  // No attention map for a model without a class token over its patches (the DVT loaded last):
  // the page says why and keeps working.
  const none = await attention();
  const explained = none && !none.ok && /no single class token/.test(none.error) && /class token/.test(await page.$eval("#attn-msg", (e) => e.textContent));
  console.log(`${explained ? "ok  " : "FAIL"} no attention map for a DVT: ${JSON.stringify(none?.error)}`);
  failed ||= !explained;
  await page.uncheck("#attn");

  // Training in the browser equals `vitrine train` (run.sh: the built-in model, two classes of
  // the samples, no augmentation, stopped after 3 steps), with SGD and with AdamW: the third
  // step's loss within 1e-5 relative, every tensor within 1e-5 relative in L2 norm
  // (|browser - native| / |native|), and with SGD every element too (max |browser - native|
  // over the tensor's max |w| <= 1e-5). AdamW divides each gradient by its own running
  // magnitude, which turns rounding noise in tiny gradients into visible moves: its elements are
  // held to 1e-4 of the tensor's max, and the attention's key biases (the middle third of each qkv bias; their
  // gradient is zero in exact arithmetic, as a softmax row ignores the q.b_k added to all its
  // scores) to the most AdamW can move them, lr per step: 3e-3 after 3 steps.
  await page.evaluate(() => window.vitrineCall("default"));
  const teachFiles = ["a", "b"].flatMap((c, k) => fs.readdirSync(path.join(expected.teach_train, c)).sort()
    .map((f) => [k, f, [...fs.readFileSync(path.join(expected.teach_train, c, f))]]));
  for (const [opt, tol] of [["sgd", 1e-5], ["adamw", 1e-4]]) {
    const browserRun = await page.evaluate(async ([files, opt]) => {
      await window.vitrineCall("startTraining", { options: { classes: ["a", "b"], epochs: 3, warmupEpochs: 0, batchSize: 4, opt, augment: false, seed: 1 } });
      for (const [k, name, bytes] of files) await window.vitrineCall("addExample", { class: k, bytes: new Uint8Array(bytes), name });
      const steps = [];
      for (let i = 0; i < 3; i++) steps.push(await window.vitrineCall("trainStep"));
      const { weights } = await window.vitrineCall("exportModel");
      let bin = "";
      for (let i = 0; i < weights.length; i += 0x8000) bin += String.fromCharCode(...weights.subarray(i, i + 0x8000));
      return { steps, weights: btoa(bin) };
    }, [teachFiles, opt]);
    const native = `${expected.teach_native}-${opt}`;
    const browserW = safetensors(Buffer.from(browserRun.weights, "base64"));
    const nativeW = safetensors(fs.readFileSync(path.join(native, "model.safetensors")));
    let worst = ["", 0], worstKey = 0, worstL2 = ["", 0];
    for (const [name, want] of Object.entries(nativeW)) {
      const got = browserW[name];
      if (!got || got.length !== want.length) { worst = [name, Infinity]; break; }
      const keyBias = (i) => opt === "adamw" && name.endsWith("attn.qkv.bias") && i >= want.length / 3 && i < (2 * want.length) / 3;
      const sq = (f) => want.reduce((a, v, i) => a + (keyBias(i) ? 0 : f(v, i)), 0);
      const l2 = Math.sqrt(sq((v, i) => (got[i] - v) ** 2) / Math.max(1e-30, sq((v) => v * v)));
      if (l2 > worstL2[1]) worstL2 = [name, l2];
      const scale = Math.max(1e-12, ...want.map(Math.abs));
      const rel = Math.max(...got.map((v, i) => (keyBias(i) ? 0 : Math.abs(v - want[i])))) / scale;
      if (rel > worst[1]) worst = [name, rel];
      worstKey = Math.max(worstKey, ...got.map((v, i) => (keyBias(i) ? Math.abs(v - want[i]) : 0)));
    }
    const running = JSON.parse(fs.readFileSync(path.join(native, "train_state.json"), "utf8")).running;
    const nativeLoss = running.loss_sum / running.seen, browserLoss = browserRun.steps[2].loss;
    const lossRel = Math.abs(browserLoss - nativeLoss) / Math.abs(nativeLoss);
    const sameKeys = Object.keys(browserW).length === Object.keys(nativeW).length;
    const trainOk = sameKeys && worst[1] <= tol && worstL2[1] <= 1e-5 && lossRel <= 1e-5 && worstKey <= 3e-3;
    console.log(`${trainOk ? "ok  " : "FAIL"} browser training = vitrine train after 3 ${opt} steps: weights max rel diff ${worst[1].toExponential(2)} ` +
      `(${worst[0]}; tolerance ${tol}), L2 rel diff ${worstL2[1].toExponential(2)} (${worstL2[0]}; tolerance 1e-5)${opt === "adamw" ? `, key biases at most ${worstKey.toExponential(2)} apart (bound 3e-3)` : ""}, ` +
      `step-3 loss ${browserLoss.toFixed(6)} vs ${nativeLoss.toFixed(6)} (rel ${lossRel.toExponential(2)}); losses ${browserRun.steps.map((r) => r.loss.toFixed(4)).join(", ")}`);
    failed ||= !trainOk;
  }

  // "Teach your own classes" through the page: the built-in model fine-tuned on two
  // Fashion-MNIST classes (Trouser, Bag) from the test split, 40 images each, held-out accuracy
  // on 20 more of each >= 90 %; the exported model classifies natively with the browser's logits.
  await page.evaluate(() => window.vitrineCall("default"));
  const fm = "/usr/share/datasets/fashion-mnist";
  const images = zlib.gunzipSync(fs.readFileSync(path.join(fm, "t10k-images-idx3-ubyte.gz")));
  const labels = zlib.gunzipSync(fs.readFileSync(path.join(fm, "t10k-labels-idx1-ubyte.gz")));
  const teachDir = path.join(artifacts, "teach-fmnist");
  fs.rmSync(teachDir, { recursive: true, force: true });
  const picked = { Trouser: [], Bag: [] };
  for (let i = 0; i < 10000 && (picked.Trouser.length < 60 || picked.Bag.length < 60); i++) {
    const name = { 1: "Trouser", 8: "Bag" }[labels[8 + i]];
    if (!name || picked[name].length >= 60) continue;
    const file = path.join(teachDir, name, `${i}.png`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, grayPng(images.subarray(16 + i * 784, 16 + (i + 1) * 784), 28, 28));
    picked[name].push(file);
  }
  await page.fill("#teach-names", "Trouser, Bag");
  await page.click("#teach-setup");
  // Each upload re-renders the class boxes: find the input afresh, and wait until its files are read.
  for (const [k, name] of ["Trouser", "Bag"].entries()) {
    await page.locator("#teach-classes input[type=file]").nth(k).setInputFiles(picked[name].slice(0, 40));
    await page.waitForFunction((k) => window.vitrineTeach.images?.[k] === 40, k, { timeout: 60000 });
  }
  await page.fill("#teach-epochs", "3");
  await page.uncheck("#teach-aug");
  const t0 = Date.now();
  await page.click("#teach-train");
  await page.waitForFunction(() => window.vitrineTeach.done || window.vitrineTeach.error, null, { timeout: 600000 });
  const teachRun = await page.evaluate(() => window.vitrineTeach);
  const teachSecs = (Date.now() - t0) / 1000;
  await page.screenshot({ path: path.join(artifacts, "web-teach.png"), fullPage: true });
  if (teachRun.error) throw new Error(`teaching failed: ${teachRun.error}`);
  // The per-epoch curves under the chart: vitrine train's curves.svg, three panels, 3 epochs.
  const curves = await page.$eval("#teach-curves", (e) => ({
    panels: [...e.querySelectorAll("g.panel")].map((g) => g.dataset.title),
    points: [...e.querySelectorAll("polyline.series")].map((p) => p.getAttribute("points").trim().split(" ").length),
  }));
  const curvesOk = curves.panels.join("|") === "Loss|Top-1 accuracy (%)|Learning rate" && curves.points.length === 3 && curves.points.every((n) => n === 3);
  console.log(`${curvesOk ? "ok  " : "FAIL"} the page draws the run's curves.svg: panels ${curves.panels.join(", ")}, points per line ${curves.points.join(", ")}`);
  failed ||= !curvesOk;
  const losses = teachRun.history.map((r) => r.loss);
  const firstEpoch = teachRun.history.filter((r) => r.epoch === 0), lastEpoch = teachRun.history.filter((r) => r.epoch === 2);
  const mean = (a) => a.reduce((x, r) => x + r.loss, 0) / a.length;
  const falls = teachRun.history.length === 30 && mean(lastEpoch) < 0.8 * mean(firstEpoch); // label smoothing 0.1 keeps two-class losses above 0.199
  const held = [...picked.Trouser.slice(40).map((f) => [f, "Trouser"]), ...picked.Bag.slice(40).map((f) => [f, "Bag"])];
  const heldRows = await page.evaluate(async (items) => {
    const out = [];
    for (const [name, bytes] of items) out.push(await window.vitrineCall("classify", { bytes: new Uint8Array(bytes), name }));
    return out;
  }, held.map(([f]) => [path.basename(f), [...fs.readFileSync(f)]]));
  const correct = heldRows.filter((r, i) => r.top_k[0].label === held[i][1]).length;
  const accuracy = (100 * correct) / held.length;
  console.log(`${falls && accuracy >= 90 ? "ok  " : "FAIL"} taught Trouser vs Bag in the page: ${teachRun.history.length} steps in ${teachSecs.toFixed(1)} s, ` +
    `loss ${mean(firstEpoch).toFixed(4)} (epoch 1) -> ${mean(lastEpoch).toFixed(4)} (epoch 3), held-out accuracy ${accuracy.toFixed(1)} % (${correct}/${held.length})`);
  failed ||= !(falls && accuracy >= 90);
  const exported = await page.evaluate(async () => {
    const { config, weights } = await window.vitrineCall("exportModel");
    let bin = "";
    for (let i = 0; i < weights.length; i += 0x8000) bin += String.fromCharCode(...weights.subarray(i, i + 0x8000));
    return { config, weights: btoa(bin), buttons: !document.getElementById("teach-weights").disabled };
  });
  const exportDir = path.join(artifacts, "teach-exported");
  fs.mkdirSync(exportDir, { recursive: true });
  fs.writeFileSync(path.join(exportDir, "config.json"), exported.config);
  fs.writeFileSync(path.join(exportDir, "model.safetensors"), Buffer.from(exported.weights, "base64"));
  const nativeRows = execFileSync(path.resolve(web, "../target/release/vitrine"), ["classify", "--json", "--model", exportDir, ...held.slice(0, 4).map(([f]) => f)], { encoding: "utf8" })
    .trim().split("\n").map((l) => JSON.parse(l));
  let exportOk = exported.buttons && nativeRows.length === 4;
  for (let i = 0; i < 4 && exportOk; i++) {
    const [got, want] = [heldRows[i].logits, nativeRows[i].logits];
    const d = Math.max(...got.map((v, j) => Math.abs(v - want[j]))) / Math.max(...want.map(Math.abs));
    exportOk &&= d <= 1e-4 && nativeRows[i].top_k[0].label === heldRows[i].top_k[0].label;
    if (i === 0) console.log(`     exported model, native vs browser logits: max rel diff ${d.toExponential(2)}`);
  }
  console.log(`${exportOk ? "ok  " : "FAIL"} the exported model (config.json + model.safetensors) classifies natively as in the page`);
  failed ||= !exportOk;
  // Throughput: two more epochs through the API's trainEpoch (no page work between steps).
  const epochs = [];
  for (let i = 0; i < 2; i++) epochs.push(await page.evaluate(() => window.vitrineCall("trainEpoch")));
  const epochOk = epochs.every((r) => r.epoch_done && r.steps_per_epoch === 10 && r.step === 9 && r.images_per_s > 0) && epochs[1].epoch === epochs[0].epoch + 1;
  console.log(`${epochOk ? "ok  " : "FAIL"} trainEpoch: epochs ${epochs.map((r) => r.epoch + 1).join(", ")} at ${epochs.map((r) => r.images_per_s.toFixed(1)).join(", ")} images/s (batch 8), loss ${epochs[1].epoch_loss.toFixed(4)}`);
  failed ||= !epochOk;
  fs.writeFileSync(path.join(artifacts, "web-teach.json"), JSON.stringify({ steps: teachRun.history.length, secs: teachSecs, batch: 8, accuracy, losses,
    epoch_images_per_s: epochs.map((r) => r.images_per_s) }, null, 1));

  // A file that is not an image: the CLI's one-line message, shown on the page.
  await page.setInputFiles("#file", path.resolve(web, "../tests/fixtures/images/not_an_image.png"));
  count += 1;
  await page.waitForFunction((n) => window.vitrineCount >= n, count, { timeout: 60000 });
  const msg = await page.$eval("#error", (e) => e.textContent);
  const readable = msg.includes("not_an_image.png: cannot decode image");
  console.log(`${readable ? "ok  " : "FAIL"} a bad image gives a readable error: ${JSON.stringify(msg)}`);
  failed ||= !readable;

  // A browser without WebGPU: the page says so (navigator.gpu hidden before any script runs).
  const bare = await browser.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
  await bare.goto(base);
  await bare.waitForFunction(() => document.getElementById("status").dataset.state === "error", null, { timeout: 30000 });
  const shown = await bare.$eval("#nogpu", (e) => !e.hidden && e.textContent.includes("enable-unsafe-webgpu"));
  console.log(`${shown ? "ok  " : "FAIL"} without WebGPU the page explains how to enable it`);
  failed ||= !shown;
} finally {
  await browser.close();
  server.close();
}
if (failed) process.exit(1);
console.log(`browser end-to-end test passed; screenshots in ${artifacts}`);
